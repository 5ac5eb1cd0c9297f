"""Atrial fibrillatory waves: the extended sawtooth model of Stridh & Sornmo (IEEE TBME 2001).

Each VCG axis carries a sawtooth (3 harmonics) with a slowly frequency-modulated phase and an
amplitude-modulated envelope. The projected precordial leads are then weighted towards V1, because
the atria lie close to the right-sided chest electrodes (a non-dipolar proximity effect).
"""

from __future__ import annotations

import numpy as np

# Proximity weights for V1..V6 applied after the Dower projection (I and II keep weight 1).
PRECORDIAL_F_GAIN = np.array([1.5, 1.2, 0.8, 0.5, 0.4, 0.3])
AXIS_SCALE = np.array([0.6, 0.8, 1.0])  # X, Y, Z
F_MOD_DEPTH_HZ, F_MOD_HZ, A_MOD_HZ = 0.25, 0.2, 0.2


def f_waves(rng: np.random.Generator, f0_hz: float, amp_mv: float, t: np.ndarray) -> np.ndarray:
    """(3, len(t)) float32 atrial VCG in mV for times ``t`` (s)."""
    freq = f0_hz * (1.0 + 0.05 * np.arange(3))
    phi, psi = rng.uniform(0.0, 2 * np.pi, (2, 3))
    t = t.astype(np.float32)[None, :]
    theta = (np.float32(2 * np.pi) * freq[:, None].astype(np.float32) * t
             + np.float32(F_MOD_DEPTH_HZ / F_MOD_HZ) * np.sin(np.float32(2 * np.pi * F_MOD_HZ) * t + phi[:, None].astype(np.float32)))
    envelope = (amp_mv * AXIS_SCALE[:, None]).astype(np.float32) * (
        1.0 + np.float32(0.3) * np.sin(np.float32(2 * np.pi * A_MOD_HZ) * t + psi[:, None].astype(np.float32)))
    # sum_{i=1..3} 2/(i pi) sin(i theta), with sin 2x = 2 sin x cos x and sin 3x = 3 sin x - 4 sin^3 x.
    s, c = np.sin(theta), np.cos(theta)
    saw = np.float32(2 / np.pi) * s * (np.float32(2.0) + c - np.float32(4 / 3) * s * s)
    return -envelope * saw


# Typical (counter-clockwise) flutter: negative sawtooth F waves in II, III and aVF, positive in V1.
FLUTTER_DIRECTION = np.array([-0.3, -1.0, -0.5]) / np.linalg.norm([-0.3, -1.0, -0.5])


def flutter_waves(rng: np.random.Generator, rate_hz: float, amp_mv: float, t: np.ndarray, t0: float) -> np.ndarray:
    """(3, len(t)) float32 atrial VCG in mV of atrial flutter: a regular sawtooth at ``rate_hz`` (four
    harmonics), phase-locked to the beat train that starts at ``t0`` (conducted beats fall on whole
    atrial cycles), along the typical flutter axis with a per-exam spread."""
    direction = FLUTTER_DIRECTION + 0.15 * rng.normal(size=3)
    theta = 2 * np.pi * rate_hz * (t - t0) + rng.uniform(0.0, 2 * np.pi)
    saw = sum(((-1) ** (i + 1)) * np.sin(i * theta) / i for i in range(1, 5)) * (2 / np.pi)
    return (amp_mv * direction[:, None] * saw[None, :]).astype(np.float32)

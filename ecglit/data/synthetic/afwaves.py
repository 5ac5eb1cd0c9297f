"""Atrial fibrillatory and flutter waves.

AF: the extended sawtooth model of Stridh & Sornmo (IEEE TBME 2001), made as disorganised as real
fibrillation: each VCG axis carries its own sawtooth (random harmonic content) whose frequency wanders by
about 1-2 Hz within seconds, with a slowly fluctuating envelope that drops out at times. Real AF f-waves
have a V1 spectral concentration of about 0.45 (docs/real-diagnosis.md), a regular sawtooth 0.8. The
projected precordial leads are weighted towards V1, because the atria lie close to the right-sided chest
electrodes (a non-dipolar proximity effect).
"""

from __future__ import annotations

import numpy as np

# Proximity weights for V1..V6 applied after the Dower projection (I and II keep weight 1).
PRECORDIAL_F_GAIN = np.array([1.5, 1.2, 0.8, 0.5, 0.4, 0.3])
AXIS_SCALE = np.array([0.5, 0.5, 1.0])  # X, Y, Z: f-waves are largest in V1, smaller in II (II/V1 ~0.55)
N_SLOW = 4  # slow sinusoids that make the frequency wander and the envelope fluctuate


def _slow_process(rng: np.random.Generator, t: np.ndarray, n_axes: int, lo_hz: float, hi_hz: float) -> np.ndarray:
    """(n_axes, len(t)) smooth zero-mean random signals of unit RMS (sums of slow sinusoids)."""
    freq = rng.uniform(lo_hz, hi_hz, (n_axes, N_SLOW, 1))
    phase = rng.uniform(0.0, 2 * np.pi, (n_axes, N_SLOW, 1))
    return (np.sin(2 * np.pi * freq * t[None, None, :] + phase).sum(axis=1) * np.sqrt(2.0 / N_SLOW)).astype(np.float32)


def f_waves(rng: np.random.Generator, f0_hz: float, amp_mv: float, t: np.ndarray) -> np.ndarray:
    """(3, len(t)) float32 atrial VCG in mV of AF for times ``t`` (s)."""
    t = t.astype(np.float32)
    wander_hz = rng.uniform(0.6, 1.8)  # spread of the instantaneous frequency
    freq = f0_hz * (1.0 + 0.05 * np.arange(3))[:, None] + wander_hz * _slow_process(rng, t, 3, 0.1, 0.8)
    theta = np.cumsum(2 * np.pi * np.maximum(freq, 2.5), axis=1, dtype=np.float64) * float(t[1] - t[0] if len(t) > 1 else 0)
    theta = (theta + rng.uniform(0.0, 2 * np.pi, (3, 1))).astype(np.float32)
    harmonics = (2 / (np.pi * np.arange(1, 4)))[None, :] * rng.uniform(0.3, 1.4, (3, 3))  # per-axis morphology
    saw = sum(harmonics[:, i, None] * np.sin((i + 1) * theta) for i in range(3))
    envelope = np.clip(1.0 + 0.5 * _slow_process(rng, t, 3, 0.15, 1.0), 0.0, None)  # dips to zero at times
    return (-(amp_mv * AXIS_SCALE)[:, None] * envelope * saw).astype(np.float32)


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

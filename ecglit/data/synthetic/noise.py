"""Noise generated per electrode (RA, LA, LL, C1..C6) and mapped to leads like the heart signal.

Because every lead is a difference of electrode potentials, an artefact on one electrode shows up in
all the leads that use it (an LA artefact in I, III, aVL and, through Wilson's terminal, in V1-V6),
and the Einthoven/Goldberger identities still hold on noisy records.

Components (mV, scaled by the exam's noise level l): baseline wander (slow sinusoids incl. the
respiration frequency and a quasi-DC drift, occasionally large), 60 Hz powerline (+120 Hz) with
per-electrode gain/phase, EMG (high-passed white noise with a burst envelope), measurement noise.
White noise is uniform (6x cheaper to draw than Gaussian, equally white).
Random numbers come from the exam's own noise stream; the batched rendering is elementwise per exam.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglit.constants import N_SAMPLES, SAMPLE_RATE

N_ELECTRODES = 9  # RA, LA, LL, C1..C6
N_WANDER = 6           # 5 baseline-wander sinusoids and one tremor sinusoid (4-12 Hz, limb electrodes)
WANDER_MV = 0.025      # std of each electrode's wander sinusoid coefficient at noise level 1
TREMOR_RATE, TREMOR_MV = 0.06, (0.01, 0.05)  # physiological/parkinsonian tremor: atrial-band activity, not AF
# Limb electrodes (RA, LA, LL) move with the limbs and wander more than the chest electrodes.
WANDER_ELECTRODE_SCALE = np.array([1.6, 1.6, 1.6, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
MEASUREMENT_MV = 0.003  # amplifier noise floor, present whenever noise is on
MAINS_HZ = (50.0, 60.0)  # either, per exam: 60 Hz in Brazil and the Americas, 50 Hz in most of the world

# Electrode -> lead matrix for the 8 independent leads I, II, V1..V6 (rows).
ELECTRODE_TO_LEAD = np.zeros((8, N_ELECTRODES))
ELECTRODE_TO_LEAD[0, [0, 1]] = [-1.0, 1.0]  # I = LA - RA
ELECTRODE_TO_LEAD[1, [0, 2]] = [-1.0, 1.0]  # II = LL - RA
for _i in range(6):  # Vi = Ci - WCT, WCT = (RA + LA + LL) / 3
    ELECTRODE_TO_LEAD[2 + _i, :3] = -1.0 / 3.0
    ELECTRODE_TO_LEAD[2 + _i, 3 + _i] = 1.0

_n = np.arange(N_SAMPLES)
# sin/cos of each mains frequency and its harmonic on the sample grid (50, 100, 60, 120 Hz); exam-specific
# phases go into the coefficients.
MAINS_BASIS = np.stack([f(2 * np.pi * k * hz * _n / SAMPLE_RATE) for hz in MAINS_HZ for k in (1, 2)
                        for f in (np.sin, np.cos)]).astype(np.float32)  # (8, N)
N_MAINS = len(MAINS_BASIS)
TIME_S = (_n / SAMPLE_RATE).astype(np.float32)


@dataclass
class NoisePlan:
    """One exam's noise ingredients. The white noise is drawn later, straight into the batch buffer,
    from the same generator (``rng``), so batching never changes the numbers."""

    rng: np.random.Generator | None  # None when the noise level is 0
    emg_amp: np.ndarray              # (9,) mV, EMG + measurement noise RMS scale per electrode
    burst_hz: float
    burst_phase: float
    wander_hz: np.ndarray            # (K,)
    wander_phase: np.ndarray         # (K,)
    lead_coef: np.ndarray            # (8, K + N_MAINS) lead-space coefficients of the wander + mains bases
    motion: tuple[float, float, float, int] | None = None  # electrode motion: onset s, tau s, mV, electrode


def draw_noise_plan(rng: np.random.Generator, level: float, resp_hz: float,
                    motion: tuple[float, float, float, int] | None = None) -> NoisePlan:
    if level <= 0:
        return NoisePlan(None, np.zeros(N_ELECTRODES), 0.0, 0.0, np.zeros(N_WANDER), np.zeros(N_WANDER),
                         np.zeros((8, N_WANDER + N_MAINS)))
    wander_hz = np.concatenate([[rng.uniform(0.005, 0.05), resp_hz], rng.uniform(0.05, 0.6, N_WANDER - 3),
                                [rng.uniform(4.0, 12.0)]])
    wander_phase = rng.uniform(0.0, 2 * np.pi, N_WANDER)
    wander_sd = WANDER_MV * level * (4.0 if rng.random() < 0.05 else 1.0)  # rare large-wander mode
    wander_mix = rng.normal(0.0, wander_sd, (N_ELECTRODES, N_WANDER)) * WANDER_ELECTRODE_SCALE[:, None]
    tremor = rng.random() < TREMOR_RATE
    wander_mix[:, -1] = 0.0
    if tremor:  # on the limb electrodes, whatever the noise level
        wander_mix[:3, -1] = rng.normal(0.0, rng.uniform(*TREMOR_MV), 3)
    mains_mix = np.zeros((N_ELECTRODES, N_MAINS))
    if rng.random() < 0.4:
        amp = level * rng.uniform(0.005, 0.04) * rng.uniform(0.5, 1.5, N_ELECTRODES)
        phase = rng.uniform(0.0, 2 * np.pi) + rng.normal(0.0, 0.3, N_ELECTRODES)
        amp2, phase2 = 0.3 * amp, 2 * phase + rng.normal(0.0, 0.3, N_ELECTRODES)
        first = 4 * int(rng.random() < 0.5)  # 50 or 60 Hz
        mains_mix[:, first:first + 4] = np.stack([amp * np.cos(phase), amp * np.sin(phase), amp2 * np.cos(phase2),
                                                  amp2 * np.sin(phase2)], axis=1)
    emg_amp = level * rng.uniform(0.001, 0.015) * rng.uniform(0.3, 1.5, N_ELECTRODES)
    burst_hz, burst_phase = rng.uniform(0.1, 0.5), rng.uniform(0.0, 2 * np.pi)
    lead_coef = ELECTRODE_TO_LEAD @ np.concatenate([wander_mix, mains_mix], axis=1)
    return NoisePlan(rng, emg_amp + MEASUREMENT_MV, burst_hz, burst_phase, wander_hz, wander_phase, lead_coef,
                     motion)


def render_noise(plans: list[NoisePlan], out: np.ndarray, scale: float = 1.0) -> None:
    """Add each exam's lead-space noise, times ``scale`` (units per mV), to ``out`` (B, 8, N) in place."""
    noisy = [b for b, p in enumerate(plans) if p.rng is not None]
    if not noisy:
        return
    sel = [plans[b] for b in noisy]
    n, k = len(sel), N_WANDER
    # Sources: 9 electrode noises, K wander sinusoids and the mains bases, mixed per exam into leads.
    sources = np.empty((n, N_ELECTRODES + k + N_MAINS, N_SAMPLES), np.float32)
    uniform = np.empty((n, N_ELECTRODES, N_SAMPLES + 1), np.float32)
    for b, p in enumerate(sel):
        p.rng.random(out=uniform[b], dtype=np.float32)
    # EMG + measurement noise: the first difference of uniform white noise (a high-pass, zero mean,
    # variance 1/6) scaled per electrode and modulated by a shared burst envelope.
    burst = np.array([[p.burst_hz, p.burst_phase] for p in sel], np.float32)
    envelope = np.sin(np.float32(2 * np.pi) * burst[:, :1] * TIME_S + burst[:, 1:])
    np.maximum(envelope, 0.0, out=envelope)
    envelope *= np.float32(2.0 * np.sqrt(6.0))
    envelope += np.float32(np.sqrt(6.0))
    electrode = sources[:, :N_ELECTRODES]
    np.subtract(uniform[:, :, 1:], uniform[:, :, :-1], out=electrode)
    electrode *= envelope[:, None, :]
    electrode *= np.array([p.emg_amp for p in sel], np.float32)[:, :, None]
    wander_hz = np.array([p.wander_hz for p in sel], np.float32)
    wander_phase = np.array([p.wander_phase for p in sel], np.float32)
    np.sin(np.float32(2 * np.pi) * wander_hz[:, :, None] * TIME_S + wander_phase[:, :, None],
           out=sources[:, N_ELECTRODES:N_ELECTRODES + k])
    sources[:, N_ELECTRODES + k:] = MAINS_BASIS
    mix = np.empty((n, 8, sources.shape[1]), np.float32)
    mix[:, :, :N_ELECTRODES] = ELECTRODE_TO_LEAD * scale
    mix[:, :, N_ELECTRODES:] = np.array([p.lead_coef for p in sel]) * scale
    if len(noisy) == len(plans):
        out += np.matmul(mix, sources)
    else:
        out[noisy] += np.matmul(mix, sources)
    for b, p in zip(noisy, sel):
        if p.motion is not None:  # electrode motion: a step in one electrode's potential, recovering slowly
            onset, tau, amp_mv, electrode = p.motion
            after = np.clip(TIME_S - np.float32(onset), 0.0, None)
            artefact = np.where(TIME_S >= onset, np.exp(-after / np.float32(tau)), 0.0).astype(np.float32)
            out[b] += np.outer(ELECTRODE_TO_LEAD[:, electrode] * (amp_mv * scale), artefact).astype(np.float32)

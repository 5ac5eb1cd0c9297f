"""Beat trains: sinus rhythm with respiratory arrhythmia, AF's irregular RR, PACs and PVCs.

Times are seconds from the first recorded sample. The train starts at a random phase about 1 s
before the window and runs past its end, so waves of beats outside the window spill in naturally.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglit.data.synthetic.sampling import AF, FLUTTER, PACED, SINUS, SVT, ExamParams

KIND_SINUS, KIND_PAC, KIND_PVC = 0, 1, 2
AF_RR_LOG_STD = 0.22
AF_RR_RANGE_S = (0.28, 2.4)
PAC_COUPLING, PVC_COUPLING = 0.70, 0.60


@dataclass
class BeatTrain:
    onsets: np.ndarray     # (n,) QRS onset times, s
    rr_prev: np.ndarray    # (n,) RR interval ending at each beat, s (drives QT)
    kinds: np.ndarray      # (n,) int8: KIND_SINUS (conducted supraventricular), KIND_PAC, KIND_PVC


def _premature_slots(rng: np.random.Generator, onsets: np.ndarray, record_s: float, count: int,
                     taken: set[int]) -> list[int]:
    """Indices of beats well inside the window (so the pause after them is recorded too)."""
    candidates = [j for j in np.flatnonzero((onsets > 0.8) & (onsets < record_s - 1.6)) if j not in taken]
    if not candidates:
        return []
    picks = rng.choice(len(candidates), size=min(count, len(candidates)), replace=False)
    return sorted(int(candidates[p]) for p in picks)


def normal_intervals(r_peaks_s: np.ndarray, kinds: np.ndarray, record_s: float) -> np.ndarray:
    """RR intervals inside the window between two consecutive non-ectopic beats (clinical NN intervals:
    rate is measured without the premature beats and their pauses)."""
    inside = (r_peaks_s >= 0.0) & (r_peaks_s < record_s)
    ok = inside & (kinds == KIND_SINUS)
    pair = ok[1:] & ok[:-1]
    return np.diff(r_peaks_s)[pair]


def beat_train(rng: np.random.Generator, p: ExamParams, r_offset_s: float) -> BeatTrain:
    """Beats of one exam; ``r_offset_s`` (QRS onset -> R peak) places the R peaks used for the rate."""
    rr0 = 60.0 / p.rate_bpm
    start = -1.0 - rng.uniform(0.0, rr0)
    n = int(np.ceil((p.record_seconds + 1.8 + rr0) / (rr0 * 0.7))) + 2
    if p.rhythm == AF:
        # Irregularly irregular: i.i.d. log-normal RR without serial correlation, mean kept at rr0; the
        # irregularity itself varies between patients.
        log_std = AF_RR_LOG_STD * rng.uniform(0.6, 1.3)
        rr = rr0 * np.exp(rng.normal(0.0, log_std, n) - log_std**2 / 2)
        rr = np.clip(rr, *AF_RR_RANGE_S)
    elif p.rhythm == FLUTTER:
        # Every k-th F wave conducts: RR is a whole number of atrial cycles (variable block: 2 or 4).
        ratios = rng.choice((2, 4), n) if p.variable_block else np.full(n, p.conduction_ratio)
        rr = ratios / p.flutter_hz
    elif p.rhythm in (SVT, PACED):
        rr = rr0 * (1.0 + rng.normal(0.0, 0.004 if p.rhythm == SVT else 0.0005, n))  # re-entry or a pacemaker
    else:
        phase = rng.uniform(0.0, 2 * np.pi)
        t_approx = start + rr0 * np.arange(n)
        resp = p.sinus_arrhythmia * np.sin(2 * np.pi * p.resp_hz * t_approx + phase)
        rr = rr0 * (1.0 + resp + rng.normal(0.0, 0.01, n))
    onsets = start + np.concatenate([[0.0], np.cumsum(rr[1:])])
    kinds = np.zeros(n, np.int8)
    n_pac = 1 + int(rng.random() < 0.3)
    n_pvc = 1 + int(rng.random() < 0.3)
    if p.frequent_ectopy:  # runs or bigeminy: 3-6 ectopic beats in the window
        n_pac, n_pvc = int(rng.integers(3, 7)), int(rng.integers(3, 7))
    taken: set[int] = set()
    if p.has_pvc:
        for j in _premature_slots(rng, onsets, p.record_seconds, n_pvc, taken):
            if j + 1 < n and kinds[j - 1] == KIND_SINUS:
                # Full compensatory pause: the sinus node is not reset.
                short = rr[j] * (1 - PVC_COUPLING)
                rr[j] -= short
                rr[j + 1] += short
                kinds[j] = KIND_PVC
                taken.update((j - 1, j, j + 1))
    if p.has_pac:
        for j in _premature_slots(rng, onsets, p.record_seconds, n_pac, taken):
            # Non-compensatory: the sinus node is reset, the next RR is a normal one.
            rr[j] *= PAC_COUPLING
            kinds[j] = KIND_PAC
            taken.update((j - 1, j, j + 1))
    onsets = start + np.concatenate([[0.0], np.cumsum(rr[1:])])
    if p.rhythm == SINUS:
        # Time-warp the train (by ~1-3 %) so that the sinus rate realised inside the window is the
        # sampled one: respiratory modulation over a short window would otherwise push borderline
        # rates across the label threshold and break the configured prevalence.
        for _ in range(6):
            nn = normal_intervals(onsets + r_offset_s, kinds, p.record_seconds)
            if len(nn) == 0 or abs(nn.mean() - rr0) < 1e-9:
                break
            centre = p.record_seconds / 2  # warp about the window centre: edge beats move least
            onsets = centre + (onsets - centre) * (rr0 / nn.mean())
        rr = np.concatenate([[rr[0]], np.diff(onsets)])
    rr_prev = np.concatenate([[rr0], rr[1:]])
    keep = onsets < p.record_seconds + 0.5
    return BeatTrain(onsets=onsets[keep], rr_prev=rr_prev[keep], kinds=kinds[keep])

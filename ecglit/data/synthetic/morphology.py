"""Beat morphology: each beat is a sum of Gaussian waves, each with a time, width and 3-D direction.

Axes are Frank/VCG: X right->left, Y head->feet, Z front->back (so V1 has a negative Z weight).
Timing is in seconds relative to the QRS onset, never a phase of RR, so PR, QRS and QT are explicit.
A wave's extent is +-2.5 sigma: P onset = first P centre - 2.5 sigma and QRS offset = last QRS
centre + 2.5 sigma, which keeps the label thresholds consistent with what a delineator measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglit.data.synthetic.rhythm import KIND_PAC, KIND_PVC, KIND_SINUS, BeatTrain
from ecglit.data.synthetic.sampling import AF, VC_IVCD, VC_LBBB, VC_RBBB, ExamParams

MS = 1e-3
EXTENT = 2.5  # sigmas from a wave's centre to its onset/offset


@dataclass
class Waves:
    """A set of Gaussian waves relative to a fiducial: tau (s), sigma (s), vec (k, 3) in mV."""

    tau: np.ndarray
    sigma: np.ndarray
    vec: np.ndarray

    @staticmethod
    def of(rows: list[tuple[float, float, float, tuple[float, float, float]]], rotation: np.ndarray,
           scale: float) -> Waves:
        """rows of (tau_ms, sigma_ms, amplitude_mV, direction); directions are normalised then rotated."""
        tau = np.array([r[0] for r in rows]) * MS
        sigma = np.array([r[1] for r in rows]) * MS
        dirs = np.array([r[3] for r in rows], dtype=float)
        dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
        amp = np.array([r[2] for r in rows]) * scale
        return Waves(tau, sigma, (dirs @ rotation.T) * amp[:, None])


def _rbbb_weight(qrs_ms: float) -> float:
    """0 for a 100 ms QRS, 1 from 120 ms: how complete the right-bundle delay pattern is."""
    return float(np.clip((qrs_ms - 100.0) / 20.0, 0.0, 1.0))


def _qrs_rows(p: ExamParams) -> list:
    d = p.qrs_ms
    if p.ventricular_conduction == VC_LBBB:
        # No septal q; a small leftward start, then two broad leftward-posterior lobes whose dip makes
        # the notched R in I/aVL/V5/V6 and the deep QS/rS in V1-V3. Frontal axis normal to leftward.
        y = 0.35 * p.axis_tilt
        lobe = (0.60, y, 0.80)
        return [(0.12 * d, 0.06 * d, 0.25, (0.8, 0.2, -0.2)),
                (0.30 * d, d / 7, 1.45, lobe),
                (0.68 * d, d / 7, 1.55, lobe)]
    if p.ventricular_conduction == VC_RBBB:
        # Normal septal/LV activation in the first ~80 ms, then a slow right-anterior R' ending at QRS
        # offset: rSR' in V1/V2 and a broad terminal S in I, aVL, V5, V6.
        s = min(d, 88.0) / 90.0
        sig_r = max(d - 75.0, 15.0) / 4.5
        amp_r = 0.45 + 0.45 * _rbbb_weight(d)  # incomplete RBBB: the same R', smaller
        return [(14 * s, 6 * s, 0.15, (-0.6, 0.2, -0.8)),
                (40 * s, 10 * s, 1.6, (0.62, 0.78, 0.25)),
                (62 * s, 9 * s, 0.3, (-0.45, -0.6, 0.65)),
                (d - EXTENT * sig_r, sig_r, amp_r, (-0.55, 0.05, -0.85))]
    s = d / 90.0  # normal, or IVCD: the normal sequence slowed down uniformly
    return [(14 * s, 6 * s, 0.15, (-0.6, 0.2, -0.8)),
            (40 * s, 10 * s, 1.75, (0.62, 0.78, 0.25)),
            (66 * s, 9 * s, 0.45, (-0.45, -0.6, 0.65))]


def _t_rows(p: ExamParams) -> tuple[list, float]:
    """T waves relative to the T peak, and the extra QT (ms) added by a wide QRS."""
    a = p.t_amp
    direction: tuple[float, float, float] = (0.65, 0.6, -0.45)
    rows = []
    if p.ventricular_conduction == VC_LBBB:
        # Secondary ST-T opposite to the QRS; the ST deviation starts clear of the J point.
        direction = (-0.60, -0.35 * p.axis_tilt, -0.80)
        a *= 1.3
        rows.append((p.qrs_ms + 110.0, 35.0, 0.18, direction))  # placed relative to QRS onset below
    elif p.ventricular_conduction == VC_RBBB:
        # T turns anterior-to-posterior (inverted in V1-V3, discordant to R') as the block completes.
        w = _rbbb_weight(p.qrs_ms)
        direction = tuple((1 - w) * a0 + w * a1 for a0, a1 in zip(direction, (0.65, 0.45, 0.6)))
    t_rows = [(-30.0, 50.0, 0.55 * a, direction), (5.0, 32.0, 0.6 * a, direction)]
    return rows + t_rows, max(0.0, p.qrs_ms - 100.0)


def _pvc_waves(rng: np.random.Generator, scale: float) -> tuple[Waves, Waves]:
    """A unifocal wide bizarre ventricular beat (random direction) and its discordant T."""
    u = rng.normal(size=3)
    u /= np.linalg.norm(u)
    u2 = u + 0.8 * rng.normal(size=3)
    amp = rng.uniform(1.3, 2.0)
    eye = np.eye(3)
    qrs = Waves.of([(45.0, 22.0, amp, tuple(u)), (105.0, 18.0, 0.5 * amp, tuple(u2))], eye, scale)
    t = Waves.of([(-30.0, 55.0, 0.45, tuple(-u)), (5.0, 35.0, 0.45, tuple(-u))], eye, scale)
    return qrs, t


def beat_waves(rng: np.random.Generator, p: ExamParams, train: BeatTrain) -> Waves:
    """All Gaussian waves of the exam, centres in seconds from the first recorded sample."""
    rot, gain = p.rotation, p.gain
    n = len(train.onsets)
    # Per-beat amplitude: 3 % jitter and a 4 % respiratory modulation.
    beat_gain = 1.0 + 0.03 * rng.standard_normal(n) + 0.04 * np.sin(
        2 * np.pi * p.resp_hz * train.onsets + rng.uniform(0, 2 * np.pi))
    qrs = Waves.of(_qrs_rows(p), rot, gain)
    t_rows, qt_extra = _t_rows(p)
    has_st = p.ventricular_conduction == VC_LBBB
    st = Waves.of(t_rows[:1], rot, gain) if has_st else None
    t = Waves.of(t_rows[1:] if has_st else t_rows, rot, gain)
    pr = p.pr_ms
    p_sinus = Waves.of([(-pr + 35.0, 14.0, 0.7 * p.p_amp, (0.3, 0.9, -0.5)),
                        (-pr + 60.0, 15.0, 0.8 * p.p_amp, (0.75, 0.45, 0.45))], rot, gain) if p.rhythm != AF else None
    pvc_qrs, pvc_t = _pvc_waves(rng, gain)
    p_ectopic = Waves.of([(-pr + 45.0, 18.0, 1.2 * p.p_amp, (0.3, -0.6, 0.2))], rot, gain) if p.rhythm != AF else None

    # QT per beat (Fridericia on the preceding RR), plus the wide-QRS extension; T peak = QT - 75 ms.
    qt = p.qtc_ms * MS * np.cbrt(train.rr_prev) + qt_extra * MS
    t_peak = qt - 75 * MS
    centres, sigmas, vecs = [], [], []

    def add(w: Waves, mask: np.ndarray, shift: np.ndarray | float = 0.0) -> None:
        if w is None or not mask.any():
            return
        base = train.onsets[mask] + (shift[mask] if isinstance(shift, np.ndarray) else shift)
        centres.append((base[:, None] + w.tau[None, :]).ravel())
        sigmas.append(np.broadcast_to(w.sigma, (mask.sum(), len(w.sigma))).ravel())
        vecs.append((beat_gain[mask, None, None] * w.vec[None]).reshape(-1, 3))

    supra = train.kinds != KIND_PVC
    pvc = train.kinds == KIND_PVC
    add(qrs, supra)
    add(t, supra, t_peak)
    add(st, supra)
    add(p_sinus, train.kinds == KIND_SINUS)
    add(p_ectopic, train.kinds == KIND_PAC)
    add(pvc_qrs, pvc)
    add(pvc_t, pvc, t_peak + 60 * MS)
    return Waves(np.concatenate(centres), np.concatenate(sigmas), np.concatenate(vecs))


def r_peak_offset_s(p: ExamParams, kind: int) -> float:
    """Time from QRS onset to the main (R) deflection, for the beat markers in meta."""
    if kind == KIND_PVC:
        return 45 * MS
    if p.ventricular_conduction == VC_LBBB:
        return 0.49 * p.qrs_ms * MS
    s = min(p.qrs_ms, 88.0) / 90.0 if p.ventricular_conduction == VC_RBBB else p.qrs_ms / 90.0
    return 40 * s * MS


__all__ = ["Waves", "beat_waves", "r_peak_offset_s", "KIND_SINUS", "VC_IVCD"]

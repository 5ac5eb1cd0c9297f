"""Beat morphology: each beat is a sum of Gaussian waves, each with a time, width and 3-D direction.

Axes are Frank/VCG: X right->left, Y head->feet, Z front->back (so V1 has a negative Z weight).
Timing is in seconds relative to the QRS onset, never a phase of RR, so PR, QRS and QT are explicit.
A wave's extent is +-2.5 sigma: P onset = first P centre - 2.5 sigma, the QRS waves span exactly
[0, QRS duration] and the T waves end at the QT, which keeps the label thresholds consistent with
what a delineator measures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglit.data.synthetic.rhythm import KIND_PAC, KIND_PVC, KIND_SINUS, BeatTrain
from ecglit.data.synthetic.sampling import SINUS, VC_LBBB, VC_PACED, VC_RBBB, ExamParams

MS = 1e-3
EXTENT = 2.5  # sigmas from a wave's centre to its onset/offset
LBBB_SIGMA_DIVISOR = 6.2  # QRS duration / lobe sigma: lobes 1.2 sigma apart, a broad slurred R; up to 8: notched


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


# Normal ventricular activation of a 90 ms QRS: (centre ms, sigma ms, amplitude mV, direction X, Y, Z).
# The loop turns counter-clockwise in the horizontal plane, as in a normal VCG.
NORMAL_QRS: tuple[tuple[float, float, float, tuple[float, float, float]], ...] = (
    (14.0, 6.0, 0.15, (-0.6, 0.2, -0.8)),     # septal q: rightward and anterior (r in V1, q in I/V6)
    (30.0, 8.0, 1.05, (0.74, 0.22, -0.76)),   # apical, anterior-left: R in V2-V4
    (44.0, 9.0, 1.35, (0.82, 0.45, 0.56)),    # LV free wall, left-posterior: R in I/V5/V6, S in V1-V2
    (66.0, 9.0, 0.42, (-0.53, -0.20, 1.00)),  # terminal basal: posterior and rightward (deep S in V1-V3)
)
# Fitted so that per-exam lead amplitudes (p99.5 and peak-to-peak, median over exams) come close to
# real 12-lead records (docs/synthetic-vs-real-signals.md) while keeping CODE-15%'s pooled lead stds.


def _shape(p: ExamParams, start: int, stop: int, scale: float) -> np.ndarray:
    """Per-exam spread: ``scale * morphology_spread`` times the exam's standard normals [start:stop]."""
    if p.shape is None or p.morphology_spread == 0:
        return np.zeros(stop - start)
    return scale * p.morphology_spread * p.shape[start:stop]


def _jittered(rows: list, p: ExamParams, amp_at: int, dir_at: int) -> list:
    """QRS rows with per-exam amplitude (log-normal) and direction spread (morphology_spread)."""
    amps = np.exp(_shape(p, amp_at, amp_at + len(rows), 0.15))
    dirs = _shape(p, dir_at, dir_at + 3 * len(rows), 0.12).reshape(len(rows), 3)
    return [(c, w, a * g, tuple(np.asarray(u) / np.linalg.norm(u) + d))
            for (c, w, a, u), g, d in zip(rows, amps, dirs)]


def _rbbb_weight(qrs_ms: float) -> float:
    """0 for a 100 ms QRS, 1 from 120 ms: how complete the right-bundle delay pattern is."""
    return float(np.clip((qrs_ms - 100.0) / 20.0, 0.0, 1.0))


def _lbbb_y(p: ExamParams) -> float:
    """Inferior component of the LBBB activation: a frontal axis around +20 degrees (IQR about -20 to +40,
    as in the real LBBB records, docs/real-diagnosis.md); left-axis LBBB a minority."""
    return 0.25 + 0.25 * p.axis_tilt


def _qrs_rows(p: ExamParams) -> list:
    d = p.qrs_ms
    if p.ventricular_conduction == VC_PACED:
        # Right-ventricular pacing: a spike, then slow muscle-to-muscle activation from the apex: wide,
        # LBBB-like, with a superior axis. A wide QRS that is neither bundle-branch block.
        spread = _shape(p, 20, 25, 1.0)
        sig = d / 6.0
        return [(-1.5, 1.5, 2.0 * np.exp(0.3 * spread[0]), (0.3, 0.8, -0.4)),  # pacing spike
                (EXTENT * sig, sig, 2.0 * np.exp(0.2 * spread[1]), (0.3, -0.5 + 0.2 * spread[3], 0.9)),
                (d - EXTENT * sig, sig, 1.8 * np.exp(0.2 * spread[2]), (0.8, -0.6 + 0.2 * spread[3], 0.3))]
    if p.ventricular_conduction == VC_LBBB:
        # No septal q; the left ventricle activated slowly from the right: an early posterior force (the
        # deep, steep QS/rS in V1-V3) flowing into a leftward one (the broad, slurred R in I, aVL, V5, V6).
        # The posterior force dominates (V2 peak-to-peak about 3 mV, lateral R about 1 mV: the medians of
        # real LBBB, docs/real-diagnosis.md section 3.2). The lobes' spacing runs from a broad monophasic R
        # (close) to a mid-QRS notch (apart); their extents (+-2.5 sigma) span exactly [0, d].
        spread = _shape(p, 20, 25, 1.0)
        y = _lbbb_y(p)
        sig = d / float(np.clip(LBBB_SIGMA_DIVISOR + 1.0 * spread[0], 5.2, 8.0))
        early = (0.35, y, 0.95 + 0.25 * spread[3])
        late = (0.95, y, 0.30)
        return [(0.12 * d, 0.05 * d, 0.3, (0.8, 0.2, 0.1)),
                (EXTENT * sig, sig, 2.7 * np.exp(0.2 * spread[1]), early),
                (d - EXTENT * sig, sig, 0.9 * np.exp(0.2 * spread[2]), late)]
    if p.ventricular_conduction == VC_RBBB:
        # Normal septal/LV activation in the first ~80 ms, then a slow right-anterior R' ending at QRS
        # offset: rSR' in V1/V2 and a broad terminal S in I, aVL, V5, V6.
        s = min(d, 88.0) / 90.0
        spread = _shape(p, 25, 30, 1.0)
        sig_r = max(d - 75.0, 15.0) / 4.5 * np.exp(0.12 * spread[4])
        # incomplete RBBB: the same R', smaller; its size and direction vary between patients
        amp_r = (0.45 + 0.45 * _rbbb_weight(d)) * np.exp(0.3 * spread[0])
        r_prime = tuple(np.array([-0.55, 0.05, -0.85]) + 0.2 * spread[1:4])
        early = _jittered([(c * s, w * s, a, u) for c, w, a, u in NORMAL_QRS[:-1]], p, 0, 4)
        return early + [(62 * s, 9 * s, 0.3, NORMAL_QRS[-1][3]),
                        (d - EXTENT * sig_r, sig_r, amp_r, r_prime)]
    s = d / 90.0  # normal, or IVCD: the normal sequence slowed down uniformly
    return _jittered([(c * s, w * s, a, u) for c, w, a, u in NORMAL_QRS], p, 0, 4)


def _t_rows(p: ExamParams) -> tuple[list, float]:
    """T waves relative to the T end (both Gaussians end there at +-2.5 sigma, so the T end is the
    QT), and the extra QT (ms) added by a wide QRS. The T peak comes about 85 ms before its end."""
    a = p.t_amp * float(np.exp(_shape(p, 16, 17, 0.2)[0]))
    direction: tuple[float, float, float] = tuple(np.array([0.65, 0.6, -0.45]) + _shape(p, 17, 20, 0.2))
    rows = []
    if p.ventricular_conduction in (VC_LBBB, VC_PACED):
        # Secondary ST-T, anterior: the tall T of V1-V3 (about +0.6 mV), only mildly discordant laterally
        # (V6 between -0.2 and +0.15 mV in real LBBB); the ST deviation starts clear of the J point.
        st_t = float(np.exp(_shape(p, 30, 31, 0.3)[0]))  # how marked the secondary ST-T change is
        direction = (0.0, -0.05 if p.ventricular_conduction == VC_LBBB else 0.5, -0.95)
        a = 2.0 * p.t_amp * st_t
        rows.append((p.qrs_ms + 110.0, 35.0, 0.12 * st_t, direction))  # ST deviation, relative to QRS onset
    elif p.ventricular_conduction == VC_RBBB:
        # T turns anterior-to-posterior (inverted in V1-V3, discordant to R') as the block completes.
        w = _rbbb_weight(p.qrs_ms)
        direction = tuple((1 - w) * a0 + w * a1 for a0, a1 in zip(direction, (0.65, 0.45, 0.6)))
    t_rows = [(-115.0, 46.0, 0.55 * a, direction), (-80.0, 32.0, 0.6 * a, direction)]
    return rows + t_rows, max(0.0, p.qrs_ms - 100.0)


def _pvc_rows(rng: np.random.Generator) -> tuple[list, list]:
    """A unifocal wide bizarre ventricular beat (random direction) and its discordant T."""
    u = rng.normal(size=3)
    u2 = u / np.linalg.norm(u) + 0.8 * rng.normal(size=3)
    amp = rng.uniform(1.3, 2.0)
    qrs = [(45.0, 22.0, amp, tuple(u)), (105.0, 18.0, 0.5 * amp, tuple(u2))]
    t = [(-137.5, 55.0, 0.45, tuple(-u)), (-87.5, 35.0, 0.45, tuple(-u))]  # relative to its T end
    return qrs, t


# Wave roles: where a wave is placed and on which beats it appears.
QRS, T_WAVE, ST_DEV, P_SINUS, P_ECTOPIC, PVC_QRS, PVC_T, P_RETRO = range(8)
_BEAT_ROLES = {KIND_SINUS: (QRS, T_WAVE, ST_DEV, P_SINUS, P_RETRO), KIND_PAC: (QRS, T_WAVE, ST_DEV, P_ECTOPIC),
               KIND_PVC: (PVC_QRS, PVC_T)}


def _role_mask(roles: tuple[int, ...]) -> np.ndarray:
    """(8,) bool, indexed by role: looked up per exam (np.isin per exam costs more than the wave table)."""
    return np.isin(np.arange(8), roles)


_ROLE_ON_BEAT = {kind: _role_mask(roles) for kind, roles in _BEAT_ROLES.items()}
_IS_T_ROLE = _role_mask((T_WAVE, PVC_T))
_IS_P_ROLE = _role_mask((P_SINUS, P_ECTOPIC))
# Beat-to-beat amplitude jitter per role (relative std at beat_jitter 1): P and T vary more than the QRS.
_ROLE_JITTER = np.array([0.03, 0.06, 0.06, 0.10, 0.10, 0.03, 0.06, 0.10])
P_TIMING_JITTER_MS = 4.0
PVC_T_DELAY_S = 0.06
T_SCALE_RANGE = (0.75, 1.25)  # T-wave width factor: RR^(1/3) within these bounds


def beat_waves(rng: np.random.Generator, p: ExamParams, train: BeatTrain) -> Waves:
    """All Gaussian waves of the exam, centres in seconds from the first recorded sample."""
    n = len(train.onsets)
    # Per-beat amplitude: 3 % jitter and a 4 % respiratory modulation.
    beat_gain = 1.0 + 0.03 * rng.standard_normal(n) + 0.04 * np.sin(
        2 * np.pi * p.resp_hz * train.onsets + rng.uniform(0, 2 * np.pi))
    t_rows, qt_extra = _t_rows(p)
    has_st = p.ventricular_conduction in (VC_LBBB, VC_PACED)
    pr = p.pr_ms
    pvc_qrs, pvc_t = _pvc_rows(rng)
    table = [(QRS, r) for r in _qrs_rows(p)]
    table += [(ST_DEV, r) for r in t_rows[:1]] if has_st else []
    table += [(T_WAVE, r) for r in (t_rows[1:] if has_st else t_rows)]
    if p.retrograde_p:  # SVT: atria activated backwards from the node, just after the QRS
        table += [(P_RETRO, (p.qrs_ms + 35.0, 12.0, 0.7 * p.p_amp, (0.1, -0.9, 0.3)))]
    if p.rhythm == SINUS:
        table += [(P_SINUS, (-pr + 35.0, 14.0, 0.7 * p.p_amp, (0.3, 0.9, -0.5))),
                  (P_SINUS, (-pr + 60.0, 15.0, 0.8 * p.p_amp, (0.75, 0.45, 0.45))),
                  (P_ECTOPIC, (-pr + 45.0, 18.0, 1.2 * p.p_amp, (0.3, -0.6, 0.2)))]
    table += [(PVC_QRS, r) for r in pvc_qrs] + [(PVC_T, r) for r in pvc_t]
    role = np.array([t[0] for t in table])
    rotation = p.rotation if p.vector_scale is None else p.rotation * p.vector_scale[None, :]
    waves = Waves.of([t[1] for t in table], rotation, p.gain)
    # Beat to beat: each wave's amplitude, the P wave's timing and (with respiration) the heart's axis.
    role_gain = 1.0 + p.beat_jitter * _ROLE_JITTER[None, :] * rng.standard_normal((n, len(_ROLE_JITTER)))
    p_shift = p.beat_jitter * P_TIMING_JITTER_MS * MS * rng.standard_normal(n)
    resp_angle = p.resp_rotation_rad * np.sin(2 * np.pi * p.resp_hz * train.onsets + rng.uniform(0, 2 * np.pi))
    beat_rotation = _axis_rotations(p.resp_axis, resp_angle) if p.resp_axis is not None else None

    # QT (T end) per beat: Fridericia on the preceding RR plus the wide-QRS extension. The T wave
    # itself narrows and widens with the RR like the QT does, so that at fast rates it ends at QT
    # without swallowing the ST segment.
    fridericia = np.cbrt(train.rr_prev)
    t_end = p.qtc_ms * MS * fridericia + qt_extra * MS
    t_scale = np.clip(fridericia, *T_SCALE_RANGE)
    is_t = _IS_T_ROLE[role]
    centres, sigmas, vecs = [], [], []
    for kind, on_beat in _ROLE_ON_BEAT.items():
        beats = np.flatnonzero(train.kinds == kind)
        cols = np.flatnonzero(on_beat[role])
        if len(beats) == 0 or len(cols) == 0:
            continue
        scale = np.where(is_t[cols], t_scale[beats, None], 1.0)
        shift = np.outer(t_end[beats], is_t[cols]) + PVC_T_DELAY_S * (role[cols] == PVC_T)
        shift = shift + np.outer(p_shift[beats], _IS_P_ROLE[role[cols]])
        centres.append((train.onsets[beats, None] + waves.tau[cols] * scale + shift).ravel())
        sigmas.append((waves.sigma[cols] * scale).ravel())
        gain = beat_gain[beats, None] * role_gain[beats][:, role[cols]]  # (beats, waves)
        vec = gain[:, :, None] * waves.vec[cols][None]
        if beat_rotation is not None:
            vec = np.einsum("bij,bwj->bwi", beat_rotation[beats], vec)
        vecs.append(vec.reshape(-1, 3))
    return Waves(np.concatenate(centres), np.concatenate(sigmas), np.concatenate(vecs))


def _axis_rotations(axis: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(n, 3, 3) rotations by ``angles`` (rad) about the unit ``axis`` (Rodrigues' formula)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    s, c = np.sin(angles)[:, None, None], np.cos(angles)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1 - c) * (k @ k)[None]


def r_peak_offset_s(p: ExamParams, kind: int) -> float:
    """Time from QRS onset to the main (R) deflection, for the beat markers in meta."""
    if kind == KIND_PVC:
        return 45 * MS
    if p.ventricular_conduction in (VC_LBBB, VC_PACED):
        return 0.5 * p.qrs_ms * MS  # between the two lobes
    s = min(p.qrs_ms, 88.0) / 90.0 if p.ventricular_conduction == VC_RBBB else p.qrs_ms / 90.0
    return 40 * s * MS


__all__ = ["Waves", "beat_waves", "r_peak_offset_s"]

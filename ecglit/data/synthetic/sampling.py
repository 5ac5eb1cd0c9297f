"""Sampling one exam's parameters from the joint distribution rhythm x AV x ventricular x rate.

Every nuisance variable (record length, noise level, gain, rotation, ectopy) is drawn independently
of the diagnostic choices, so no label can be read off a nuisance. Rates and intervals are drawn
relative to the configured label thresholds: positives and near-threshold negatives put
``borderline_fraction`` of their mass close to the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglit.data.synthetic.config import SyntheticConfig

SINUS, AF = "sinus", "af"
AV_NORMAL, AV_1DAVB, AV_NONE = "normal", "1dAVb", "none"
VC_NORMAL, VC_RBBB, VC_LBBB, VC_IVCD = "normal", "rbbb", "lbbb", "ivcd"

AF_RATE_BPM = (45.0, 170.0)
PR_NORMAL_MIN_MS = 120.0
PR_LONG_MAX_MS = 400.0


@dataclass
class ExamParams:
    """The sampled (intended) parameters of one exam; labels are derived later from what is realised."""

    rhythm: str
    av_conduction: str
    ventricular_conduction: str
    rate_bpm: float            # sinus rate, or mean ventricular rate in AF
    pr_ms: float               # P onset -> QRS onset (NaN in AF)
    qrs_ms: float              # QRS onset -> offset (Gaussian extents at +-2.5 sigma)
    qtc_ms: float
    record_seconds: float
    noise_level: float
    gain: float
    rotation: np.ndarray       # (3, 3) per-patient rotation of the heart vector
    p_amp: float               # mV
    t_amp: float               # mV
    axis_tilt: float           # LBBB lobe Y component / axis variability
    resp_hz: float
    sinus_arrhythmia: float    # relative RR modulation depth
    has_pac: bool
    has_pvc: bool
    distractors: tuple[str, ...]
    af_f0_hz: float = float("nan")
    af_amp_mv: float = float("nan")


def _near(rng: np.random.Generator, borderline: float, edge: float, near: float, far: float) -> float:
    """Uniform in [edge, near] with probability ``borderline``, else in [near, far] (either order)."""
    if rng.random() < borderline:
        return float(rng.uniform(min(edge, near), max(edge, near)))
    return float(rng.uniform(min(near, far), max(near, far)))


def _rotation(rng: np.random.Generator) -> np.ndarray:
    # Small random rotation about X, Y, Z (std 0.25, 0.25, 0.35 rad): spreads the frontal axis and
    # moves the precordial transition zone like inter-patient anatomy does.
    ax, ay, az = rng.normal(0.0, (0.25, 0.25, 0.35))
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def sample_params(rng: np.random.Generator, cfg: SyntheticConfig) -> ExamParams:
    """Draw one exam's parameters. The order of draws is fixed, so exam i is reproducible."""
    prev, bl = cfg.prevalence, cfg.borderline_fraction
    distractors: list[str] = []
    # Diagnostic choices, each from its own uniform so the marginals equal the prevalences.
    u_rhythm, u_av, u_rate, u_vc, u_dis = rng.random(5)
    rhythm = AF if u_rhythm < prev["AF"] else SINUS
    sinus_share = max(1.0 - prev["AF"], 1e-12)
    if rhythm == SINUS:
        av = AV_1DAVB if u_av < prev["1dAVb"] / sinus_share else AV_NORMAL
        p_sb, p_st = prev["SB"] / sinus_share, prev["ST"] / sinus_share
        rate_class = "sb" if u_rate < p_sb else ("st" if u_rate < p_sb + p_st else "normal")
    else:
        av, rate_class = AV_NONE, "af"
    if u_vc < prev["RBBB"]:
        vc = VC_RBBB
        complete = True
    elif u_vc < prev["RBBB"] + prev["LBBB"]:
        vc = VC_LBBB
        complete = True
    else:
        # Label-negative conduction distractors among the exams without a bundle-branch block.
        complete = False
        if u_dis < cfg.irbbb_fraction:
            vc = VC_RBBB
            distractors.append("incomplete_rbbb")
        elif u_dis < cfg.irbbb_fraction + cfg.ilbbb_fraction:
            vc = VC_LBBB
            distractors.append("incomplete_lbbb")
        elif u_dis < cfg.irbbb_fraction + cfg.ilbbb_fraction + cfg.ivcd_fraction:
            vc = VC_IVCD
            distractors.append("ivcd")
        else:
            vc = VC_NORMAL

    sb, st, pr_max, qrs_min = cfg.sb_max_bpm, cfg.st_min_bpm, cfg.pr_max_ms, cfg.qrs_min_ms
    # Rate (bpm). Positives: borderline share within 4-6 bpm of the threshold; negatives likewise.
    if rate_class == "sb":
        rate = _near(rng, bl, sb - 0.5, sb - 4.0, max(30.0, sb - 16.0))
    elif rate_class == "st":
        rate = _near(rng, bl, st + 0.5, st + 6.0, 165.0)
    elif rate_class == "normal":
        if rng.random() < bl:
            rate = float(rng.uniform(sb + 0.5, sb + 5.0) if rng.random() < 0.5 else rng.uniform(st - 5.0, st - 0.5))
            distractors.append("borderline_rate")
        else:
            rate = float(rng.uniform(sb + 5.0, st - 5.0))
    else:
        rate = float(rng.uniform(*AF_RATE_BPM))
    rr_s = 60.0 / rate

    # PR (ms): long PR is capped so that P does not reach the preceding QRS at fast rates.
    pr_cap = max(pr_max + 30.0, min(PR_LONG_MAX_MS, 0.75 * rr_s * 1000.0))
    if av == AV_1DAVB:
        pr = _near(rng, bl, pr_max + 5.0, pr_max + 25.0, pr_cap)
    elif av == AV_NORMAL:
        pr = _near(rng, bl, pr_max - 5.0, pr_max - 20.0, PR_NORMAL_MIN_MS)
        if pr > pr_max - 20.0:
            distractors.append("borderline_pr")
    else:
        pr = float("nan")

    # QRS duration (ms).
    if vc == VC_RBBB:
        qrs = _near(rng, bl, qrs_min, qrs_min + 8.0, 165.0) if complete else float(
            rng.uniform(max(95.0, qrs_min - 20.0), qrs_min - 2.0))
    elif vc == VC_LBBB:
        qrs = _near(rng, bl, qrs_min, qrs_min + 8.0, 180.0) if complete else float(
            rng.uniform(qrs_min - 12.0, qrs_min - 2.0))
    elif vc == VC_IVCD:
        qrs = float(rng.uniform(110.0, 140.0))
    else:
        qrs = float(rng.uniform(78.0, 105.0))

    # Nuisances and morphology variability: independent of every diagnostic choice above.
    record_seconds = 10.0 if rng.random() < cfg.p_record_10s else 7.0
    lo, hi = cfg.noise_level_range
    noise_level = float(rng.uniform(lo, hi)) * cfg.noise_scale
    gain = float(np.exp(rng.normal(-0.08, 0.25)))  # body habitus; mean tuned to CODE-15% lead stds
    rotation = _rotation(rng)
    p_amp = float(rng.uniform(0.08, 0.25))
    t_amp = float(rng.uniform(0.15, 0.45))
    axis_tilt = float(rng.uniform(-1.0, 1.0))
    qtc = float(rng.uniform(380.0, 450.0))
    resp_hz = float(rng.uniform(0.15, 0.35))
    u_sa, u_lowp, u_pac, u_pvc = rng.random(4)
    if rhythm == SINUS and u_sa < cfg.sinus_arrhythmia_fraction:
        sinus_arrhythmia = float(rng.uniform(0.06, 0.12))
        distractors.append("sinus_arrhythmia")
    else:
        # Respiratory sinus arrhythmia is smaller at high rates.
        sinus_arrhythmia = float(rng.uniform(0.005, 0.05)) * min(1.0, 80.0 / rate)
    if rhythm == SINUS and u_lowp < cfg.low_p_fraction:
        p_amp = float(rng.uniform(0.03, 0.06))
        distractors.append("low_p")
    # PACs need a sinus node to reset; PVCs occur in any rhythm.
    has_pac = bool(rhythm == SINUS and u_pac < cfg.ectopy_rate / 2)
    has_pvc = bool(u_pvc < cfg.ectopy_rate / 2)
    f0, famp = float(rng.uniform(4.5, 8.5)), float(rng.uniform(0.02, 0.15))
    return ExamParams(
        rhythm=rhythm, av_conduction=av, ventricular_conduction=vc, rate_bpm=rate, pr_ms=pr, qrs_ms=qrs,
        qtc_ms=qtc, record_seconds=record_seconds, noise_level=noise_level, gain=gain, rotation=rotation,
        p_amp=p_amp, t_amp=t_amp, axis_tilt=axis_tilt, resp_hz=resp_hz, sinus_arrhythmia=sinus_arrhythmia,
        has_pac=has_pac, has_pvc=has_pvc, distractors=tuple(distractors),
        af_f0_hz=f0 if rhythm == AF else float("nan"), af_amp_mv=famp if rhythm == AF else float("nan"),
    )

"""Sampling one exam's parameters from the joint distribution rhythm x AV x ventricular x rate.

Every nuisance variable (record length, noise level, gain, rotation, ectopy) is drawn independently
of the diagnostic choices, so no label can be read off a nuisance. Rates and intervals are drawn
relative to the configured label thresholds: positives and near-threshold negatives put
``borderline_fraction`` of their mass close to the threshold.

PR, rate and QT share one RR interval: the P wave has to fit between the previous T wave's end and
the QRS. A long PR never reaches back onto the previous T (a 1dAVb exam whose minimal long PR
cannot fit redraws its rate, QRS width and QTc within their classes: long PR and fast rates exclude
each other), and a normal PR shortens at fast rates; only in fast sinus tachycardia with a normal PR
does the P wave merge with the T wave, as it does in real tracings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ecglit.data.synthetic.config import SyntheticConfig

SINUS, AF, FLUTTER, SVT, PACED = "sinus", "af", "flutter", "svt", "paced"
AV_NORMAL, AV_1DAVB, AV_NONE = "normal", "1dAVb", "none"
VC_NORMAL, VC_RBBB, VC_LBBB, VC_IVCD, VC_PACED = "normal", "rbbb", "lbbb", "ivcd", "paced"

AF_RATE_BPM = (45.0, 170.0)
FLUTTER_ATRIAL_BPM = (240.0, 340.0)
FLUTTER_RATIOS, FLUTTER_RATIO_P = (2, 3, 4), (0.45, 0.15, 0.40)
SVT_RATE_BPM = (150.0, 220.0)
PACED_RATE_BPM = (58.0, 82.0)
PR_RATE_SHORTENING = 0.25  # normal PR shortens by up to a quarter from 70 to 130 bpm (sympathetic drive)
FREQUENT_ECTOPY = 0.35  # share of exams with ectopy that have 3-6 ectopic beats (runs, bigeminy)
ROTATION_STD_RAD = (0.25, 0.25, 0.35)
SHAPE_DRAWS = 32  # per-exam standard normals that the morphology module turns into its spread
QTC_MS = (380.0, 450.0)
ST_MAX_BPM, ST_TAIL_MEAN_BPM = 165.0, 20.0
P_AMP_RATE_GAIN = 0.6  # relative P amplitude increase from 70 to 150 bpm
PR_NORMAL_MIN_MS = 110.0
PR_LONG_CAP_MS = 350.0
PR_LONG_TAIL_MEAN_MS = 30.0  # PR beyond the borderline band: exponential tail (real 1dAVb PR clusters low)
# A P wave starts at least this long after the previous beat's T wave ends (QRS onset + QT), on the
# shortest respiratory RR, so that its onset can be seen and PR measured.
P_AFTER_T_MS = 20.0
FIT_TRIES = 200
RBBB_QRS_FLOOR_MS = 80.0  # the narrowest right-bundle pattern generated (incomplete blocks start here)
INCOMPLETE_MARGIN_MS = 2.0  # incomplete blocks end this far below their class's QRS threshold


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
    frequent_ectopy: bool
    distractors: tuple[str, ...]
    af_f0_hz: float = float("nan")
    af_amp_mv: float = float("nan")
    # atrial flutter: atrial (F-wave) rate, conduction ratio per beat (fixed or variable block)
    flutter_hz: float = float("nan")
    conduction_ratio: int = 0
    variable_block: bool = False
    retrograde_p: bool = False  # SVT: an inverted P wave just after the QRS
    # domain randomisation (v3)
    vector_scale: np.ndarray | None = None       # (3,) per-axis heart-vector scale
    precordial_mix: np.ndarray | None = None     # (6, 6) V1..V6 gains and electrode misplacement
    resp_axis: np.ndarray | None = None          # (3,) unit axis of the respiratory rotation
    resp_rotation_rad: float = 0.0
    beat_jitter: float = 0.0
    shape: np.ndarray | None = None              # (SHAPE_DRAWS,) standard normals that spread the morphology
    morphology_spread: float = 0.0
    motion: tuple[float, float, float, int] | None = None  # electrode motion: (onset s, tau s, mV, electrode)


def _near(rng: np.random.Generator, borderline: float, edge: float, near: float, far: float) -> float:
    """Uniform in [edge, near] with probability ``borderline``, else in [near, far] (either order)."""
    if rng.random() < borderline:
        return float(rng.uniform(min(edge, near), max(edge, near)))
    return float(rng.uniform(min(near, far), max(near, far)))


def _rotation(rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    # Random rotation about X, Y, Z (std 0.25, 0.25, 0.35 rad times ``scale``): spreads the frontal axis and
    # moves the precordial transition zone like inter-patient anatomy does.
    ax, ay, az = rng.normal(0.0, np.array(ROTATION_STD_RAD) * scale)
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def qt_ms(rate_bpm: float, qtc_ms: float, qrs_ms: float) -> float:
    """QT (ms) at a rate: Fridericia (QTc * RR^(1/3)) plus the QRS widening beyond 100 ms."""
    return float(qtc_ms * np.cbrt(60.0 / rate_bpm) + max(0.0, qrs_ms - 100.0))


def _tp_room_ms(rate_bpm: float, qtc_ms: float, qrs_ms: float, sinus_arrhythmia: float) -> float:
    """Longest PR (ms) whose P wave still starts P_AFTER_T_MS after the previous T wave, on the
    shortest RR of the respiratory cycle."""
    return 60000.0 / rate_bpm * (1.0 - sinus_arrhythmia) - qt_ms(rate_bpm, qtc_ms, qrs_ms) - P_AFTER_T_MS


def _truncated_exponential(u: float, mean: float, span: float) -> float:
    """Inverse CDF at ``u`` of an exponential with ``mean`` truncated to [0, span]."""
    return float(-mean * np.log1p(u * np.expm1(-span / mean)))


def _draw_rate(rng: np.random.Generator, rate_class: str, cfg: SyntheticConfig, bl: float) -> tuple[float, bool]:
    """(rate in bpm, whether it is a borderline-rate distractor) for a rate class."""
    sb, st = cfg.sb_max_bpm, cfg.st_min_bpm
    if rate_class == "sb":
        return _near(rng, bl, sb - 0.5, sb - 4.0, max(30.0, sb - 16.0)), False
    if rate_class == "st":
        # Most sinus tachycardia is mild: beyond the borderline band the rate decays exponentially.
        u_band, u = rng.random(2)
        if u_band < bl:
            return float(st + 0.5 + 5.5 * u), False
        return st + 6.0 + _truncated_exponential(u, ST_TAIL_MEAN_BPM, ST_MAX_BPM - st - 6.0), False
    if rate_class == "svt":
        return float(rng.uniform(*SVT_RATE_BPM)), False
    if rate_class == "paced":
        return float(rng.uniform(*PACED_RATE_BPM)), False
    if rate_class == "normal":
        if rng.random() < bl:
            low = rng.random() < 0.5
            return float(rng.uniform(sb + 0.5, sb + 5.0) if low else rng.uniform(st - 5.0, st - 0.5)), True
        return float(rng.uniform(sb + 5.0, st - 5.0)), False
    return float(rng.uniform(*AF_RATE_BPM)), False


def _draw_qrs(rng: np.random.Generator, vc: str, complete: bool, cfg: SyntheticConfig, bl: float) -> float:
    """QRS duration (ms): the +-2.5 sigma extent of the QRS waves."""
    qrs_min, rbbb_min = cfg.qrs_min_ms, cfg.rbbb_qrs_min_ms
    if vc == VC_RBBB:
        return _near(rng, bl, rbbb_min, rbbb_min + 8.0, 165.0) if complete else float(
            rng.uniform(max(RBBB_QRS_FLOOR_MS, rbbb_min - 20.0), rbbb_min - INCOMPLETE_MARGIN_MS))
    if vc == VC_PACED:
        return float(rng.uniform(140.0, 180.0))
    if vc == VC_LBBB:
        return _near(rng, bl, qrs_min, qrs_min + 8.0, 180.0) if complete else float(
            rng.uniform(qrs_min - 12.0, qrs_min - INCOMPLETE_MARGIN_MS))
    if vc == VC_IVCD:
        return float(rng.uniform(110.0, 140.0))
    return float(rng.uniform(70.0, 100.0))  # normal adults: about 85 ms


def incomplete_rbbb_fraction(cfg: SyntheticConfig) -> float:
    """Share of the exams without a bundle-branch block that get a label-negative incomplete RBBB: the
    configured ``irbbb_fraction``, or 0 when the RBBB threshold leaves no narrower right-bundle pattern
    (from RBBB_QRS_FLOOR_MS on, every right-bundle pattern is then RBBB)."""
    return cfg.irbbb_fraction if cfg.rbbb_qrs_min_ms - INCOMPLETE_MARGIN_MS > RBBB_QRS_FLOOR_MS else 0.0


def _long_pr(rng: np.random.Generator, pr_max: float, bl: float, room: float) -> float:
    """1dAVb PR (ms): ``bl`` of the mass within 3-20 ms above the threshold, the rest an exponential
    tail (mean PR_LONG_TAIL_MEAN_MS) beyond it; never above PR_LONG_CAP_MS nor ``room``. Real first-degree
    blocks cluster just above 200 ms (CPSC median 202 ms, docs/real-diagnosis.md)."""
    lo, mid = pr_max + 3.0, pr_max + 20.0
    hi = max(lo, min(PR_LONG_CAP_MS, room))
    u_band, u = rng.random(2)
    if u_band < bl or hi <= mid:
        return float(lo + u * (min(mid, hi) - lo))
    return mid + _truncated_exponential(u, PR_LONG_TAIL_MEAN_MS, hi - mid)


def _normal_pr(rng: np.random.Generator, pr_max: float, bl: float, room: float, rate_bpm: float) -> float:
    """Normal PR (ms), 110 to pr_max - 5, shortening with the rate (by up to PR_RATE_SHORTENING from 70 to
    130 bpm, as real sinus tachycardia does); shorter still when the RR leaves no room."""
    pr = _near(rng, bl, pr_max - 5.0, pr_max - 20.0, PR_NORMAL_MIN_MS)
    pr *= 1.0 - PR_RATE_SHORTENING * float(np.clip((rate_bpm - 70.0) / 60.0, 0.0, 1.0))
    cap = max(PR_NORMAL_MIN_MS + 20.0, room)  # PR shortens at fast rates, to 120-140 ms at most
    u = rng.random()
    return pr if pr <= cap else float(PR_NORMAL_MIN_MS + u * (cap - PR_NORMAL_MIN_MS))


def sample_params(rng: np.random.Generator, cfg: SyntheticConfig) -> ExamParams:
    """Draw one exam's parameters. The order of draws is fixed, so exam i is reproducible."""
    prev, bl = cfg.prevalence, cfg.borderline_fraction
    distractors: list[str] = []
    # Diagnostic choices, each from its own uniform so the marginals equal the prevalences.
    u_rhythm, u_av, u_rate, u_vc, u_dis = rng.random(5)
    p_flutter, p_svt, p_paced = cfg.flutter_fraction, cfg.svt_fraction, cfg.paced_fraction
    edges = np.cumsum([prev["AF"], p_flutter, p_svt, p_paced])
    rhythm = (AF, FLUTTER, SVT, PACED, SINUS)[int(np.searchsorted(edges, u_rhythm, side="right"))]
    sinus_share = max(1.0 - float(edges[-1]), 1e-12)
    if rhythm == SINUS:
        av = AV_1DAVB if u_av < prev["1dAVb"] / sinus_share else AV_NORMAL
        p_sb, p_st = prev["SB"] / sinus_share, prev["ST"] / sinus_share
        rate_class = "sb" if u_rate < p_sb else ("st" if u_rate < p_sb + p_st else "normal")
    else:
        av, rate_class = AV_NONE, {AF: "af", SVT: "svt", FLUTTER: "flutter", PACED: "paced"}[rhythm]
    if u_vc < prev["RBBB"]:
        vc = VC_RBBB
        complete = True
    elif u_vc < prev["RBBB"] + prev["LBBB"]:
        vc = VC_LBBB
        complete = True
    else:
        # Label-negative conduction distractors among the exams without a bundle-branch block.
        complete = False
        irbbb = incomplete_rbbb_fraction(cfg)
        if u_dis < irbbb:
            vc = VC_RBBB
            distractors.append("incomplete_rbbb")
        elif u_dis < irbbb + cfg.ilbbb_fraction:
            vc = VC_LBBB
            distractors.append("incomplete_lbbb")
        elif u_dis < irbbb + cfg.ilbbb_fraction + cfg.ivcd_fraction:
            vc = VC_IVCD
            distractors.append("ivcd")
        else:
            vc = VC_NORMAL
    if rhythm == PACED:  # the paced QRS replaces whatever conduction the heart has
        vc, complete = VC_PACED, False

    # Respiratory sinus arrhythmia (drawn first: the P wave must fit on the shortest RR). Marked
    # arrhythmia is a distractor; the usual small one is smaller at high rates.
    u_sa, u_sa_depth = rng.random(2)
    marked_sa = rhythm == SINUS and u_sa < cfg.sinus_arrhythmia_fraction
    if marked_sa:
        distractors.append("sinus_arrhythmia")

    def sa_depth(rate_bpm: float) -> float:
        if marked_sa:
            return 0.06 + 0.06 * float(u_sa_depth)
        return (0.005 + 0.045 * float(u_sa_depth)) * min(1.0, 80.0 / rate_bpm)

    # Rate, QRS width and QTc, redrawn (within their classes) until a long PR fits in the RR.
    pr_max = cfg.pr_max_ms
    best: tuple[float, float, float, float, bool] | None = None
    flutter_hz, ratio = float("nan"), 0
    if rhythm == FLUTTER:
        flutter_hz = float(rng.uniform(*FLUTTER_ATRIAL_BPM)) / 60.0
        ratio = int(rng.choice(FLUTTER_RATIOS, p=FLUTTER_RATIO_P))
    for _ in range(FIT_TRIES if av == AV_1DAVB else 1):
        if rhythm == FLUTTER:
            rate, borderline_rate = 60.0 * flutter_hz / ratio, False
        else:
            rate, borderline_rate = _draw_rate(rng, rate_class, cfg, bl)
        qrs = _draw_qrs(rng, vc, complete, cfg, bl)
        qtc = float(rng.uniform(*QTC_MS))
        room = _tp_room_ms(rate, qtc, qrs, sa_depth(rate)) if rhythm == SINUS else float("nan")
        if best is None or room > best[3]:
            best = (rate, qrs, qtc, room, borderline_rate)
        if av != AV_1DAVB or room >= pr_max + 5.0:
            break
    assert best is not None
    rate, qrs, qtc, room, borderline_rate = best
    if borderline_rate:
        distractors.append("borderline_rate")
    if av == AV_1DAVB:
        pr = _long_pr(rng, pr_max, bl, room)
    elif av == AV_NORMAL:
        pr = _normal_pr(rng, pr_max, bl, room, rate)
        if pr > pr_max - 20.0:
            distractors.append("borderline_pr")
    else:
        pr = float("nan")

    # Nuisances and morphology variability: independent of every diagnostic choice above.
    record_seconds = 10.0 if rng.random() < cfg.p_record_10s else 7.0
    lo, hi = cfg.noise_level_range
    noise_level = float(rng.uniform(lo, hi)) * cfg.noise_scale
    gain = float(np.exp(rng.normal(-0.08, 0.25)))  # body habitus
    rotation = _rotation(rng, cfg.rotation_scale)
    p_amp = float(rng.uniform(0.08, 0.25))
    t_amp = float(rng.uniform(0.15, 0.45))
    axis_tilt = float(rng.uniform(-1.0, 1.0))
    resp_hz = float(rng.uniform(0.15, 0.35))
    u_lowp, u_pac, u_pvc, u_frequent = rng.random(4)
    if rhythm == SINUS and u_lowp < cfg.low_p_fraction:
        p_amp = float(rng.uniform(0.03, 0.06))
        distractors.append("low_p")
    # Sympathetic drive makes the P wave taller at faster sinus rates (as in exercise tracings).
    p_amp *= 1.0 + P_AMP_RATE_GAIN * float(np.clip((rate - 70.0) / 80.0, 0.0, 1.0))
    # PVCs are equally likely in every rhythm, so their presence says nothing about AF. PACs are
    # atrial ectopics and need an organised atrial rhythm: sinus exams only.
    has_pac = bool(rhythm == SINUS and u_pac < cfg.ectopy_rate / 2)
    has_pvc = bool(rhythm != PACED and u_pvc < cfg.ectopy_rate / 2)
    frequent = bool((has_pac or has_pvc) and u_frequent < FREQUENT_ECTOPY)
    f0 = float(rng.uniform(4.5, 8.5))
    lo, hi = np.log(cfg.af_amp_mv)
    famp = float(np.exp(rng.uniform(lo, hi)))  # fine to coarse f waves
    if rhythm == FLUTTER:
        famp = float(rng.uniform(0.08, 0.25))  # F waves are larger and regular
    extra = _domain_randomisation(rng, cfg)
    u_block, u_retro = rng.random(2)
    return ExamParams(
        rhythm=rhythm, av_conduction=av, ventricular_conduction=vc, rate_bpm=rate, pr_ms=pr, qrs_ms=qrs,
        qtc_ms=qtc, record_seconds=record_seconds, noise_level=noise_level, gain=gain, rotation=rotation,
        p_amp=p_amp, t_amp=t_amp, axis_tilt=axis_tilt, resp_hz=resp_hz, sinus_arrhythmia=sa_depth(rate),
        has_pac=has_pac, has_pvc=has_pvc, frequent_ectopy=frequent, distractors=tuple(distractors),
        af_f0_hz=f0 if rhythm == AF else float("nan"), af_amp_mv=famp if rhythm in (AF, FLUTTER) else float("nan"),
        flutter_hz=flutter_hz, conduction_ratio=ratio, variable_block=bool(rhythm == FLUTTER and u_block < 0.25),
        retrograde_p=bool(rhythm == SVT and u_retro < 0.5), **extra,
    )


def _precordial_mix(rng: np.random.Generator, variability: float) -> np.ndarray:
    """(6, 6) map of V1..V6: non-dipolar gains (smooth across neighbours: the electrodes' proximity to the
    heart) and electrode misplacement (each electrode part-way towards a neighbour's position)."""
    log_gain = rng.normal(0.0, variability, 6)
    log_gain = np.convolve(np.r_[log_gain[0], log_gain, log_gain[-1]], [0.25, 0.5, 0.25], mode="valid")
    shift = rng.uniform(-variability, variability, 6)  # > 0: towards the next electrode, < 0: the previous
    mix = np.zeros((6, 6))
    for i in range(6):
        j = min(5, i + 1) if shift[i] > 0 else max(0, i - 1)
        mix[i, i] += 1.0 - abs(shift[i])
        mix[i, j] += abs(shift[i])
    return np.exp(log_gain)[:, None] * mix


def _domain_randomisation(rng: np.random.Generator, cfg: SyntheticConfig) -> dict:
    """Per-exam draws of the v3 domain randomisation (fixed order of draws)."""
    vector_scale = np.exp(rng.normal(0.0, cfg.vector_anisotropy, 3))
    mix = _precordial_mix(rng, cfg.precordial_variability)
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    shape = rng.standard_normal(SHAPE_DRAWS)
    u_motion, onset, tau, amp, electrode = rng.random(5)
    motion = None
    if u_motion < cfg.motion_artifact_rate:
        motion = (float(onset * 10.0), float(0.2 + 1.3 * tau), float(0.2 + 1.3 * amp), int(electrode * 9))
    return {"vector_scale": vector_scale, "precordial_mix": mix, "resp_axis": axis,
            "resp_rotation_rad": float(np.radians(cfg.resp_rotation_deg) * cfg.beat_jitter),
            "beat_jitter": float(cfg.beat_jitter), "shape": shape, "morphology_spread": float(cfg.morphology_spread),
            "motion": motion}

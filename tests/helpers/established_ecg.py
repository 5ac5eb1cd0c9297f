"""12-lead ECG measurements with established tools, for validating ecglit's synthetic generator.

R peaks come from wfdb.processing's XQRS and P peaks from neurokit2's ``ecg_delineate(method="peak")``.
Everything else is plain numpy around those R peaks: RR statistics, median beats, the beat-to-beat
consistency of the P-wave window and QRS shape features of the median beat. Nothing here reads the
generator's parameters or uses ecglit's own delineator (scripts/median_beat_intervals.py).

Input: one exam, (n, 12) in ecglit's lead order and units (1e-4 V), 400 Hz, padding removed.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import signal

from ecglit.constants import LEADS, SAMPLE_RATE, UNITS_PER_MV

FS = SAMPLE_RATE
INDEPENDENT = tuple(LEADS.index(name) for name in ("DI", "DII", "V1", "V2", "V3", "V4", "V5", "V6"))
PREMATURE = 0.8  # an RR below 80 % of the median ends at a premature beat (or a missed one follows)
# AF by measurement: irregularly irregular RR (median successive change above 8 %, which sinus arrhythmia and
# a few ectopic beats rarely reach) and no P wave repeating before the QRS.
AF_IRREGULARITY, AF_P_CONSISTENCY = 0.08, 0.6
BEAT_S = (0.45, 0.45)  # median-beat window around the fiducial point: before, after
ALIGN_S = 0.04  # each beat is moved by up to this much onto the median QRS
P_END_S = 0.04  # the P window ends this long before the QRS rises (30 % of its spatial magnitude)
P_LONGEST_S = 0.22
QRS_SEARCH_S = 0.16  # after the QRS rise: long enough for a 180 ms QRS


def _samples(seconds: float) -> int:
    return round(seconds * FS)


def _bandpass(x: np.ndarray, low: float, high: float) -> np.ndarray:
    sos = signal.butter(2, (low, high), "bandpass", fs=FS, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def _detection_lead(mv: np.ndarray) -> list[int]:
    """Independent leads, best first, by how far their QRS (99th percentile of the 8-30 Hz band) stands
    above their median (tall T waves and noise are where QRS detectors go wrong)."""
    band = np.abs(_bandpass(mv[:, INDEPENDENT], 8.0, 30.0))
    score = np.percentile(band, 99, axis=0) / (np.median(band, axis=0) + 1e-9)
    return [INDEPENDENT[k] for k in np.argsort(-score)]


def xqrs_peaks(mv: np.ndarray) -> np.ndarray:
    """XQRS R peaks (sample indices) on the lead whose QRS stands out most; the next lead if XQRS finds
    fewer than 3 beats there (it occasionally fails to learn on a low-amplitude lead)."""
    import wfdb.processing as wp

    peaks = np.zeros(0, int)
    for lead in _detection_lead(mv)[:3]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            peaks = np.asarray(wp.xqrs_detect(mv[:, lead], FS, verbose=False), int)
        if len(peaks) >= 3:
            break
    return peaks


def rr_features(peaks: np.ndarray) -> dict[str, float]:
    """The RR irregularity (median |successive RR difference| / median RR), whether every RR lies within
    20 % of the median (no premature beat, pause or missed beat), and the heart rate: 60 / mean NN interval,
    where the intervals touching a premature beat are left out as a clinical rate measurement does, unless
    the rhythm is irregularly irregular (irregularity > AF_IRREGULARITY), where every interval counts."""
    out = {"hr_bpm": math.nan, "rr_irregularity": math.nan, "rr_median_s": math.nan, "regular": False}
    rr = np.diff(peaks) / FS
    if len(rr) < 3:
        return out
    median = float(np.median(rr))
    irregularity = float(np.median(np.abs(np.diff(rr))) / median)
    premature = rr < PREMATURE * median
    touching = premature | np.r_[False, premature[:-1]]
    nn = rr[~touching] if (~touching).any() and irregularity <= AF_IRREGULARITY else rr
    out.update(hr_bpm=60.0 / float(nn.mean()), rr_median_s=median, rr_irregularity=irregularity,
               regular=bool(np.all(np.abs(rr / median - 1.0) < 0.2)))
    return out


def _windows(x: np.ndarray, centres: np.ndarray, before: int, after: int) -> tuple[np.ndarray, np.ndarray]:
    keep = centres[(centres - before >= 0) & (centres + after <= len(x))]
    return x[keep[:, None] + np.arange(-before, after)[None, :]], keep


def _aligned(x8: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Peaks moved (by up to 40 ms) onto the best match with the median 8-lead QRS: one fiducial point
    per beat, whichever wave the detector marked."""
    half, lag = _samples(0.08), _samples(ALIGN_S)
    beats, kept = _windows(x8, peaks, half + lag, half + lag)
    if len(kept) < 3:
        return kept
    qrs = np.median(beats, axis=0)[lag : lag + 2 * half]
    scores = np.stack([np.einsum("bwl,wl->b", beats[:, lag + d : lag + d + 2 * half], qrs)
                       for d in range(-lag, lag + 1)], axis=1)
    return kept + np.argmax(scores, axis=1) - lag


def _qrs_rise(median8: np.ndarray, fiducial: int) -> int:
    """Where the median beat's spatial magnitude first reaches 30 % of its QRS peak (within 150 ms before
    the peak): a landmark early in the QRS, not its onset."""
    level = median8 - np.median(median8, axis=0)
    magnitude = np.sqrt((level**2).sum(axis=1))
    lo = fiducial - _samples(0.08)
    peak = lo + int(np.argmax(magnitude[lo : fiducial + _samples(0.08)]))
    first = peak - _samples(0.15)
    return first + int(np.flatnonzero(magnitude[first : peak + 1] >= 0.3 * magnitude[peak])[0])


def p_consistency(lead: np.ndarray, ends: np.ndarray, rr_s: float) -> float:
    """Median correlation of each beat's P window (ending at ``ends``) with the mean of the others', after
    removing each window's linear trend (the tail of a T wave, wander): about 1 for a P wave that repeats
    before every QRS, about 0 for f-waves or noise. The window is up to 220 ms long and shorter at fast
    rates (0.45 RR - 80 ms); 0 when less than 60 ms is left."""
    length = min(_samples(P_LONGEST_S), round((0.45 * rr_s - 0.08) * FS))
    if length < _samples(0.06):
        return 0.0
    ends = ends[(ends - length >= 0) & (ends <= len(lead))]
    if len(ends) < 3:
        return math.nan
    w = signal.detrend(lead[ends[:, None] + np.arange(-length, 0)[None, :]], axis=1)
    others = (w.sum(axis=0, keepdims=True) - w) / (len(w) - 1)
    norms = np.linalg.norm(w, axis=1) * np.linalg.norm(others, axis=1)
    scores = np.divide((w * others).sum(axis=1), norms, out=np.zeros(len(w)), where=norms > 0)
    return float(np.median(scores))


def measure_rhythm(x: np.ndarray) -> dict[str, Any]:
    """XQRS R peaks, rate and RR features, and the P-window consistency (lead II) of one exam.

    Also returns what :func:`qrs_morphology` needs: ``fiducials`` (aligned beats) and ``qrs_rise`` (offset
    of the QRS landmark from them, samples).
    """
    mv = np.asarray(x, np.float64) / UNITS_PER_MV
    peaks = xqrs_peaks(mv)
    out: dict[str, Any] = {"peaks": peaks, **rr_features(peaks), "p_consistency": math.nan,
                           "fiducials": np.zeros(0, int), "qrs_rise": 0}
    x8 = _bandpass(mv[:, INDEPENDENT], 0.5, 40.0)
    fiducials = _aligned(x8, peaks)
    before, after = _samples(BEAT_S[0]), _samples(BEAT_S[1])
    beats, kept = _windows(x8, fiducials, before, after)
    if len(kept) < 3 or not np.isfinite(out["rr_median_s"]):
        return out
    rise = _qrs_rise(np.median(beats, axis=0), before) - before
    # P windows of the beats that end a normal RR: a premature (ectopic) beat brings its own P wave or none
    on_time = np.diff(fiducials, prepend=-len(x8)) >= PREMATURE * out["rr_median_s"] * FS
    ends = fiducials[on_time] + rise - _samples(P_END_S)
    out.update(fiducials=fiducials, qrs_rise=rise,
               p_consistency=p_consistency(x8[:, INDEPENDENT.index(LEADS.index("DII"))], ends,
                                           out["rr_median_s"]))
    return out


def p_to_r_ms(x: np.ndarray, peaks: np.ndarray) -> float:
    """neurokit2's P peak -> R peak in lead II, median over the beats (ms); NaN where no P is found.

    The R peaks are moved onto lead II's own QRS extremum (wfdb ``correct_peaks``) first. neurokit2 looks
    for the P peak in the 35 % of the RR before the R peak, so longer distances are not seen.
    """
    import neurokit2 as nk
    import wfdb.processing as wp

    cleaned = nk.ecg_clean(np.asarray(x[:, LEADS.index("DII")], np.float64) / UNITS_PER_MV, sampling_rate=FS)
    moved = np.asarray(wp.correct_peaks(cleaned, peaks, _samples(0.05), _samples(0.02), "compare"), int)
    moved = np.unique(moved[(moved >= 0) & (moved < len(cleaned))])
    if len(moved) < 3:
        return math.nan
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, waves = nk.ecg_delineate(cleaned, moved, sampling_rate=FS, method="peak")
    except (ValueError, IndexError):  # neurokit2 raises on records it cannot segment
        return math.nan
    p_peaks = np.asarray(waves["ECG_P_Peaks"], float)[: len(moved)]
    distance = (moved[: len(p_peaks)] - p_peaks)[np.isfinite(p_peaks)]
    return float(np.median(distance) * 1000.0 / FS) if len(distance) else math.nan


def _run_ms(mask: np.ndarray, index: int) -> float:
    """Length (ms) of the run of True in ``mask`` that contains ``index`` (0 when it is False there)."""
    if not mask[index]:
        return 0.0
    edges = np.flatnonzero(np.diff(np.r_[False, mask, False].astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]
    k = int(np.searchsorted(starts, index, side="right")) - 1
    return float(stops[k] - starts[k]) * 1000.0 / FS


def qrs_morphology(x: np.ndarray, rhythm: dict[str, Any]) -> dict[str, float]:
    """QRS shape of the median beat of ``x`` (a noise-free rendering of the exam ``rhythm`` was measured on),
    in V1, V2, I and V6, mV. Times are searched from 30 ms before the QRS rise to 160 ms after it.

    Per lead: ``max``/``min``; ``r_prime`` (the largest deflection 40-160 ms after the rise above the deepest
    point before it, when it is positive: the R' of an rsR'); ``r_ms`` and ``s_ms`` (how long the main R
    and the deepest wave after it stay beyond 0.02 mV or 5 % of the QRS amplitude); ``q`` (the deepest point
    before the main R: a q wave when clearly negative).
    """
    fiducials = rhythm["fiducials"]
    if len(fiducials) < 3:
        return {}
    mv = _bandpass(np.asarray(x, np.float64) / UNITS_PER_MV, 0.5, 40.0)
    before, after = _samples(BEAT_S[0]), _samples(BEAT_S[1])
    beats, _ = _windows(mv, fiducials, before, after)
    beat = np.median(beats, axis=0)
    rise = before + int(rhythm["qrs_rise"])
    # isoelectric level: the flattest 20 ms (over all leads) in the 250 ms before the QRS
    lo, width = rise - _samples(0.25), _samples(0.02)
    activity = np.abs(np.diff(beat[lo : rise - width], axis=0)).sum(axis=1)
    flat = lo + int(np.argmin(np.convolve(activity, np.ones(width), "valid")))
    beat = beat - beat[flat : flat + width].mean(axis=0)
    first, last = rise - _samples(0.03), rise + _samples(QRS_SEARCH_S)
    out: dict[str, float] = {}
    for name in ("V1", "V2", "DI", "V6"):
        lead = beat[:, LEADS.index(name)]
        r_at = first + int(np.argmax(lead[first:last]))
        top, bottom = float(lead[first:last].max()), float(lead[first:last].min())
        level = max(0.02, 0.05 * (top - bottom))
        late = rise + _samples(0.04) + int(np.argmax(lead[rise + _samples(0.04) : last]))
        s_at = r_at + int(np.argmin(lead[r_at:last]))
        deepest = first + int(np.argmin(lead[first:last]))
        out.update({
            f"max_{name}": top, f"min_{name}": bottom,
            f"r_before_s_{name}": float(lead[first : deepest + 1].max()),
            f"r_prime_{name}": float(lead[late] - lead[first:late].min()) if lead[late] > 0.05 else 0.0,
            f"r_ms_{name}": _run_ms(lead > level, r_at),
            f"s_ms_{name}": _run_ms(lead < -level, s_at),
            f"q_{name}": float(lead[first:r_at].min()) if r_at > first else 0.0,
        })
    return out


def af_by_measurement(rhythm: dict[str, Any]) -> bool:
    """Irregularly irregular RR and no repeating P wave (ESC 2020's description of AF on the ECG)."""
    irregular = rhythm["rr_irregularity"] > AF_IRREGULARITY
    return bool(irregular and not rhythm["p_consistency"] >= AF_P_CONSISTENCY)  # NaN: no P window


def rbbb_criteria(m: dict[str, float]) -> dict[str, bool]:
    """AHA/ACCF/HRS 2009 morphology of complete RBBB (Surawicz et al., criteria 2 and 3; the QRS width, 1,
    is not measured): an R' after an S in V1 or V2 (here >= 0.2 mV above the S), and an S wave in I and
    in V6 that lasts longer than the R wave or more than 40 ms."""
    return {
        "r_prime_v1_v2": max(m["r_prime_V1"], m["r_prime_V2"]) >= 0.2,
        "broad_s_i": m["s_ms_DI"] > 40 or m["s_ms_DI"] > m["r_ms_DI"],
        "broad_s_v6": m["s_ms_V6"] > 40 or m["s_ms_V6"] > m["r_ms_V6"],
    }


def lbbb_criteria(m: dict[str, float]) -> dict[str, bool]:
    """AHA/ACCF/HRS 2009 morphology of complete LBBB (Surawicz et al., criteria 2 and 3; the QRS width is
    not measured): a QS or rS in V1 (its S deeper than the r before it is tall), no q wave in I and V6
    (nothing below -0.05 mV before the R), and a broad R wave in I and V6 (positive QRS whose R lasts
    60 ms or more)."""
    return {
        "qs_or_rs_v1": -m["min_V1"] > m["r_before_s_V1"],
        "no_q_i_v6": m["q_DI"] > -0.05 and m["q_V6"] > -0.05,
        "broad_r_i": m["max_DI"] > -m["min_DI"] and m["r_ms_DI"] >= 60,
        "broad_r_v6": m["max_V6"] > -m["min_V6"] and m["r_ms_V6"] >= 60,
    }

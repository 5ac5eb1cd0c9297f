"""Heart rate, PR and QRS measured from a 12-lead ECG: a median-beat delineator for the diagnosis scripts.

A research tool, not part of the framework: ``scripts/diagnose_real_features.py`` adds its values as an
``ecglit_`` cross-check and ``scripts/synthetic_vs_real.py`` compares synthetic and real records with it.
It was written in this project and checked on hand-built ECGs (tests/test_median_beat_intervals.py) and on
ecglit's own synthetic exams, so it is no referee for the generator: tests/test_synthetic_validity.py
validates the generator with wfdb and neurokit2 instead. Import it with ``scripts/`` on ``sys.path``.

The method follows the AHA advice to prefer *global* intervals (Kligfield et al. 2007):

1. Zero padding at both ends is cut off, and the independent leads (I, II, V1-V6 of a 12-lead
   record in ecglit's lead order; all leads otherwise) are band-passed 0.5-40 Hz.
2. R peaks: ``scipy.signal.find_peaks`` on the 60 ms moving average of the spatial velocity (the
   root-sum-square derivative over the leads) of the 8-30 Hz band, with an adaptive level, T-wave
   rejection and a search-back in long gaps (see :func:`detect_qrs`).
3. A median beat is built from the beats aligned on their QRS (one cross-correlation refinement).
   Ectopic beats and noise average out of it.
4. On the median beat's spatial velocity: QRS onset/offset are where it crosses 8 % of the QRS peak
   above the isoelectric floor (gaps shorter than 20 ms bridged); P onset is the start of the last
   lobe above 25 % of the largest activity between the previous QRS and 20 ms before QRS onset
   (at most 420 ms before it); a lobe too long for a P wave is cut at its deepest valley.
5. Whether a repeating P wave exists is measured as ``p_consistency``: the median correlation of
   each beat's TQ segment (after the previous T wave, before the QRS) with the mean of the other
   beats'. A repeating P wave correlates (about 0.8-1, lower with noise); fibrillatory waves and
   noise do not (about 0-0.4). ``af_rule`` combines it with the RR irregularity.

Units do not matter (every threshold is relative), so millivolts, microvolts or ecglit's 1e-4 V
work alike. Known limits: at high rates the P wave merges with the preceding T wave and the PR found
is then less reliable; broad smooth QRS complexes (LBBB) are measured longer than their +-2.5 sigma
extent, because their tails still carry more than 8 % of the peak spatial velocity.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
from scipy import ndimage, signal

# I, II, V1..V6 of ecglit's lead order: the 8 leads the other 4 are computed from.
INDEPENDENT_LEADS_12: tuple[int, ...] = (0, 1, 6, 7, 8, 9, 10, 11)
BAND_HZ: tuple[float, float] = (0.5, 40.0)
# QRS detection looks at 8-30 Hz: steep QRS slopes pass, slow T waves (LBBB's large discordant T
# included) and baseline wander much less.
DETECT_BAND_HZ: tuple[float, float] = (8.0, 30.0)
ENVELOPE_S = 0.060
MIN_RR_S = 0.200  # 300 bpm: no human rhythm is faster
PEAK_LEVEL = 0.40  # of the tall candidates' height above the floor
T_WAVE_WINDOW_S = 0.360
SEARCHBACK_GAP = 1.5  # median RRs
SEARCHBACK_LEVEL = 0.15
BEAT_WINDOW_S: tuple[float, float] = (0.50, 0.45)  # before / after the R peak
ALIGN_MAX_LAG_S = 0.030
QRS_LEVEL = 0.08
QRS_BRIDGE_S = 0.020
P_WINDOW_S: tuple[float, float] = (0.420, 0.020)  # searched before QRS onset
P_LEVEL = 0.25
P_BRIDGE_S = 0.008  # a P wave's own mid-wave dip is narrow; wider gaps separate P from T
P_MIN_WIDTH_S = 0.020
P_MAX_LOBE_S = 0.140
P_MIN_WINDOW_S = 0.060
QT_FRIDERICIA_S = 0.450  # a long-normal QTc: the previous T wave is over by then
P_PRESENT_MIN = 0.5  # p_consistency below this: no repeating P wave
# AF rule of measure-based labelling: irregularly irregular RR and no repeating P wave.
AF_IRREGULARITY_MIN = 0.08
AF_P_CONSISTENCY_MAX = 0.6
PREMATURE_FRACTION = 0.8  # an RR below 80 % of the median ends at a premature beat
MIN_SECONDS = 2.0

RESULT_KEYS: tuple[str, ...] = (
    "hr_bpm", "rr_cv", "rr_irregularity", "pr_ms", "qrs_ms", "p_consistency", "n_beats", "r_peaks",
)


def measure_intervals(
    signal_: np.ndarray, fs: float = 400.0, lead_indices: tuple[int, ...] | None = None
) -> dict[str, Any]:
    """Measure HR, RR irregularity, PR and QRS duration of one multi-lead ECG.

    Args:
        signal_: (n_samples, n_leads) array in any amplitude unit; leading/trailing all-zero rows
            (padding) are ignored.
        fs: sampling rate in Hz.
        lead_indices: leads to use; default I, II, V1-V6 for 12 leads in ecglit's order, else all.

    Returns:
        dict with ``hr_bpm`` (60 / mean NN interval: intervals touching a premature beat are left
        out unless the rhythm is irregularly irregular), ``rr_cv`` (std/mean of all RR), ``rr_irregularity``
        (median |successive RR difference| / median RR; ectopic beats barely move it),
        ``pr_ms`` (NaN when no repeating P wave, or AF by :func:`af_rule`), ``qrs_ms``,
        ``p_consistency`` (0-1, see module doc; 0 when no T-free room is left at fast rates),
        ``n_beats`` and ``r_peaks`` (sample indices into ``signal_``). Values that cannot be
        measured (too short, flat, fewer than 2 beats) are NaN.
    """
    x = _check_signal(signal_, fs)
    result: dict[str, Any] = {key: math.nan for key in RESULT_KEYS}
    result["n_beats"] = 0
    result["r_peaks"] = np.zeros(0, dtype=np.int64)
    nonzero = np.flatnonzero(np.any(x != 0, axis=1))
    if nonzero.size == 0:
        return result
    start, stop = int(nonzero[0]), int(nonzero[-1]) + 1
    if stop - start < MIN_SECONDS * fs:
        return result
    if lead_indices is None:
        lead_indices = INDEPENDENT_LEADS_12 if x.shape[1] == 12 else tuple(range(x.shape[1]))
    leads = x[start:stop, list(lead_indices)]
    filtered = _bandpass(leads, fs, BAND_HZ)
    peaks = detect_qrs(_spatial_velocity(_bandpass(leads, fs, DETECT_BAND_HZ), fs), fs)
    result["n_beats"] = int(peaks.size)
    result["r_peaks"] = peaks + start
    if peaks.size >= 2:
        rr = np.diff(peaks) / fs
        result["rr_cv"] = float(rr.std() / rr.mean())
        if rr.size >= 2:
            result["rr_irregularity"] = float(np.median(np.abs(np.diff(rr))) / np.median(rr))
        result["hr_bpm"] = 60.0 / float(_normal_intervals(rr, result["rr_irregularity"]).mean())
    result.update(_delineate(filtered, peaks, fs))
    if af_rule(result):
        result["pr_ms"] = math.nan  # no P waves in atrial fibrillation
    return result


def _normal_intervals(rr: np.ndarray, irregularity: float) -> np.ndarray:
    """The RR intervals that do not touch a premature beat (RR < 80 % of the median) and the pause
    after it, as a clinical rate measurement does; all of them in an irregularly irregular rhythm."""
    if not irregularity <= AF_IRREGULARITY_MIN:
        return rr
    premature = rr < PREMATURE_FRACTION * np.median(rr)
    touching = premature | np.concatenate([[False], premature[:-1]])
    return rr[~touching] if (~touching).any() else rr


def af_rule(measured: dict[str, Any]) -> bool:
    """AF by measurement: irregularly irregular RR and no repeating P wave (ESC 2020 wording).

    ``rr_irregularity > 0.08`` (median successive RR change above 8 %, which sinus arrhythmia and
    1-2 ectopic beats rarely reach) and ``p_consistency < 0.6`` (NaN: no P found).
    """
    irregular = measured["rr_irregularity"] > AF_IRREGULARITY_MIN
    return bool(irregular and not measured["p_consistency"] >= AF_P_CONSISTENCY_MAX)


def detect_qrs(velocity: np.ndarray, fs: float) -> np.ndarray:
    """QRS positions (sample indices) from a spatial-velocity trace, via ``find_peaks``.

    Candidates are the peaks of the trace's 60 ms moving average at least 200 ms apart. A candidate
    is a QRS when it rises above the median (the floor) by 40 % of the height of the tall candidates
    (90th percentile), unless it comes < 360 ms after a QRS at under half that QRS's height (a T
    wave, as in Pan-Tompkins). In a gap longer than 1.5 median RR (a pause, or a missed broad
    ectopic beat), the tallest candidate above 15 % is taken as well.
    """
    width = max(1, round(ENVELOPE_S * fs))
    envelope = ndimage.uniform_filter1d(velocity, width, mode="nearest")
    candidates, _ = signal.find_peaks(envelope, distance=max(1, round(MIN_RR_S * fs)))
    if candidates.size == 0:
        return np.zeros(0, dtype=np.int64)
    floor = float(np.median(envelope))
    tall = float(np.percentile(envelope[candidates], 90))
    if tall <= floor:
        return np.zeros(0, dtype=np.int64)
    peaks: list[int] = []
    for c in candidates[envelope[candidates] > floor + PEAK_LEVEL * (tall - floor)]:
        if peaks and c - peaks[-1] < T_WAVE_WINDOW_S * fs and envelope[c] < 0.5 * envelope[peaks[-1]]:
            continue
        peaks.append(int(c))
    if len(peaks) >= 3:
        median_rr = float(np.median(np.diff(peaks)))
        margin = round(MIN_RR_S * fs)
        extra = []
        for left, right in itertools.pairwise(peaks):
            if right - left > SEARCHBACK_GAP * median_rr:
                inside = candidates[(candidates > left + margin) & (candidates < right - margin)]
                inside = inside[envelope[inside] > floor + SEARCHBACK_LEVEL * (tall - floor)]
                if inside.size:
                    extra.append(int(inside[np.argmax(envelope[inside])]))
        peaks = sorted(peaks + extra)
    return np.asarray(peaks, dtype=np.int64)


def _check_signal(signal_: np.ndarray, fs: float) -> np.ndarray:
    x = np.asarray(signal_, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"signal must be 2-D (n_samples, n_leads), got shape {x.shape}")
    if x.shape[0] <= x.shape[1]:
        raise ValueError(
            f"signal must be (n_samples, n_leads) with more samples than leads, got shape {x.shape}"
            " (pass the transpose of a channels-first array)"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("signal contains NaN or infinite values")
    if not fs > 0:
        raise ValueError(f"fs must be positive, got {fs}")
    return x


@functools.lru_cache(maxsize=32)
def _butter(low: float, high: float, fs: float) -> np.ndarray:
    return signal.butter(2, [low, min(high, 0.45 * fs)], btype="bandpass", fs=fs, output="sos")


def _bandpass(x: np.ndarray, fs: float, band: tuple[float, float]) -> np.ndarray:
    return signal.sosfiltfilt(_butter(band[0], band[1], float(fs)), x, axis=0)


def _spatial_velocity(x: np.ndarray, fs: float) -> np.ndarray:
    velocity = np.sqrt(np.sum(np.diff(x, axis=0) ** 2, axis=1)) * fs
    return np.concatenate([velocity[:1], velocity])


def _beat_windows(x: np.ndarray, centres: np.ndarray, before: int, after: int) -> np.ndarray:
    offsets = np.arange(-before, after)
    return x[centres[:, None] + offsets[None, :]]  # (beats, window, leads)


def _median_beat(
    x: np.ndarray, peaks: np.ndarray, fs: float
) -> tuple[np.ndarray, np.ndarray, int, np.ndarray]:
    """Median beat (window, leads), the beats it came from, the R index in the window, their R samples."""
    before, after = round(BEAT_WINDOW_S[0] * fs), round(BEAT_WINDOW_S[1] * fs)
    max_lag = round(ALIGN_MAX_LAG_S * fs)
    inside = peaks[(peaks - before - max_lag >= 0) & (peaks + after + max_lag <= len(x))]
    if inside.size == 0:
        return np.zeros((0, 0)), np.zeros((0, 0, 0)), before, inside
    beats = _beat_windows(x, inside, before, after)
    template = np.median(beats, axis=0)
    # Re-align every beat on the template's QRS (+-100 ms) by cross-correlation.
    half = round(0.1 * fs)
    qrs = template[before - half : before + half]
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.stack(
        [np.einsum("bwl,wl->b", _beat_windows(x, inside + lag, half, half), qrs) for lag in lags], axis=1
    )
    aligned = inside + lags[np.argmax(scores, axis=1)]
    beats = _beat_windows(x, aligned, before, after)
    return np.median(beats, axis=0), beats, before, aligned


def _regions(mask: np.ndarray, bridge: int) -> list[tuple[int, int]]:
    """(start, stop) runs of True after filling False gaps shorter than ``bridge`` samples."""
    if bridge > 0 and mask.any():
        mask = ndimage.binary_closing(mask, structure=np.ones(bridge + 1, dtype=bool)) | mask
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _delineate(x: np.ndarray, peaks: np.ndarray, fs: float) -> dict[str, float]:
    out = {"pr_ms": math.nan, "qrs_ms": math.nan, "p_consistency": math.nan}
    template, beats, r_index, positions = _median_beat(x, peaks, fs)
    if template.size == 0:
        return out
    velocity = _spatial_velocity(template, fs)
    velocity = ndimage.uniform_filter1d(velocity, 3, mode="nearest")
    floor = float(np.percentile(velocity, 10))
    search = slice(r_index - round(0.06 * fs), r_index + round(0.06 * fs))
    qrs_peak = search.start + int(np.argmax(velocity[search]))
    level = floor + QRS_LEVEL * (velocity[qrs_peak] - floor)
    qrs_on = qrs_off = None
    for lo, hi in _regions(velocity > level, round(QRS_BRIDGE_S * fs)):
        if lo <= qrs_peak < hi:
            qrs_on, qrs_off = lo, hi
    if qrs_on is None:
        return out
    out["qrs_ms"] = 1000.0 * (qrs_off - qrs_on) / fs

    # The P search starts after the previous beat's QRS (at fast rates it is inside 420 ms).
    previous_qrs_end = qrs_off - round(float(np.median(np.diff(peaks)))) + round(0.02 * fs)
    p_lo = max(0, qrs_on - round(P_WINDOW_S[0] * fs), previous_qrs_end)
    p_hi = qrs_on - round(P_WINDOW_S[1] * fs)
    if p_hi - p_lo < round(P_MIN_WINDOW_S * fs):
        out["p_consistency"] = 0.0  # no room for a P wave between the QRS complexes
        return out
    pre = slice(p_lo, p_hi)
    out["p_consistency"] = _tq_consistency(beats, positions, peaks, qrs_on, qrs_off, fs)
    # PR needs a wave that repeats before the QRS; at fast rates it may sit on the previous T,
    # so the whole window (not only the T-free part) is judged here.
    if not _consistency(beats[:, pre]) >= P_PRESENT_MIN:
        return out
    window = velocity[pre]
    p_level = floor + P_LEVEL * (float(window.max()) - floor)
    lobes = [
        (lo, hi) for lo, hi in _regions(window > p_level, round(P_BRIDGE_S * fs))
        if hi - lo >= P_MIN_WIDTH_S * fs
    ]
    if lobes:
        out["pr_ms"] = 1000.0 * (qrs_on - (p_lo + _p_onset(window, *lobes[-1], fs))) / fs
    return out


def _tq_consistency(
    beats: np.ndarray, positions: np.ndarray, peaks: np.ndarray, qrs_on: int, qrs_off: int, fs: float
) -> float:
    """:func:`_consistency` of the TQ segments: after the previous beat's T wave, before the QRS.

    The previous T is assumed to end a Fridericia QT (QTc 450 ms, long-normal, times RR^(1/3),
    plus the QRS width beyond 100 ms) after the previous QRS onset, so that a T wave (which
    follows the QRS and so repeats even in AF) is not taken for a repeating P wave. The segment
    length is the one that at least half of the beats (and at least 3) offer.
    """
    index = np.searchsorted(peaks, positions - round(MIN_RR_S * fs / 2)) - 1
    has_previous = index >= 0
    if has_previous.sum() < 3:
        return math.nan
    rr = (positions - peaks[np.maximum(index, 0)])[has_previous].astype(float)
    qt = (QT_FRIDERICIA_S * np.cbrt(rr / fs) + max(0.0, (qrs_off - qrs_on) / fs - 0.10)) * fs
    stop = qrs_on - round(P_WINDOW_S[1] * fs)
    room = np.minimum(stop - (qrs_on - rr + qt + P_WINDOW_S[1] * fs), stop)
    k = max(3, math.ceil(len(room) / 2))
    length = int(min(P_WINDOW_S[0] * fs, np.sort(room)[::-1][k - 1]))
    if length < P_MIN_WINDOW_S * fs:
        return 0.0  # no T-free room for a P wave: it would be on the T wave, or it is absent
    chosen = beats[has_previous][room >= length]
    return _consistency(chosen[:, stop - length : stop])


def _consistency(segments: np.ndarray) -> float:
    """Median correlation of each beat's segment with the mean of the other beats (NaN if < 3).

    A wave that repeats in every beat (a P wave) correlates (about 0.6-1 depending on noise);
    fibrillatory waves and noise do not (about 0), whatever the number of beats.
    """
    n = len(segments)
    if n < 3:
        return math.nan
    flat = (segments - segments.mean(axis=1, keepdims=True)).reshape(n, -1)
    others = (flat.sum(axis=0, keepdims=True) - flat) / (n - 1)  # mean of the other beats
    denom = np.linalg.norm(flat, axis=1) * np.linalg.norm(others, axis=1)
    scores = np.divide(np.sum(flat * others, axis=1), denom, out=np.zeros(n), where=denom > 0)
    return max(0.0, float(np.median(scores)))


def _p_onset(velocity: np.ndarray, lo: int, hi: int, fs: float) -> int:
    """Start of the P lobe [lo, hi); a lobe too long for a P wave still holds the preceding T's end.

    A P wave lasts < 120 ms, so a longer lobe is cut at its deepest valley 60-140 ms before the
    lobe's end (the P wave's own mid-wave dip lies about 50 ms before its end).
    """
    if hi - lo <= P_MAX_LOBE_S * fs:
        return lo
    first = max(lo, hi - round(P_MAX_LOBE_S * fs))
    head = velocity[first : hi - round(0.06 * fs)]
    valleys, _ = signal.find_peaks(-head)
    return lo if valleys.size == 0 else first + int(valleys[np.argmin(head[valleys])])

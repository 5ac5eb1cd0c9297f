"""Heart rate, PR and QRS measured from a 12-lead ECG, independently of how the ECG was made.

The method follows the AHA advice to prefer *global* intervals (Kligfield et al. 2007):

1. Zero padding at both ends is cut off, and the independent leads (I, II, V1-V6 of a 12-lead
   record in ecglit's lead order; all leads otherwise) are band-passed 0.5-40 Hz.
2. R peaks: ``scipy.signal.find_peaks`` on the 60 ms moving average of the spatial velocity (the
   root-sum-square derivative over the leads), at least 200 ms apart and above 30 % of the
   envelope's 99.5th percentile, with a search-back at a lower level inside long gaps.
3. A median beat is built from the beats aligned on their QRS (one cross-correlation refinement).
   Ectopic beats and noise average out of it.
4. On the median beat's spatial velocity: QRS onset/offset are where it crosses 8 % of the QRS peak
   above the isoelectric floor (gaps shorter than 20 ms bridged); P onset is the start of the last
   lobe above 25 % of the largest activity found 20-420 ms before QRS onset.
5. Whether a repeating P wave exists is measured as ``p_consistency``: the energy of the median
   beat before the QRS divided by the median energy of the single beats there. A repeating P wave
   survives the median (about 1); fibrillatory waves and noise do not (about 0.1-0.3).

Units do not matter (every threshold is relative), so millivolts, microvolts or ecglit's 1e-4 V
work alike. Known limits: at high rates the P wave merges with the preceding T wave and the PR found
is then too long; a QRS followed at once by a steep ST-T (discordant LBBB) is measured long.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import ndimage, signal

# I, II, V1..V6 of ecglit's lead order: the 8 leads the other 4 are computed from.
INDEPENDENT_LEADS_12: tuple[int, ...] = (0, 1, 6, 7, 8, 9, 10, 11)
BAND_HZ: tuple[float, float] = (0.5, 40.0)
ENVELOPE_S = 0.060
MIN_RR_S = 0.200  # 300 bpm: no human rhythm is faster
PEAK_LEVEL = 0.30  # fraction of the envelope's 99.5th percentile
SEARCHBACK_LEVEL = 0.15
BEAT_WINDOW_S: tuple[float, float] = (0.50, 0.45)  # before / after the R peak
ALIGN_MAX_LAG_S = 0.030
QRS_LEVEL = 0.08
QRS_BRIDGE_S = 0.020
P_WINDOW_S: tuple[float, float] = (0.420, 0.020)  # searched before QRS onset
P_LEVEL = 0.25
P_BRIDGE_S = 0.040
P_MIN_WIDTH_S = 0.020
P_MAX_LOBE_S = 0.140
P_PRESENT_MIN = 0.5  # p_consistency below this: no repeating P wave
# AF rule of measure-based labelling: irregularly irregular RR and no repeating P wave.
AF_IRREGULARITY_MIN = 0.08
AF_P_CONSISTENCY_MAX = 0.5
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
        dict with ``hr_bpm`` (60 / mean RR), ``rr_cv`` (std/mean of RR), ``rr_irregularity``
        (median |successive RR difference| / median RR; ectopic beats barely move it),
        ``pr_ms`` (NaN when no repeating P wave), ``qrs_ms``, ``p_consistency`` (0-1, see module
        doc), ``n_beats`` and ``r_peaks`` (sample indices into ``signal_``). Values that cannot be
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
    filtered = _bandpass(x[start:stop, list(lead_indices)], fs)
    velocity = _spatial_velocity(filtered, fs)
    peaks = detect_qrs(velocity, fs)
    result["n_beats"] = int(peaks.size)
    result["r_peaks"] = peaks + start
    if peaks.size >= 2:
        rr = np.diff(peaks) / fs
        result["hr_bpm"] = 60.0 / float(rr.mean())
        result["rr_cv"] = float(rr.std() / rr.mean())
        if rr.size >= 2:
            result["rr_irregularity"] = float(np.median(np.abs(np.diff(rr))) / np.median(rr))
    result.update(_delineate(filtered, peaks, fs))
    return result


def measure_batch(
    signals: np.ndarray, fs: float = 400.0, lead_indices: tuple[int, ...] | None = None
) -> pd.DataFrame:
    """:func:`measure_intervals` for a (batch, n_samples, n_leads) array; one row per record."""
    if np.ndim(signals) != 3:
        raise ValueError(f"signals must be (batch, n_samples, n_leads), got shape {np.shape(signals)}")
    rows = [measure_intervals(s, fs, lead_indices) for s in signals]
    return pd.DataFrame(rows, columns=list(RESULT_KEYS))


def af_rule(measured: dict[str, Any] | pd.DataFrame) -> Any:
    """AF by measurement: irregularly irregular RR and no repeating P wave (ESC 2020 wording).

    ``rr_irregularity > 0.08`` (median successive RR change above 8 %, which sinus arrhythmia and
    1-2 ectopic beats do not reach) and ``p_consistency < 0.5``. Works on one result dict (bool) or
    a :func:`measure_batch` frame (boolean Series).
    """
    irregular = measured["rr_irregularity"] > AF_IRREGULARITY_MIN
    no_p = measured["p_consistency"] < AF_P_CONSISTENCY_MAX
    return irregular & no_p if isinstance(measured, pd.DataFrame) else bool(irregular and no_p)


def detect_qrs(velocity: np.ndarray, fs: float) -> np.ndarray:
    """QRS positions (sample indices) from a spatial-velocity trace, via ``find_peaks``."""
    width = max(1, round(ENVELOPE_S * fs))
    envelope = ndimage.uniform_filter1d(velocity, width, mode="nearest")
    reference = float(np.percentile(envelope, 99.5))
    if reference <= 0:
        return np.zeros(0, dtype=np.int64)
    distance = max(1, round(MIN_RR_S * fs))
    peaks, _ = signal.find_peaks(envelope, height=PEAK_LEVEL * reference, distance=distance)
    if peaks.size >= 2:
        # Search-back (as in Pan-Tompkins): a gap much longer than the usual RR hides a small beat.
        median_rr = np.median(np.diff(peaks))
        extra: list[int] = []
        for left, right in zip(peaks[:-1], peaks[1:]):
            if right - left > 1.6 * median_rr:
                lo, hi = left + distance, right - distance
                if hi > lo:
                    found, _ = signal.find_peaks(
                        envelope[lo:hi], height=SEARCHBACK_LEVEL * reference, distance=distance
                    )
                    if found.size:
                        extra.append(lo + int(found[np.argmax(envelope[lo + found])]))
        peaks = np.sort(np.concatenate([peaks, np.asarray(extra, dtype=peaks.dtype)]))
    return peaks.astype(np.int64)


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


def _bandpass(x: np.ndarray, fs: float) -> np.ndarray:
    high = min(BAND_HZ[1], 0.45 * fs)
    sos = signal.butter(2, [BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def _spatial_velocity(x: np.ndarray, fs: float) -> np.ndarray:
    velocity = np.sqrt(np.sum(np.diff(x, axis=0) ** 2, axis=1)) * fs
    return np.concatenate([velocity[:1], velocity])


def _beat_windows(x: np.ndarray, centres: np.ndarray, before: int, after: int) -> np.ndarray:
    offsets = np.arange(-before, after)
    return x[centres[:, None] + offsets[None, :]]  # (beats, window, leads)


def _median_beat(x: np.ndarray, peaks: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Median beat (window, leads), the beats it came from and the R position inside the window."""
    before, after = round(BEAT_WINDOW_S[0] * fs), round(BEAT_WINDOW_S[1] * fs)
    max_lag = round(ALIGN_MAX_LAG_S * fs)
    inside = peaks[(peaks - before - max_lag >= 0) & (peaks + after + max_lag <= len(x))]
    if inside.size == 0:
        return np.zeros((0, 0)), np.zeros((0, 0, 0)), before
    beats = _beat_windows(x, inside, before, after)
    template = np.median(beats, axis=0)
    # Re-align every beat on the template's QRS (+-100 ms) by cross-correlation.
    qrs = slice(before - round(0.1 * fs), before + round(0.1 * fs))
    lags = np.arange(-max_lag, max_lag + 1)
    scores = np.stack(
        [np.einsum("bwl,wl->b", _beat_windows(x, inside + lag, before, after)[:, qrs], template[qrs])
         for lag in lags],
        axis=1,
    )
    aligned = inside + lags[np.argmax(scores, axis=1)]
    beats = _beat_windows(x, aligned, before, after)
    return np.median(beats, axis=0), beats, before


def _regions(mask: np.ndarray, bridge: int) -> list[tuple[int, int]]:
    """(start, stop) runs of True after filling False gaps shorter than ``bridge`` samples."""
    if bridge > 0 and mask.any():
        mask = ndimage.binary_closing(mask, structure=np.ones(bridge + 1, dtype=bool)) | mask
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def _delineate(x: np.ndarray, peaks: np.ndarray, fs: float) -> dict[str, float]:
    out = {"pr_ms": math.nan, "qrs_ms": math.nan, "p_consistency": math.nan}
    template, beats, r_index = _median_beat(x, peaks, fs)
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

    p_lo = max(0, qrs_on - round(P_WINDOW_S[0] * fs))
    p_hi = qrs_on - round(P_WINDOW_S[1] * fs)
    if p_hi - p_lo < round(0.1 * fs):
        return out
    pre = slice(p_lo, p_hi)
    centred = beats[:, pre] - beats[:, pre].mean(axis=1, keepdims=True)
    template_pre = template[pre] - template[pre].mean(axis=0, keepdims=True)
    beat_energy = float(np.median(np.sum(centred**2, axis=(1, 2))))
    if beat_energy <= 0:
        return out
    out["p_consistency"] = min(1.0, float(np.sum(template_pre**2)) / beat_energy)
    if out["p_consistency"] < P_PRESENT_MIN:
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

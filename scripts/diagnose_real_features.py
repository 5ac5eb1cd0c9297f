"""Features of one 12-lead exam, measured with established tools, for scripts/diagnose_real.py.

R peaks come from three published detectors on lead II (wfdb.processing XQRS and GQRS, neurokit2's
``ecg_peaks``) on the lead whose QRS stands out most; the beats and rate are those of the detector with
the median of the three rates (one detector counting tall T waves or a notched QRS twice is outvoted).
neurokit2's ``ecg_delineate(method="peak")`` gives P/Q/S peaks on lead II. Everything else is simple
numpy/scipy statistics around those R peaks: a median beat per lead (QRS amplitudes and polarity,
terminal forces in V1/I/V6, T polarity, frontal axis), the beat-to-beat consistency of the P-wave
window, and the residual after average-beat subtraction (f-wave band power in V1, noise). Nothing here
reads ecglit's generator; ``median_beat_intervals`` (scripts/median_beat_intervals.py, the project's own
median-beat delineator, independent of the generator) is added as a cross-check with an ``ecglit_`` prefix.

Input: (n, 12) in 1e-4 V at 400 Hz in ecglit's lead order, zero padding already removed.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import signal

from ecglit.constants import LEADS, UNITS_PER_MV

FS = 400.0
BEAT_WINDOW_S = (0.35, 0.50)  # median beat: before / after the R peak
QRS_WINDOW_S = (0.10, 0.12)  # around the R peak: wide enough for a bundle-branch block
LATE_QRS_S = (0.02, 0.12)  # after the R peak: R' in V1, terminal S in I/V6
F_BAND_HZ = (4.0, 9.0)  # atrial fibrillatory waves (350-540/min)
F_SEARCH_HZ = (3.0, 12.0)
POWERLINE_HZ = (50.0, 60.0)
ABS_TAPER = 0.2  # Tukey taper of the subtracted average beat, so its edges leave no steps
DETECTOR_PREFERENCE = ("xqrs", "nk", "gqrs")  # most accurate first (checked on synthetic exams)


def _bandpass(x: np.ndarray, low: float | None, high: float | None, fs: float = FS) -> np.ndarray:
    if low and high:
        sos = signal.butter(2, (low, high), "bandpass", fs=fs, output="sos")
    elif low:
        sos = signal.butter(2, low, "highpass", fs=fs, output="sos")
    else:
        sos = signal.butter(2, high, "lowpass", fs=fs, output="sos")
    return signal.sosfiltfilt(sos, x, axis=0)


def detection_lead(mv: np.ndarray, fs: float = FS) -> int:
    """The independent lead (I, II, V1-V6) whose QRS stands out most: 99th percentile of the 8-30 Hz
    band over its median (a small QRS beside tall T waves or noise is where detectors fail)."""
    candidates = [LEADS.index(name) for name in ("DI", "DII", "V1", "V2", "V3", "V4", "V5", "V6")]
    band = np.abs(_bandpass(mv[:, candidates], 8.0, 30.0, fs))
    score = np.percentile(band, 99, axis=0) / (np.median(band, axis=0) + 1e-9)
    return candidates[int(np.argmax(score))]


def detect_r_peaks(lead_mv: np.ndarray, fs: float = FS) -> dict[str, Any]:
    """R peaks of one lead (mV) by XQRS, GQRS and neurokit2; the consensus rate and chosen peaks."""
    import neurokit2 as nk
    import wfdb.processing as wp

    found: dict[str, np.ndarray] = {}
    cleaned = nk.ecg_clean(lead_mv, sampling_rate=int(fs))
    try:
        found["nk"] = np.asarray(nk.ecg_peaks(cleaned, sampling_rate=int(fs))[1]["ECG_R_Peaks"], int)
    except Exception:  # neurokit raises on flat or too short signals
        found["nk"] = np.zeros(0, int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found["xqrs"] = np.asarray(wp.xqrs_detect(lead_mv, fs, verbose=False), int)
        found["gqrs"] = np.asarray(wp.gqrs_detect(lead_mv, fs), int)
    # mean RR (beats per time), as a rate over the record is defined; the median would misstate AF
    rates = {k: (60.0 * fs / float(np.diff(v).mean()) if len(v) >= 3 else math.nan) for k, v in found.items()}
    finite = [k for k in DETECTOR_PREFERENCE if np.isfinite(rates[k])]
    if len(finite) == 3:  # the detector with the median rate: one outlier (T waves, notches) is outvoted
        best = sorted(finite, key=lambda k: rates[k])[1]
    else:
        best = finite[0] if finite else "nk"
    hr = rates[best]
    peaks = found[best]
    if best != "nk" and len(peaks):  # XQRS/GQRS mark the QRS, not its maximum: move onto the local peak
        peaks = np.asarray(wp.correct_peaks(cleaned, peaks, int(0.05 * fs), int(0.02 * fs), "compare"), int)
        peaks = np.unique(peaks[(peaks >= 0) & (peaks < len(lead_mv))])
    values = [rates[k] for k in finite]
    spread = (max(values) - min(values)) / hr if len(values) >= 2 else math.nan
    return {"peaks": peaks, "cleaned": cleaned, "hr_bpm": hr, "hr_nk": rates["nk"], "hr_xqrs": rates["xqrs"],
            "hr_gqrs": rates["gqrs"], "hr_detector_spread": spread, "peak_detector": best}


def _on_lead(lead_mv: np.ndarray, peaks: np.ndarray, fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    """neurokit2-cleaned lead and the peaks moved onto its own QRS extremum (within 50 ms)."""
    import neurokit2 as nk
    import wfdb.processing as wp

    cleaned = nk.ecg_clean(lead_mv, sampling_rate=int(fs))
    if len(peaks) == 0:
        return cleaned, peaks
    moved = np.asarray(wp.correct_peaks(cleaned, peaks, int(0.05 * fs), int(0.02 * fs), "compare"), int)
    return cleaned, np.unique(moved[(moved >= 0) & (moved < len(cleaned))])


def rr_features(peaks: np.ndarray, fs: float = FS) -> dict[str, float]:
    """RR variability: coefficient of variation and median |successive difference| / median RR."""
    rr = np.diff(peaks) / fs
    if len(rr) < 3:
        return {"rr_cv": math.nan, "rr_irregularity": math.nan}
    return {"rr_cv": float(rr.std() / rr.mean()),
            "rr_irregularity": float(np.median(np.abs(np.diff(rr))) / np.median(rr))}


def delineate_peaks(cleaned: np.ndarray, peaks: np.ndarray, fs: float = FS) -> dict[str, float]:
    """neurokit2 peak delineation: P-peak->R-peak (a PR proxy), Q-peak->S-peak, share of beats with a P."""
    import neurokit2 as nk

    out = {"nk_p_to_r_ms": math.nan, "nk_q_to_s_ms": math.nan, "nk_p_found": math.nan}
    if len(peaks) < 3:
        return out
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _, d = nk.ecg_delineate(cleaned, peaks, sampling_rate=int(fs), method="peak")
    except Exception:
        return out
    p = np.asarray(d["ECG_P_Peaks"], float)
    q = np.asarray(d["ECG_Q_Peaks"], float)
    s = np.asarray(d["ECG_S_Peaks"], float)
    n = min(len(p), len(peaks))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["nk_p_to_r_ms"] = float(np.nanmedian(peaks[:n] - p[:n]) / fs * 1000)
        out["nk_q_to_s_ms"] = float(np.nanmedian(s - q) / fs * 1000)
    out["nk_p_found"] = float(np.isfinite(p).mean())
    return out


def beat_windows(x: np.ndarray, peaks: np.ndarray, fs: float = FS) -> tuple[np.ndarray, np.ndarray]:
    """Stacked windows (beats, W, leads) around the peaks that fit, and those peaks."""
    before, after = round(BEAT_WINDOW_S[0] * fs), round(BEAT_WINDOW_S[1] * fs)
    keep = peaks[(peaks >= before) & (peaks + after <= len(x))]
    if len(keep) == 0:
        return np.zeros((0, before + after, x.shape[1])), keep
    idx = keep[:, None] + np.arange(-before, after)[None, :]
    return x[idx], keep


def align_peaks(x: np.ndarray, peaks: np.ndarray, fs: float = FS) -> np.ndarray:
    """Peaks moved (by up to 40 ms) to best match the median 12-lead QRS: one fiducial point per beat,
    even when lead II's maximum jumps between the two halves of a notched QRS."""
    beats, kept = beat_windows(x, peaks, fs)
    if len(kept) < 3:
        return kept
    r, lag = round(BEAT_WINDOW_S[0] * fs), round(0.04 * fs)
    half = round(0.08 * fs)
    template = np.median(beats, axis=0)[r - half : r + half]
    shifted = []
    for p in kept:
        scores = [float((x[p + d - half : p + d + half] * template).sum())
                  if half <= p + d - half and p + d + half <= len(x) else -np.inf
                  for d in range(-lag, lag + 1)]
        shifted.append(p + int(np.argmax(scores)) - lag)
    return np.unique(np.asarray(shifted, int))


def isoelectric_level(beat: np.ndarray, fs: float = FS) -> np.ndarray:
    """Per-lead level of the flattest 20 ms (summed over leads) between 300 and 40 ms before the R peak."""
    r = round(BEAT_WINDOW_S[0] * fs)
    lo, hi, w = r - round(0.30 * fs), r - round(0.04 * fs), round(0.02 * fs)
    activity = np.abs(np.diff(beat[lo:hi], axis=0)).sum(axis=1)
    start = lo + int(np.argmin(np.convolve(activity, np.ones(w), "valid")))
    return beat[start : start + w].mean(axis=0)


def morphology(beat: np.ndarray, rr_s: float, fs: float = FS) -> dict[str, float]:
    """Median-beat amplitudes (mV): per lead R, S, peak-to-peak and T; V1 R'/I and V6 terminal S; axis."""
    r = round(BEAT_WINDOW_S[0] * fs)
    b = beat - isoelectric_level(beat, fs)
    qrs = b[r - round(QRS_WINDOW_S[0] * fs) : r + round(QRS_WINDOW_S[1] * fs)]
    late = b[r + round(LATE_QRS_S[0] * fs) : r + round(LATE_QRS_S[1] * fs)]
    t_end = r + round(min(0.45, 0.7 * rr_s) * fs) if np.isfinite(rr_s) else r + round(0.40 * fs)
    t_seg = b[r + round(0.16 * fs) : max(t_end, r + round(0.2 * fs))]
    out: dict[str, float] = {}
    for j, lead in enumerate(LEADS):
        out[f"r_{lead}"] = float(qrs[:, j].max())
        out[f"s_{lead}"] = float(qrs[:, j].min())
        out[f"ptp_{lead}"] = out[f"r_{lead}"] - out[f"s_{lead}"]
        out[f"t_{lead}"] = float(t_seg[np.argmax(np.abs(t_seg[:, j])), j]) if len(t_seg) else math.nan
    v1, lead_i, v6 = LEADS.index("V1"), LEADS.index("DI"), LEADS.index("V6")
    out["v1_late_max"] = float(late[:, v1].max())  # R' of RBBB (normal: S/ST, <= 0)
    out["i_late_min"] = float(late[:, lead_i].min())  # broad terminal S in I (RBBB)
    out["v6_late_min"] = float(late[:, v6].min())
    net_i = out["r_DI"] + out["s_DI"]
    net_avf = out["r_aVF"] + out["s_aVF"]
    out["frontal_axis_deg"] = float(np.degrees(np.arctan2(net_avf, net_i)))
    return out


def p_wave(bandpassed_ii: np.ndarray, beat_ii: np.ndarray, peaks: np.ndarray, rr_s: float,
           fs: float = FS) -> dict[str, float]:
    """P window (from 300 ms, or 45 % of RR, to 80 ms before R) in lead II: median-beat amplitude and
    the median correlation of each beat's window with the mean of the others (repeating P: high)."""
    reach = min(0.30, 0.45 * rr_s) if np.isfinite(rr_s) else 0.30
    lo, hi = round(reach * fs), round(0.08 * fs)
    r = round(BEAT_WINDOW_S[0] * fs)
    seg = beat_ii[r - lo : r - hi]
    seg = seg - np.linspace(seg[0], seg[-1], len(seg))  # the window's own tilt is not a P wave
    out = {"p_amp_II": float(seg[np.argmax(np.abs(seg))]) if len(seg) else math.nan, "p_corr_II": math.nan}
    keep = peaks[(peaks - lo >= 0) & (peaks - hi < len(bandpassed_ii))]
    if len(keep) >= 3 and lo > hi:
        w = bandpassed_ii[keep[:, None] + np.arange(-lo, -hi)[None, :]]
        w = w - w.mean(axis=1, keepdims=True)
        corr = []
        for k in range(len(w)):
            other = np.delete(w, k, axis=0).mean(axis=0)
            den = np.linalg.norm(w[k]) * np.linalg.norm(other)
            corr.append(float(w[k] @ other / den) if den > 0 else 0.0)
        out["p_corr_II"] = float(np.median(corr))
    return out


def average_beat_residual(x: np.ndarray, peaks: np.ndarray, template: np.ndarray,
                          fs: float = FS) -> np.ndarray:
    """x minus the (tapered) median beat at every R peak: what does not repeat (f-waves, noise)."""
    before = round(BEAT_WINDOW_S[0] * fs)
    tapered = template * signal.windows.tukey(len(template), ABS_TAPER)[:, None]
    out = x.copy()
    bounds = np.r_[0, ((peaks[:-1] + peaks[1:]) // 2 if len(peaks) > 1 else np.zeros(0, int)), len(x)]
    for k, p in enumerate(peaks):  # each beat owns the samples half way to its neighbours
        lo = max(int(bounds[k]), p - before)
        hi = min(int(bounds[k + 1]), p - before + len(template), len(x))
        if hi > lo:
            out[lo:hi] -= tapered[lo - (p - before) : hi - (p - before)]
    return out


def spectrum_features(residual_v1: np.ndarray, raw: np.ndarray, residual: np.ndarray,
                      fs: float = FS) -> dict[str, float]:
    """f-wave band (4-9 Hz) RMS of the residual (V1, II, I) and V1's spectral peak; noise, powerline and
    baseline wander levels."""
    out: dict[str, float] = {}
    nper = min(len(residual_v1), 1024)
    f, pxx = signal.welch(residual_v1, fs, nperseg=nper)
    df = f[1] - f[0]
    band = (f >= F_BAND_HZ[0]) & (f <= F_BAND_HZ[1])
    search = (f >= F_SEARCH_HZ[0]) & (f <= F_SEARCH_HZ[1])
    out["f_rms_uv_V1"] = float(np.sqrt(pxx[band].sum() * df) * 1000)
    for lead in ("DII", "DI"):  # where the atrial activity shows: right-sided (V1, II) or everywhere
        f_l, p_l = signal.welch(residual[:, LEADS.index(lead)], fs, nperseg=nper)
        in_band = (f_l >= F_BAND_HZ[0]) & (f_l <= F_BAND_HZ[1])
        out[f"f_rms_uv_{lead}"] = float(np.sqrt(p_l[in_band].sum() * df) * 1000)
    peak = int(np.argmax(np.where(search, pxx, -1)))
    out["f_peak_hz_V1"] = float(f[peak])
    near = search & (np.abs(f - f[peak]) <= 1.0)
    out["f_concentration_V1"] = float(pxx[near].sum() / max(pxx[search].sum(), 1e-30))
    out["f_ratio_V1"] = float(pxx[band].sum() / max(pxx[(f >= 12) & (f <= 30)].sum(), 1e-30))
    # noise: high band of what does not repeat, over all leads (median), in uV
    hf = _bandpass(residual, 40.0, min(150.0, 0.45 * fs), fs)
    out["hf_noise_uv"] = float(np.median(np.sqrt((hf**2).mean(axis=0))) * 1000)
    lowband = _bandpass(residual, 1.0, 40.0, fs)
    out["residual_rms_uv"] = float(np.median(np.sqrt((lowband**2).mean(axis=0))) * 1000)
    wander = _bandpass(raw - raw.mean(axis=0), None, 0.7, fs)
    out["baseline_wander_mv"] = float(np.median(np.sqrt((wander**2).mean(axis=0))))
    f2, p2 = signal.welch(raw[:, LEADS.index("DI")] - raw[:, LEADS.index("DI")].mean(), fs, nperseg=nper)
    ref = np.median(p2[(f2 >= 40) & (f2 <= 70)]) + 1e-30
    for hz in POWERLINE_HZ:
        out[f"powerline_{int(hz)}_db"] = float(10 * np.log10(p2[np.abs(f2 - hz) <= 1.0].max() / ref))
    total = p2[(f2 >= 0.5)].sum() + 1e-30
    out["power_above_40hz_frac"] = float(p2[f2 > 40].sum() / total)
    return out


def measure_exam(x: np.ndarray, fs: float = FS) -> dict[str, Any]:
    """All features of one exam ((n, 12) in 1e-4 V, padding removed); NaN where not measurable."""
    from median_beat_intervals import measure_intervals  # scripts/ is on sys.path, as for the others

    mv = np.asarray(x, np.float64) / UNITS_PER_MV
    ii = LEADS.index("DII")
    lead = detection_lead(mv, fs)
    det = detect_r_peaks(mv[:, lead], fs)
    peaks = det.pop("peaks")
    det.pop("cleaned")
    out: dict[str, Any] = {"n_beats": len(peaks), "detection_lead": LEADS[lead], **det,
                           **rr_features(peaks, fs)}
    out["max_abs_mv"] = float(np.abs(mv - np.median(mv, axis=0)).max())  # artefacts: lead-off, saturation
    out.update(delineate_peaks(*_on_lead(mv[:, ii], peaks, fs), fs))  # P waves are clearest in lead II
    rr_s = float(np.median(np.diff(peaks)) / fs) if len(peaks) >= 2 else math.nan
    filtered = _bandpass(mv, 0.5, 40.0, fs)
    beats, kept = beat_windows(filtered, align_peaks(filtered, peaks, fs), fs)
    if len(kept) >= 2:
        template = np.median(beats, axis=0)
        out.update(morphology(template, rr_s, fs))
        out.update(p_wave(filtered[:, ii], template[:, ii], kept, rr_s, fs))
        wide = _bandpass(mv, 0.5, min(150.0, 0.45 * fs), fs)
        wide_beats, _ = beat_windows(wide, kept, fs)
        residual = average_beat_residual(wide, kept, np.median(wide_beats, axis=0), fs)
        v1 = _bandpass(residual[:, LEADS.index("V1")], 1.0, 40.0, fs)
        out.update(spectrum_features(v1, mv, residual, fs))
    m = measure_intervals(x, fs)
    for key in ("hr_bpm", "qrs_ms", "pr_ms", "p_consistency", "rr_irregularity"):
        out[f"ecglit_{key}"] = float(m[key])
    return out

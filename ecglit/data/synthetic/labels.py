"""Labels from clinical rules applied to what an exam realised, and optional report-like label noise.

Rules (thresholds from SyntheticConfig): SB = sinus and HR < sb_max_bpm; ST = sinus and HR >
st_min_bpm; 1dAVb = sinus and PR > pr_max_ms; RBBB / LBBB = that bundle-branch morphology and QRS >=
qrs_min_ms (LBBB) / rbbb_qrs_min_ms (RBBB); AF = atrial fibrillation. HR is measured from the RR intervals inside the recorded window
(NN intervals: those touching a premature beat are left out).
SB, ST and 1dAVb need sinus rhythm, and one exam has one ventricular conduction pattern, so the
exclusions (SB/ST/1dAVb vs AF, SB vs ST, RBBB vs LBBB) hold by construction.
"""

from __future__ import annotations

import numpy as np

from ecglit.constants import CLASSES
from ecglit.data.synthetic.config import SyntheticConfig
from ecglit.data.synthetic.rhythm import normal_intervals
from ecglit.data.synthetic.sampling import AF, SINUS, VC_LBBB, VC_RBBB

LABEL_NOISE_STREAM = 1  # generator stream for label noise, separate so it never changes the signal


def heart_rate_bpm(r_peaks_s: np.ndarray, kinds: np.ndarray, record_s: float) -> float:
    """Heart rate from the RR intervals inside the window: 60 / mean NN interval (intervals touching a
    premature beat are left out, as in a clinical rate measurement); all intervals if none is left."""
    rr = normal_intervals(r_peaks_s, kinds, record_s)
    if len(rr) == 0:
        inside = r_peaks_s[(r_peaks_s >= 0.0) & (r_peaks_s < record_s)]
        rr = np.diff(inside)
    if len(rr) == 0:
        return float("nan")
    return float(60.0 / rr.mean())


def clinical_labels(rhythm: str, hr_bpm: float, pr_ms: float, qrs_ms: float, ventricular_conduction: str,
                    cfg: SyntheticConfig) -> np.ndarray:
    sinus = rhythm == SINUS
    values = {
        "1dAVb": sinus and pr_ms > cfg.pr_max_ms,
        "RBBB": ventricular_conduction == VC_RBBB and qrs_ms >= cfg.rbbb_qrs_min_ms,
        "LBBB": ventricular_conduction == VC_LBBB and qrs_ms >= cfg.qrs_min_ms,
        "SB": sinus and hr_bpm < cfg.sb_max_bpm,
        "AF": rhythm == AF,
        "ST": sinus and hr_bpm > cfg.st_min_bpm,
    }
    return np.array([values[c] for c in CLASSES], np.float32)


def noisy_labels(clean: np.ndarray, seed: int, index: int, cfg: SyntheticConfig) -> np.ndarray:
    """Flip positives with p_fn and negatives with p_fp, per class (mimics report-derived labels)."""
    if cfg.p_fn == 0 and cfg.p_fp == 0:
        return clean.copy()
    u = np.random.default_rng([seed, index, LABEL_NOISE_STREAM]).random(len(clean))
    flip = np.where(clean > 0.5, u < cfg.p_fn, u < cfg.p_fp)
    return np.where(flip, 1.0 - clean, clean).astype(np.float32)

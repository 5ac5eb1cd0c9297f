"""What the model's real-record scores depend on: every real exam changed the same way, then re-scored.

Each probe changes one property of all 269 records alike (nothing is fitted to a record): amplitude
scaled (all leads or V1-V6), the frontal QRS/P/T axis turned, high frequencies or baseline wander
filtered out, or atrial f-waves of ecglit's own model
(``ecglit.data.synthetic.afwaves``, projected as the generator projects them) added. A class whose AUROC,
recall or false positives move with a probe depends on that property. For scripts/diagnose_real.py.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy import signal

from ecglit.constants import CLASSES, SAMPLE_RATE, UNITS_PER_MV
from ecglit.plotting.ecg12 import record_window

F_WAVE_HZ = 6.0  # mid-range of the generator's 4.5-8.5 Hz


def _on_record(x: np.ndarray, change: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``change`` to each exam's recorded samples; the zero padding stays zero."""
    out = x.copy()
    for k in range(len(x)):
        start, stop = record_window(x[k])
        out[k, start:stop] = change(x[k, start:stop].astype(np.float64)).astype(np.float32)
    return out


def _filter(kind: str, hz: float) -> Callable[[np.ndarray], np.ndarray]:
    sos = signal.butter(4 if kind == "lowpass" else 2, hz, kind, fs=SAMPLE_RATE, output="sos")
    return lambda v: signal.sosfiltfilt(sos, v, axis=0)


def _with_f_waves(amp_mv: float, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    from ecglit.data.synthetic.afwaves import PRECORDIAL_F_GAIN, f_waves
    from ecglit.data.synthetic.render import DOWER, LEADS_FROM_INDEPENDENT

    rng = np.random.default_rng(seed)
    gains = np.concatenate([[1.0, 1.0], PRECORDIAL_F_GAIN]) * UNITS_PER_MV

    def add(v: np.ndarray) -> np.ndarray:
        vcg = f_waves(rng, F_WAVE_HZ, amp_mv, np.arange(len(v)) / SAMPLE_RATE)  # (3, n) mV
        leads8 = (DOWER * gains[:, None]) @ vcg  # I, II, V1..V6 in 1e-4 V
        return v + leads8.T @ LEADS_FROM_INDEPENDENT

    return add


def _rotate_frontal(degrees: float) -> Callable[[np.ndarray], np.ndarray]:
    """Turn the frontal-plane heart vector (read from I and II, Einthoven's triangle) by ``degrees``
    (positive towards aVF, clockwise on the hexaxial chart) and re-derive the six limb leads; V1-V6 stay."""
    a = np.radians(degrees)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    to_xy = np.array([[1.0, 0.0], [-1.0 / np.sqrt(3), 2.0 / np.sqrt(3)]])  # (I, II) -> (x, y)
    to_i_ii = np.linalg.inv(to_xy)

    def turn(v: np.ndarray) -> np.ndarray:
        out = v.copy()
        i_ii = v[:, :2] @ (to_i_ii @ rot @ to_xy).T
        lead_i, lead_ii = i_ii[:, 0], i_ii[:, 1]
        out[:, 0], out[:, 1], out[:, 2] = lead_i, lead_ii, lead_ii - lead_i
        out[:, 3], out[:, 4], out[:, 5] = -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2, lead_ii - lead_i / 2
        return out

    return turn


def _scale_leads(factor: float, first: int, stop: int) -> Callable[[np.ndarray], np.ndarray]:
    def scale(v: np.ndarray) -> np.ndarray:
        out = v.copy()
        out[:, first:stop] *= factor
        return out

    return scale


PROBES: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "as recorded": None,
    "amplitude x0.5": lambda v: v * 0.5,
    "amplitude x0.7": lambda v: v * 0.7,
    "amplitude x1.4": lambda v: v * 1.4,
    "low-pass 40 Hz": _filter("lowpass", 40.0),
    "low-pass 25 Hz": _filter("lowpass", 25.0),
    "high-pass 0.7 Hz": _filter("highpass", 0.7),
    "V1-V6 x0.5": _scale_leads(0.5, 6, 12),
    "V1-V6 x2": _scale_leads(2.0, 6, 12),
    "frontal axis -40 deg": _rotate_frontal(-40.0),
    "frontal axis +40 deg": _rotate_frontal(40.0),
    "f-waves 0.02 mV added": _with_f_waves(0.02),
    "f-waves 0.05 mV added": _with_f_waves(0.05),
    "f-waves 0.10 mV added": _with_f_waves(0.10),
}


def _auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def run_probes(predictor, x: np.ndarray, real: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(summary per probe and class, per-exam probabilities per probe) for the real exams ``x``."""
    thresholds = np.asarray(predictor.thresholds, np.float64).reshape(-1)
    summary, per_exam = [], []
    for name, change in PROBES.items():
        xp = x if change is None else _on_record(x, change)
        probs = np.concatenate([predictor.predict_batch(xp[i : i + 64]) for i in range(0, len(xp), 64)])
        frame = pd.DataFrame(probs, columns=[f"prob_{c}" for c in predictor.class_names])
        frame.insert(0, "probe", name)
        frame.insert(0, "id", real["id"].to_numpy())
        per_exam.append(frame)
        for j, c in enumerate(predictor.class_names):
            truth = real[f"true_{c}"].to_numpy()
            pos, neg = probs[truth == 1, j], probs[truth == 0, j]
            summary.append({"probe": name, "class": c, "auroc": _auroc(pos, neg),
                            "positives": len(pos), "found": int((pos >= thresholds[j]).sum()),
                            "negatives": len(neg), "false_pos": int((neg >= thresholds[j]).sum()),
                            "median_prob_positives": float(np.median(pos)) if len(pos) else np.nan,
                            "median_prob_negatives": float(np.median(neg)) if len(neg) else np.nan})
    return pd.DataFrame(summary), pd.concat(per_exam, ignore_index=True)


def probe_table(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per probe, per class 'AUROC / found of positives / false positives'."""
    rows = []
    for name, part in summary.groupby("probe", sort=False):
        row = {"probe": name}
        for _, r in part.iterrows():
            row[r["class"]] = f"{r['auroc']:.2f} / {r['found']}/{r['positives']} / {r['false_pos']}"
        rows.append(row)
    return pd.DataFrame(rows)[["probe", *[c for c in CLASSES if c in summary["class"].unique()]]]

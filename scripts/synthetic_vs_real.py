"""Compare ecglit's synthetic exams with real 12-lead records: heart rate, QRS, PR and amplitudes.

    .venv/bin/python scripts/synthetic_vs_real.py --real ../shared/realdata --out docs

Writes ``<out>/synthetic-vs-real.md`` and ``<out>/figures/synthetic_vs_real_*.png``. Both data sets
go through the same code: the record is cropped to its first 10 s at 400 Hz (zero padding removed),
``ecglit.evaluation.intervals`` measures HR/PR/QRS, and per-lead amplitude statistics are taken after
removing each lead's median. Real records whose header gain is known to be wrong are rescaled
(CinC-2020 PTB-XL copies: 200/mV -> 1000/mV) or, when the true scale is unknown (CinC-2020 Georgia
copies, 4880/mV), kept for HR/QRS but left out of the amplitude statistics.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecglit.constants import CLASSES, LEADS, SAMPLE_RATE, UNITS_PER_MV  # noqa: E402
from ecglit.data.importers import ImportOptions, load_record  # noqa: E402
from ecglit.data.importers.leads import to_code_leads  # noqa: E402
from ecglit.evaluation.intervals import measure_intervals  # noqa: E402

CROP_SECONDS = 10.0
STATS = ("std", "p995", "ptp")  # per-lead amplitude statistics, in 1e-4 V
INTERVALS = ("hr_bpm", "qrs_ms", "pr_ms", "rr_irregularity", "p_consistency")
# Per-lead std of CODE-15% (128 033 exams, 1e-4 V) quoted in ../shared/design/synthetic-ecg.md §1.1.
CODE15_STD = dict(zip(LEADS, (1.53, 2.66, 2.65, 1.72, 1.70, 2.54, 2.06, 2.12, 2.06, 1.97, 2.05, 2.32)))
PLAUSIBLE_LEAD_II_MV = (0.15, 6.0)  # p99.5 |lead II| outside this: the scale is wrong
GAIN_OVERRIDES = {"HR*": 1000.0}  # CinC-2020 PTB-XL copies: microvolts labelled 200/mV
UNKNOWN_SCALE_GAINS = (4880.0,)  # CinC-2020 Georgia copies: no known correct gain


# ---------------------------------------------------------------- real records
def read_real_record(root: Path, row: pd.Series) -> tuple[np.ndarray, float, str]:
    """One labels.csv row -> ((n, 12) mV in ecglit's lead order, fs, scale flag), via ecglit's importers.

    The flag is ``ok``, ``fixed-gain`` (the CinC-2020 PTB-XL copies' 200/mV replaced by 1000/mV) or
    ``scale-unknown`` (CinC-2020 Georgia copies' 4880/mV, or a lead II amplitude outside 0.15-6 mV).
    """
    path = root / (row["header"] if isinstance(row["header"], str) else str(row["signal"]).split(" ")[0])
    raw = load_record(path, ImportOptions(gain_override=GAIN_OVERRIDES))
    twelve, _, _ = to_code_leads(raw.signal, raw.lead_names, path=path, record=raw.name)
    flag = "fixed-gain" if raw.meta.get("header_gain") not in (None, raw.meta.get("gain_used")) else "ok"
    lead_ii = float(np.percentile(np.abs(twelve[:, 1] - np.median(twelve[:, 1])), 99.5))
    if raw.meta.get("header_gain") in UNKNOWN_SCALE_GAINS or not (
            PLAUSIBLE_LEAD_II_MV[0] <= lead_ii <= PLAUSIBLE_LEAD_II_MV[1]):
        flag = "scale-unknown"
    return twelve, float(raw.fs), flag


def load_real(root: Path, limit: int | None = None) -> tuple[list[np.ndarray], pd.DataFrame]:
    """Real records at 400 Hz, first 10 s, in 1e-4 V; plus a table of names, labels and scale flags."""
    table = pd.read_csv(root / "labels.csv")
    if limit is not None:
        table = table.iloc[:limit]
    signals, rows = [], []
    for _, row in table.iterrows():
        try:
            mv, fs, flag = read_real_record(root, row)
        except Exception as err:  # a record we cannot read is reported, not fatal
            print(f"skipping {row['record']}: {err}", file=sys.stderr)
            continue
        ratio = Fraction(SAMPLE_RATE / fs).limit_denominator(100)
        x = signal.resample_poly(mv, ratio.numerator, ratio.denominator, axis=0)
        signals.append((x[: int(CROP_SECONDS * SAMPLE_RATE)] * UNITS_PER_MV).astype(np.float32))
        labels = {c: (np.nan if pd.isna(row[c]) else float(row[c])) for c in CLASSES}
        rows.append({"record": row["record"], "source": row["source"], "scale": flag, **labels})
    return signals, pd.DataFrame(rows)


# ---------------------------------------------------------------- synthetic exams
def load_synthetic(n: int, seed: int, config: dict | None = None) -> tuple[list[np.ndarray], pd.DataFrame]:
    """``n`` synthetic exams (padding removed, 1e-4 V) and a table of their clean labels."""
    from ecglit.data.synthetic import SyntheticConfig, generate_batch

    signals, _, clean, metas = generate_batch(seed, np.arange(n), SyntheticConfig.from_dict(config))
    out = []
    for x, meta in zip(signals, metas):
        start = int(meta["pad_left"])
        out.append(np.asarray(x[start : start + round(meta["record_seconds"] * SAMPLE_RATE)]))
    table = pd.DataFrame(np.asarray(clean, dtype=float), columns=list(CLASSES))
    table.insert(0, "record", [f"synthetic_{i}" for i in range(n)])
    table.insert(1, "source", "synthetic")
    table.insert(2, "scale", "ok")
    return out, table


# ---------------------------------------------------------------- features and comparison
def exam_features(signals: list[np.ndarray], fs: float = SAMPLE_RATE) -> pd.DataFrame:
    """Measured intervals and per-lead amplitude statistics (1e-4 V), one row per exam."""
    rows = []
    for x in signals:
        m = measure_intervals(x, fs)
        row = {k: m[k] for k in INTERVALS}
        centred = x - np.median(x, axis=0)
        for j, lead in enumerate(LEADS):
            row[f"std_{lead}"] = float(centred[:, j].std())
            row[f"p995_{lead}"] = float(np.percentile(np.abs(centred[:, j]), 99.5))
            row[f"ptp_{lead}"] = float(np.ptp(centred[:, j]))
        rows.append(row)
    return pd.DataFrame(rows)


def groups(labels: pd.DataFrame) -> dict[str, np.ndarray]:
    """Row masks: all exams, exams without any of the six labels, and each class's positives."""
    out = {"all": np.ones(len(labels), bool)}
    out["none of the six"] = (labels[list(CLASSES)].fillna(0) == 0).all(axis=1).to_numpy()
    for c in CLASSES:
        out[c] = (labels[c] == 1).to_numpy()
    return out


def compare_features(synth: pd.DataFrame, real: pd.DataFrame, features: list[str],
                     synth_groups: dict[str, np.ndarray], real_groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """Side-by-side quartiles per feature and group; ``ratio`` = synthetic median / real median."""
    rows = []
    for group in synth_groups:
        for feature in features:
            s = synth.loc[synth_groups[group], feature].dropna()
            r = real.loc[real_groups[group], feature].dropna()
            q_s = s.quantile([0.25, 0.5, 0.75]).to_numpy() if len(s) else np.full(3, np.nan)
            q_r = r.quantile([0.25, 0.5, 0.75]).to_numpy() if len(r) else np.full(3, np.nan)
            rows.append({"group": group, "feature": feature, "n_synthetic": len(s), "n_real": len(r),
                         "synthetic_q25": q_s[0], "synthetic_median": q_s[1], "synthetic_q75": q_s[2],
                         "real_q25": q_r[0], "real_median": q_r[1], "real_q75": q_r[2],
                         "ratio": q_s[1] / q_r[1] if len(r) and q_r[1] else np.nan})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- figures
def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def plot_intervals(synth: pd.DataFrame, real: pd.DataFrame, sg: dict, rg: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    for ax, feature, bins in zip(axes, ("hr_bpm", "qrs_ms", "pr_ms"),
                                 (np.arange(30, 181, 5), np.arange(50, 221, 5), np.arange(60, 421, 10))):
        for data, name, color in ((synth, "synthetic", "tab:blue"), (real, "real", "tab:orange")):
            ax.hist(data[feature].dropna(), bins=bins, density=True, alpha=0.5, label=name, color=color)
        ax.set_xlabel(feature)
        ax.legend()
    paths.append(out / "synthetic_vs_real_intervals.png")
    _save(fig, paths[-1])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
    names = [g for g in sg if g != "all"]
    for ax, feature in zip(axes, ("hr_bpm", "qrs_ms", "pr_ms")):
        data, ticks = [], []
        for k, g in enumerate(names):
            data += [synth.loc[sg[g], feature].dropna(), real.loc[rg[g], feature].dropna()]
            ticks.append(3 * k + 1.5)
        positions = [3 * k + 1 + j for k in range(len(names)) for j in (0, 1)]
        box = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=False)
        for j, patch in enumerate(box["boxes"]):
            patch.set_facecolor("tab:blue" if j % 2 == 0 else "tab:orange")
        ax.set_xticks(ticks, [g.replace("none of the six", "none") for g in names], rotation=30)
        ax.set_ylabel(feature)
    axes[0].set_title("blue synthetic, orange real (per class)")
    paths.append(out / "synthetic_vs_real_per_class.png")
    _save(fig, paths[-1])
    fig, axes = plt.subplots(3, 1, figsize=(12, 8))
    for ax, stat in zip(axes, STATS):
        data = []
        for lead in LEADS:
            data += [synth[f"{stat}_{lead}"].dropna(), real[f"{stat}_{lead}"].dropna()]
        positions = [3 * k + 1 + j for k in range(len(LEADS)) for j in (0, 1)]
        box = ax.boxplot(data, positions=positions, widths=0.8, patch_artist=True, showfliers=False)
        for j, patch in enumerate(box["boxes"]):
            patch.set_facecolor("tab:blue" if j % 2 == 0 else "tab:orange")
        ax.set_xticks([3 * k + 1.5 for k in range(len(LEADS))], list(LEADS))
        ax.set_ylabel(f"{stat} (1e-4 V)")
    axes[0].set_title("per-lead amplitude: blue synthetic, orange real (records with a trusted scale)")
    paths.append(out / "synthetic_vs_real_amplitudes.png")
    _save(fig, paths[-1])
    plt.close("all")
    return paths

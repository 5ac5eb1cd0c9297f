"""The test dashboard of a training run: per-class table, PR and ROC curves, confusion matrices and 12-lead
plots of the worst errors, written as files beside test_metrics.json and logged to W&B (offline by default),
as evaluate.py does for its report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve, binary_roc

from ecglit.metrics.classification import METRICS
from ecglit.plotting.ecg12 import plot_ecg12_grid, save_png
from ecglit.utils.io import atomic_path, ensure_dir

log = logging.getLogger(__name__)
N_WORST = 6


def per_class_frame(report: dict) -> pd.DataFrame:
    """The test report's per-class table (one row per class, plus macro)."""
    rows = [{"class": c, **{m: v.get(m) for m in METRICS}, "threshold": report.get("thresholds", {}).get(c),
             "positives": report.get("support", {}).get(c, {}).get("positives")}
            for c, v in report["per_class"].items()]
    rows.append({"class": "macro", **report["macro"]})
    return pd.DataFrame(rows)


def _curve_figure(path: Path, probs: np.ndarray, targets: np.ndarray, class_names: Sequence[str], kind: str) -> Path:
    n_cols = 3
    n_rows = int(np.ceil(len(class_names) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.8 * n_rows), squeeze=False)
    for k, name in enumerate(class_names):
        ax = axes.flat[k]
        keep = ~np.isnan(targets[:, k])
        p, y = torch.as_tensor(probs[keep, k]), torch.as_tensor(targets[keep, k]).long()
        if y.sum() == 0 or y.sum() == len(y):
            ax.text(0.5, 0.5, "undefined: one class only", ha="center", va="center", transform=ax.transAxes)
        elif kind == "pr":
            precision, recall, _ = binary_precision_recall_curve(p, y)
            ax.plot(recall, precision)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        else:
            fpr, tpr, _ = binary_roc(p, y)
            ax.plot(fpr, tpr)
            ax.plot([0, 1], [0, 1], ls=":", color="gray")
            ax.set_xlabel("1 - specificity")
            ax.set_ylabel("sensitivity")
        ax.set_title(name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
    for ax in axes.flat[len(class_names):]:
        ax.axis("off")
    fig.tight_layout()
    return save_png(fig, path, dpi=80)


def _confusion_figure(path: Path, probs: np.ndarray, targets: np.ndarray, thresholds: np.ndarray,
                      class_names: Sequence[str]) -> Path:
    fig, axes = plt.subplots(1, len(class_names), figsize=(2.2 * len(class_names), 2.6), squeeze=False)
    for k, name in enumerate(class_names):
        keep = ~np.isnan(targets[:, k])
        y, pred = targets[keep, k].astype(int), (probs[keep, k] >= thresholds[k]).astype(int)
        matrix = np.array([[np.sum((y == t) & (pred == q)) for q in (0, 1)] for t in (0, 1)])
        ax = axes[0, k]
        ax.imshow(matrix, cmap="Blues")
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=9)
        ax.set_xticks([0, 1], ["pred 0", "pred 1"], fontsize=7)
        ax.set_yticks([0, 1], ["true 0", "true 1"], fontsize=7)
        ax.set_title(name, fontsize=9)
    fig.tight_layout()
    return save_png(fig, path, dpi=80)


def worst_errors(probs: np.ndarray, targets: np.ndarray, n: int = N_WORST) -> list[tuple[int, int]]:
    """(exam, class) of the ``n`` most confident mistakes (largest |probability - label|), one per exam."""
    error = np.abs(probs - np.nan_to_num(targets, nan=0.0))
    error[np.isnan(targets)] = -1.0
    out: list[tuple[int, int]] = []
    for flat in np.argsort(-error, axis=None):
        exam, cls = np.unravel_index(flat, error.shape)
        if error[exam, cls] <= 0.5 or len(out) == n:
            break
        if exam not in {e for e, _ in out}:
            out.append((int(exam), int(cls)))
    return out


def _stored_tracing(dataset: Any, index: int, input_scale: float) -> np.ndarray:
    """(4096, 12) tracing in 1e-4 V of a dataset item (items are (12, 4096) times input_scale)."""
    x = dataset[index][0]
    return np.asarray(x, np.float32).T / float(input_scale)


def write_dashboard(output_dir: Path, report: dict, probs: np.ndarray, targets: np.ndarray, thresholds: np.ndarray,
                    class_names: Sequence[str], dataset: Any = None, input_scale: float = 1.0) -> dict[str, Path]:
    """Write the dashboard's files into ``output_dir/dashboard``; returns {name: path}."""
    out = ensure_dir(Path(output_dir) / "dashboard")  # inside the run folder: the run's own files
    files = {"per_class": out / "test_per_class.csv"}
    with atomic_path(files["per_class"], overwrite=True) as tmp:
        per_class_frame(report).to_csv(tmp, index=False)
    files["pr_curves"] = _curve_figure(out / "test_pr_curves.png", probs, targets, class_names, "pr")
    files["roc_curves"] = _curve_figure(out / "test_roc_curves.png", probs, targets, class_names, "roc")
    files["confusion"] = _confusion_figure(out / "test_confusion.png", probs, targets, thresholds, class_names)
    worst = worst_errors(probs, targets)
    if dataset is not None and worst:
        signals, titles = [], []
        for exam, cls in worst:
            ids = getattr(dataset, "exam_ids", None)
            name = ids[exam] if ids is not None else exam
            kind = "missed" if targets[exam, cls] == 1 else "false"
            signals.append(_stored_tracing(dataset, exam, input_scale))
            titles.append(f"exam {name}: {kind} {class_names[cls]} (p={probs[exam, cls]:.2f})")
        files["worst_errors"] = plot_ecg12_grid(signals, titles, out / "test_worst_errors.png", ncols=2, dpi=60)
    return files


def log_dashboard(loggers: Sequence[Any], files: dict[str, Path]) -> None:
    """Send the dashboard to every W&B logger (tables and images; offline runs keep them locally)."""
    for logger in loggers:
        if type(logger).__name__ != "WandbLogger":
            continue
        import wandb

        payload: dict[str, Any] = {"test/per_class_table": wandb.Table(dataframe=pd.read_csv(files["per_class"]))}
        for name, path in files.items():
            if path.suffix == ".png":
                payload[f"test/figures/{name}"] = wandb.Image(str(path), caption=name)
        logger.experiment.log(payload)
    log.info("test dashboard: %s", ", ".join(str(p) for p in files.values()))


"""Figures as PNG: precision-recall panels (the paper's Figure 2) and bootstrap box plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt
import numpy as np

from ecglit.evaluation.pr_curves import Curve, min_max_band
from ecglit.utils.io import atomic_path

METRIC_LABELS: dict[str, str] = {
    "precision": "Precision (PPV)",
    "recall": "Recall (sensitivity)",
    "specificity": "Specificity",
    "f1": "F1 score",
}
_MARKERS = ("o", "v", "s", "D", "^", "P", "X", "*")
_COLORS = ("tab:blue", "tab:red", "tab:green", "black", "tab:orange", "tab:purple", "tab:brown", "tab:pink")
_ISO_F1 = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _draw_iso_f1(ax: plt.Axes) -> None:
    """Dotted curves of constant F1, each labelled with its F1 just above the frame where it ends."""
    for f1 in _ISO_F1:
        recall = np.linspace(f1 / 2 + 1e-6, 1.0, 400)
        precision = f1 * recall / (2 * recall - f1)
        keep = precision <= 1.0
        ax.plot(recall[keep], precision[keep], color="gray", ls=":", lw=0.8, alpha=0.7)
        ax.text(f1 / (2 - f1), 1.0, f"{f1:.1f}", transform=ax.get_xaxis_transform(), fontsize=7,
                color="gray", ha="center", va="bottom")


def plot_precision_recall(
    path: str | Path,
    class_names: Sequence[str],
    curves_by_model: Mapping[str, Sequence[Curve | None]],
    selected: str,
    selected_curves: Sequence[Curve | None],
    operating_points: Mapping[str, np.ndarray],
    model_label: str = "DNN",
) -> Path:
    """One panel per class: the selected model's PR curve (`selected_curves`), the min-max band over
    `curves_by_model` (the seeds), iso-F1 lines, and each predictor's operating point (recall, precision) from `operating_points`
    ({name: array (C, 2)}; NaN points are skipped).
    """
    n_cols = min(3, len(class_names))
    n_rows = int(np.ceil(len(class_names) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(5.0 * n_cols, 4.8 * n_rows), squeeze=False)
    n_models = len(curves_by_model)
    for k, class_name in enumerate(class_names):
        ax = axes.flat[k]
        _draw_iso_f1(ax)
        class_curves = [curves[k] for curves in curves_by_model.values() if curves[k] is not None]
        if not class_curves:
            ax.text(0.5, 0.5, "undefined:\nno positives in the reference", ha="center", va="center",
                    transform=ax.transAxes, fontsize=11, color="tab:red")
        else:
            if n_models > 1:
                band = min_max_band(class_curves)
                ax.fill_between(band.recall, band.low, band.high, color="tab:blue", alpha=0.25, lw=0,
                                label=f"{model_label}: min-max over {n_models} seeds")
            chosen = selected_curves[k]
            if chosen is not None:
                ax.plot(chosen.recall, chosen.precision, color="tab:blue", lw=1.6,
                        label=f"{model_label} ({selected}) PR curve")
        for j, (name, points) in enumerate(operating_points.items()):
            recall, precision = points[k]
            if np.isfinite(recall) and np.isfinite(precision):
                ax.plot(recall, precision, _MARKERS[j % len(_MARKERS)], color=_COLORS[j % len(_COLORS)],
                        ms=8, mec="white", mew=0.8, label=name, zorder=5, clip_on=False)
        ax.set_title(class_name, fontsize=13, pad=12)
        ax.set_xlim(0.0, 1.0)
        ax.set_ylim(0.0, 1.02)
        ax.set_xlabel("Recall (sensitivity)")
        ax.set_ylabel("Precision (PPV)")
        ax.grid(alpha=0.2)
    for ax in axes.flat[len(class_names):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=10, frameon=False)
    fig.suptitle("Precision-recall curves per class (dotted: iso-F1 lines, their F1 above each panel)",
                 fontsize=14)
    fig.tight_layout(rect=(0, 0.05, 1, 0.97))
    return _save(fig, path)


def plot_bootstrap_boxes(
    path: str | Path,
    metric: str,
    replicates: np.ndarray,
    predictor_names: Sequence[str],
    class_names: Sequence[str],
    level_note: str = "",
) -> Path:
    """Box plot of bootstrap replicates (B, P, C) of one metric: classes on x, one box per predictor."""
    n_pred = len(predictor_names)
    width = 0.8 / n_pred
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(class_names) * max(1, n_pred / 3)), 4.8))
    for p, name in enumerate(predictor_names):
        data = [replicates[:, p, c][np.isfinite(replicates[:, p, c])] for c in range(len(class_names))]
        positions = np.arange(len(class_names)) - 0.4 + width * (p + 0.5)
        boxes = ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True, showfliers=True,
                           flierprops={"markersize": 2, "alpha": 0.4}, medianprops={"color": "black"})
        color = _COLORS[p % len(_COLORS)]
        for box in boxes["boxes"]:
            box.set_facecolor(color)
            box.set_alpha(0.75)
        for median in boxes["medians"]:  # visible on dark boxes too
            median.set_color("white" if color == "black" else "black")
        ax.plot([], [], "s", color=_COLORS[p % len(_COLORS)], alpha=0.75, ms=10, label=name)
    ax.set_xticks(np.arange(len(class_names)))
    ax.set_xticklabels(class_names, fontsize=11)
    ax.set_xlim(-0.5, len(class_names) - 0.5)
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_xlabel("Class")
    ax.set_title(f"Bootstrap distribution: {METRIC_LABELS.get(metric, metric)}{level_note}")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=9, ncol=min(n_pred, 4))
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:  # run_report refused existing files first
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return path

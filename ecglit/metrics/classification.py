"""Multilabel metrics at per-class thresholds, computed with torchmetrics.

One function serves training (val/test epochs), evaluate.py, test sets and calibration, so every number
ecglit prints is computed the same way. Targets may be NaN where a source did not annotate a class; such
cells are left out of that class's scores, never counted as negatives. Values that are undefined for a class (no positives for
recall/AUROC/AP, no negatives for specificity/AUROC, no predicted or true positives for precision/F1)
are NaN, never a silent 0, and macro averages skip them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
    MultilabelSpecificity,
)
from torchmetrics.functional.classification import (
    binary_auroc,
    binary_average_precision,
    binary_f1_score,
    binary_precision,
    binary_recall,
    binary_specificity,
)

from ecglit.constants import CLASSES

METRICS: tuple[str, ...] = ("precision", "recall", "specificity", "f1", "auroc", "ap")
THRESHOLDED = ("precision", "recall", "specificity", "f1")
IGNORE_INDEX = -1  # target value of a not-annotated cell for torchmetrics' running multilabel metrics


def threshold_metric_collection(num_labels: int, threshold: float = 0.5, **kw) -> MetricCollection:
    """Macro precision/recall/specificity/F1 (the running metrics logged during training). Pass targets
    with not-annotated cells set to ``IGNORE_INDEX``."""
    common = dict(num_labels=num_labels, threshold=threshold, ignore_index=IGNORE_INDEX, **kw)
    return MetricCollection({
        "precision": MultilabelPrecision(**common),
        "recall": MultilabelRecall(**common),
        "specificity": MultilabelSpecificity(**common),
        "f1": MultilabelF1Score(**common),
    })


def _undefined(name: str, tp: int, fp: int, fn: int, tn: int) -> bool:
    pos, neg, pred_pos = tp + fn, tn + fp, tp + fp
    return {"precision": pred_pos == 0, "recall": pos == 0, "specificity": neg == 0,
            "f1": tp + fp + fn == 0}.get(name, pos == 0 or neg == 0)  # auroc, ap need both classes


def _binary_scores(probs: torch.Tensor, target: torch.Tensor, threshold: float) -> dict[str, float]:
    """The six metrics of one class (torchmetrics), NaN where undefined."""
    preds = (probs >= threshold).long()
    tp = int(((preds == 1) & (target == 1)).sum())
    fp = int(((preds == 1) & (target == 0)).sum())
    fn = int(((preds == 0) & (target == 1)).sum())
    tn = int(((preds == 0) & (target == 0)).sum())
    out: dict[str, float] = {}
    with warnings.catch_warnings():  # torchmetrics warns and returns 0 for undefined values: masked below
        warnings.simplefilter("ignore")
        for name, fn_ in _BINARY.items():
            if _undefined(name, tp, fp, fn, tn):
                out[name] = float("nan")
            else:
                out[name] = float(fn_(probs if name in ("auroc", "ap") else preds, target))
    out["_counts"] = (tp, fp, fn, tn)  # type: ignore[assignment]
    return out


_BINARY = {"precision": binary_precision, "recall": binary_recall, "specificity": binary_specificity,
           "f1": binary_f1_score, "auroc": binary_auroc, "ap": binary_average_precision}


def classification_metrics(
    probs: torch.Tensor,
    targets: torch.Tensor,
    thresholds: torch.Tensor | Sequence[float] | float = 0.5,
    class_names: Sequence[str] = CLASSES,
) -> dict:
    """Precision, recall, specificity, F1 (at ``thresholds``), AUROC and AP per class, plus macro.

    ``targets`` may hold NaN for cells a source did not annotate: each class is scored on its annotated
    exams only (never counting an unannotated exam as a negative).
    Returns ``{"macro": {metric: value}, "per_class": {class: {metric: value}}, "support": {...}}``.
    """
    probs = torch.as_tensor(probs, dtype=torch.float32)
    targets = torch.as_tensor(targets, dtype=torch.float32)
    n_labels = probs.shape[1] if probs.ndim == 2 else -1
    if probs.ndim != 2 or probs.shape != targets.shape or n_labels != len(class_names):
        raise ValueError(f"expected probs and targets of shape (N, {len(class_names)}), "
                         f"got {tuple(probs.shape)} and {tuple(targets.shape)}")
    thr = torch.as_tensor(thresholds, dtype=torch.float32).expand(n_labels)
    per_class: dict[str, dict[str, float]] = {}
    support: dict[str, dict[str, int]] = {}
    for i, c in enumerate(class_names):
        annotated = ~torch.isnan(targets[:, i])
        scores = _binary_scores(probs[annotated, i], targets[annotated, i].long(), float(thr[i]))
        tp, fp, fn, tn = scores.pop("_counts")  # type: ignore[misc]
        per_class[c] = scores
        support[c] = {"positives": tp + fn, "negatives": tn + fp}
    macro: dict[str, float] = {}
    for name in METRICS:
        defined = [v[name] for v in per_class.values() if not math.isnan(v[name])]
        macro[name] = float(sum(defined) / len(defined)) if defined else float("nan")
    return {"macro": macro, "per_class": per_class, "support": support}


def flatten_metrics(report: dict, prefix: str) -> dict[str, float]:
    """``{prefix/metric_macro, prefix/metric/class}`` scalars for loggers (NaNs dropped)."""
    flat = {f"{prefix}/{m}_macro": v for m, v in report["macro"].items()}
    for c, vals in report["per_class"].items():
        flat.update({f"{prefix}/{m}/{c}": v for m, v in vals.items()})
    return {k: v for k, v in flat.items() if not math.isnan(v)}

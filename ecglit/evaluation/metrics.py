"""Multilabel metrics at per-class thresholds, computed with torchmetrics.

One function serves training (val/test epochs), evaluate.py and predict reports, so every number
ecglit prints is computed the same way. Values that are undefined for a class (no positives for
recall/AUROC/AP, no negatives for specificity/AUROC, no predicted or true positives for precision/F1)
are NaN, never a silent 0, and macro averages skip them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torchmetrics import MetricCollection
from torchmetrics.classification import (
    MultilabelAUROC,
    MultilabelAveragePrecision,
    MultilabelF1Score,
    MultilabelPrecision,
    MultilabelRecall,
    MultilabelSpecificity,
)

from ecglit.constants import CLASSES

METRICS: tuple[str, ...] = ("precision", "recall", "specificity", "f1", "auroc", "ap")
THRESHOLDED = ("precision", "recall", "specificity", "f1")


def threshold_metric_collection(num_labels: int, threshold: float = 0.5, **kw) -> MetricCollection:
    """Macro precision/recall/specificity/F1 (the running metrics logged during training)."""
    common = dict(num_labels=num_labels, threshold=threshold, **kw)
    return MetricCollection({
        "precision": MultilabelPrecision(**common),
        "recall": MultilabelRecall(**common),
        "specificity": MultilabelSpecificity(**common),
        "f1": MultilabelF1Score(**common),
    })


def per_class_metric_collection(num_labels: int, sync_on_compute: bool = False) -> MetricCollection:
    """Per-class (average=None) metrics; thresholded ones take integer predictions."""
    common = dict(num_labels=num_labels, average=None, sync_on_compute=sync_on_compute)
    return MetricCollection({
        "precision": MultilabelPrecision(**common),
        "recall": MultilabelRecall(**common),
        "specificity": MultilabelSpecificity(**common),
        "f1": MultilabelF1Score(**common),
    })


def _undefined_mask(name: str, tp, fp, fn, tn) -> torch.Tensor:
    pos, neg, pred_pos = tp + fn, tn + fp, tp + fp
    if name == "precision":
        return pred_pos == 0
    if name == "recall":
        return pos == 0
    if name == "specificity":
        return neg == 0
    if name == "f1":
        return (tp + fp + fn) == 0
    return (pos == 0) | (neg == 0)  # auroc, ap


def classification_metrics(
    probs: torch.Tensor,
    targets: torch.Tensor,
    thresholds: torch.Tensor | Sequence[float] | float = 0.5,
    class_names: Sequence[str] = CLASSES,
) -> dict:
    """Precision, recall, specificity, F1 (at ``thresholds``), AUROC and AP per class, plus macro.

    Returns ``{"macro": {metric: value}, "per_class": {class: {metric: value}}, "support": {...}}``.
    """
    probs = torch.as_tensor(probs, dtype=torch.float32)
    targets = torch.as_tensor(targets).long()
    n_labels = probs.shape[1]
    if probs.ndim != 2 or probs.shape != targets.shape or n_labels != len(class_names):
        raise ValueError(f"expected probs and targets of shape (N, {len(class_names)}), "
                         f"got {tuple(probs.shape)} and {tuple(targets.shape)}")
    thr = torch.as_tensor(thresholds, dtype=torch.float32).expand(n_labels)
    preds = (probs >= thr).long()
    values = {k: v for k, v in per_class_metric_collection(n_labels)(preds, targets).items()}
    # AUROC/AP on probabilities; torchmetrics warns and returns 0 for undefined classes: masked below
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values["auroc"] = MultilabelAUROC(n_labels, average=None)(probs, targets)
        values["ap"] = MultilabelAveragePrecision(n_labels, average=None)(probs, targets)
    tp = ((preds == 1) & (targets == 1)).sum(0)
    fp = ((preds == 1) & (targets == 0)).sum(0)
    fn = ((preds == 0) & (targets == 1)).sum(0)
    tn = ((preds == 0) & (targets == 0)).sum(0)
    per_class: dict[str, dict[str, float]] = {c: {} for c in class_names}
    macro: dict[str, float] = {}
    for name in METRICS:
        v = values[name].float().clone()
        v[_undefined_mask(name, tp, fp, fn, tn)] = float("nan")
        for i, c in enumerate(class_names):
            per_class[c][name] = float(v[i])
        defined = v[~torch.isnan(v)]
        macro[name] = float(defined.mean()) if len(defined) else float("nan")
    support = {c: {"positives": int(tp[i] + fn[i]), "negatives": int(tn[i] + fp[i])}
               for i, c in enumerate(class_names)}
    return {"macro": macro, "per_class": per_class, "support": support}


def flatten_metrics(report: dict, prefix: str) -> dict[str, float]:
    """``{prefix/metric_macro, prefix/metric/class}`` scalars for loggers (NaNs dropped)."""
    flat = {f"{prefix}/{m}_macro": v for m, v in report["macro"].items()}
    for c, vals in report["per_class"].items():
        flat.update({f"{prefix}/{m}/{c}": v for m, v in vals.items()})
    return {k: v for k, v in flat.items() if not math.isnan(v)}

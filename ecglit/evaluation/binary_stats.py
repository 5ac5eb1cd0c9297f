"""Per-class scores of hard (0/1) predictions: precision, recall, specificity, F1, with 0/0 kept as NaN.

torchmetrics computes the point estimates. It maps 0/0 to 0 (or 1), which would hide that a score is
undefined (e.g. recall of a class with no positives), so the cells whose denominator is zero are set to
NaN from torchmetrics' own stat scores. `scores_from_counts` is the same arithmetic on confusion counts,
used by the vectorised bootstrap (tests check both agree).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multilabel_f1_score,
    multilabel_precision,
    multilabel_recall,
    multilabel_specificity,
    multilabel_stat_scores,
)

from ecglit.metrics.classification import THRESHOLDED as METRICS  # Table 2's scores, in the paper's order

# Why a metric can be undefined (its denominator is zero).
UNDEFINED_REASON: dict[str, str] = {
    "precision": "no predicted positives (TP+FP=0)",
    "recall": "no positives in the reference (TP+FN=0)",
    "specificity": "no negatives in the reference (TN+FP=0)",
    "f1": "no positives in the reference and none predicted (TP+FP+FN=0)",
}


def apply_thresholds(probs: np.ndarray, thresholds: Sequence[float] | np.ndarray) -> np.ndarray:
    """Hard labels (N, C) int64: positive where the probability is at or above the class threshold.

    `>=` as in `metrics.classification_metrics`: `thresholds.select_thresholds` returns the score of the
    lowest exam it calls positive. (The paper's script used `>` with its own thresholds; both give the
    same labels for the published thresholds, which tests check.)
    """
    thresholds = np.asarray(thresholds, dtype=np.float32)
    return (np.asarray(probs, dtype=np.float32) >= thresholds[None, :]).astype(np.int64)


def confusion_counts(preds: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Confusion counts (C, 4) ordered TP, FP, TN, FN for hard labels (N, C), via torchmetrics."""
    p, t = torch.as_tensor(preds), torch.as_tensor(target)
    stats = multilabel_stat_scores(p, t, num_labels=p.shape[1], average=None)  # (C, 5): tp fp tn fn sup
    return stats[:, :4].numpy().astype(np.int64)


def _undefined_masks(counts: np.ndarray) -> dict[str, np.ndarray]:
    tp, fp, tn, fn = (counts[..., i] for i in range(4))
    return {
        "precision": tp + fp == 0,
        "recall": tp + fn == 0,
        "specificity": tn + fp == 0,
        "f1": tp + fp + fn == 0,
    }


def per_class_scores(preds: np.ndarray, target: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, specificity and F1 per class (arrays (C,)), NaN where undefined."""
    p, t = torch.as_tensor(preds), torch.as_tensor(target)
    n_labels = p.shape[1]
    scores = {
        "precision": multilabel_precision(p, t, n_labels, average=None),
        "recall": multilabel_recall(p, t, n_labels, average=None),
        "specificity": multilabel_specificity(p, t, n_labels, average=None),
        "f1": multilabel_f1_score(p, t, n_labels, average=None),
    }
    undefined = _undefined_masks(confusion_counts(preds, target))
    return {name: np.where(undefined[name], np.nan, value.double().numpy()) for name, value in scores.items()}


def scores_from_counts(counts: np.ndarray) -> np.ndarray:
    """Scores from confusion counts (..., 4) [TP, FP, TN, FN] -> (..., len(METRICS)), NaN where 0/0."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, tn, fn = (counts[..., i] for i in range(4))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.stack(
            [tp / (tp + fp), tp / (tp + fn), tn / (tn + fp), 2 * tp / (2 * tp + fp + fn)], axis=-1
        )
    return out  # 0/0 gives NaN by IEEE arithmetic; no score has a non-zero numerator over zero


def undefined_notes(counts: np.ndarray, class_names: Sequence[str]) -> dict[tuple[str, str], str]:
    """{(class, metric): reason} for every undefined score given counts (C, 4)."""
    masks = _undefined_masks(np.asarray(counts))
    return {
        (class_names[c], metric): f"undefined: {UNDEFINED_REASON[metric]}"
        for metric, mask in masks.items()
        for c in np.flatnonzero(mask)
    }

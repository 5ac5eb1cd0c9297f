"""Per-class decision thresholds that maximise F1, the rule the paper used on its validation set."""

from __future__ import annotations

import torch
from torchmetrics.functional.classification import binary_precision_recall_curve

DEFAULT_THRESHOLD = 0.5


def select_thresholds(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Threshold per class at the point of the precision-recall curve with the highest F1.

    Args:
        probs: (N, C) probabilities.
        targets: (N, C) 0/1 labels; NaN cells (not annotated) are left out of their class.

    Returns:
        (C,) float32 thresholds. A class without positives (F1 undefined) keeps 0.5.
    """
    probs = torch.as_tensor(probs, dtype=torch.float32)
    targets = torch.as_tensor(targets, dtype=torch.float32)
    if probs.ndim != 2 or probs.shape != targets.shape:
        raise ValueError(f"probs and targets must both be (N, C); got {tuple(probs.shape)} and {tuple(targets.shape)}")
    out = torch.full((probs.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float32)
    for c in range(probs.shape[1]):
        annotated = ~torch.isnan(targets[:, c])
        p, y = probs[annotated, c], targets[annotated, c].long()
        if y.sum() == 0:
            continue
        precision, recall, thresholds = binary_precision_recall_curve(p, y)
        # the curve has one more point than thresholds (recall 0, precision 1): drop it
        precision, recall = precision[:-1], recall[:-1]
        f1 = torch.nan_to_num(2 * precision * recall / (precision + recall))
        out[c] = thresholds[int(torch.argmax(f1))]
    return out

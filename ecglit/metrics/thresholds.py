"""Per-class decision thresholds: maximum F1 (the rule the paper used on its validation set), or a target
sensitivity or specificity (recalibration for a new population, ``ecglit.calibrate``)."""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve

from ecglit.errors import ConfigError

DEFAULT_THRESHOLD = 0.5


def select_thresholds(probs: torch.Tensor, targets: torch.Tensor, default: torch.Tensor | None = None) -> torch.Tensor:
    """Threshold per class at the point of the precision-recall curve with the highest F1.

    Args:
        probs: (N, C) probabilities.
        targets: (N, C) 0/1 labels; NaN cells (not annotated) are left out of their class.

        default: (C,) thresholds kept by classes without positives (default 0.5 each).

    Returns:
        (C,) float32 thresholds. A class without positives (F1 undefined) keeps its default.
    """
    probs = torch.as_tensor(probs, dtype=torch.float32)
    targets = torch.as_tensor(targets, dtype=torch.float32)
    if probs.ndim != 2 or probs.shape != targets.shape:
        raise ValueError(f"probs and targets must both be (N, C); got {tuple(probs.shape)} and {tuple(targets.shape)}")
    out = (torch.full((probs.shape[1],), DEFAULT_THRESHOLD, dtype=torch.float32) if default is None
           else torch.as_tensor(default, dtype=torch.float32).clone())
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


def parse_rule(rule: str) -> tuple[str, float | None]:
    """``max_f1`` | ``sensitivity:0.9`` | ``specificity:0.99`` -> (name, target). ``sensitivity=0.9`` is
    read too, but Hydra's override grammar needs it quoted (``rule='sensitivity=0.9'``)."""
    rule = str(rule).strip()
    if rule == "max_f1":
        return "max_f1", None
    name, _, value = rule.replace(":", "=", 1).partition("=")
    try:
        target = float(value)
    except ValueError:
        target = float("nan")
    if name not in ("sensitivity", "specificity") or not 0.0 < target <= 1.0:
        raise ConfigError(f"rule must be max_f1, sensitivity:<0..1> or specificity:<0..1>, got {rule!r}")
    return name, target


def threshold_for_rule(probs: np.ndarray, targets: np.ndarray, rule: str) -> float | None:
    """One class's threshold under ``rule`` on annotated exams (NaN targets dropped); None when the set
    cannot define it (no positives, or no negatives for a specificity rule).

    - max_f1: the F1-maximising threshold (as :func:`select_thresholds`);
    - sensitivity=s: the highest threshold whose sensitivity is at least s;
    - specificity=s: the lowest threshold whose specificity is at least s.
    Labels are ``prob >= threshold``.
    """
    name, target = parse_rule(rule)
    keep = ~np.isnan(targets)
    p, y = np.asarray(probs, np.float64)[keep], np.asarray(targets)[keep].astype(np.int64)
    n_pos, n_neg = int(y.sum()), int(len(y) - y.sum())
    if n_pos == 0 or (name == "specificity" and n_neg == 0):
        return None
    if name == "max_f1":
        return float(select_thresholds(torch.tensor(p[:, None]), torch.tensor(y[:, None]))[0])
    candidates = np.unique(p)  # ascending; labels = p >= t
    if name == "sensitivity":
        sens = np.array([(p[y == 1] >= t).mean() for t in candidates])
        return float(candidates[np.flatnonzero(sens >= target - 1e-12)[-1]])
    spec = np.array([(p[y == 0] < t).mean() for t in candidates] + [1.0])
    ok = np.flatnonzero(spec >= target - 1e-12)[0]
    return float(candidates[ok]) if ok < len(candidates) else float(np.nextafter(candidates[-1], 2.0))

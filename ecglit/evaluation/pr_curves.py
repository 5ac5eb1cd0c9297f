"""Precision-recall curves per class and the min-max band over seeds (the data of the paper's Figure 2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torchmetrics.functional.classification import binary_precision_recall_curve


@dataclass(frozen=True)
class Curve:
    """One precision-recall curve: points (recall[i], precision[i]), from high threshold to low."""

    recall: np.ndarray
    precision: np.ndarray


def precision_recall_curves(probs: np.ndarray, target: np.ndarray) -> list[Curve | None]:
    """One curve per class (torchmetrics, exact thresholds); None for a class without positives."""
    curves: list[Curve | None] = []
    for c in range(probs.shape[1]):
        if int(np.asarray(target)[:, c].sum()) == 0:
            curves.append(None)
            continue
        precision, recall, _ = binary_precision_recall_curve(
            torch.as_tensor(probs[:, c], dtype=torch.float64), torch.as_tensor(target[:, c])
        )
        curves.append(Curve(recall=recall.numpy()[::-1].copy(), precision=precision.numpy()[::-1].copy()))
    return curves


@dataclass(frozen=True)
class Band:
    """Lowest and highest precision over several curves at each recall of `recall` (increasing)."""

    recall: np.ndarray
    low: np.ndarray
    high: np.ndarray


def _curve_range(curve: Curve, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision range of the curve as drawn (a polyline) at each recall in `grid`.

    At a recall the curve reaches, the range spans its vertical segment there (negatives admitted at
    one recall); between two reached recalls the line runs from the last point of the first to the
    first point of the next, so the value is interpolated between those.
    """
    levels, first = np.unique(curve.recall, return_index=True)
    last = np.r_[first[1:], len(curve.recall)] - 1
    seg_low = np.minimum.reduceat(curve.precision, first)
    seg_high = np.maximum.reduceat(curve.precision, first)
    exit_p, entry_p = curve.precision[last], curve.precision[first]
    pos = np.clip(np.searchsorted(levels, grid, side="right") - 1, 0, len(levels) - 1)
    nxt = np.minimum(pos + 1, len(levels) - 1)
    span = levels[nxt] - levels[pos]
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.where(span > 0, (grid - levels[pos]) / span, 0.0)
    between = exit_p[pos] + t * (entry_p[nxt] - exit_p[pos])
    on_level = np.isclose(grid, levels[pos], rtol=0, atol=1e-12)
    low = np.where(on_level, seg_low[pos], between)
    high = np.where(on_level, seg_high[pos], between)
    outside = (grid < levels[0]) | (grid > levels[-1])
    return np.where(outside, np.nan, low), np.where(outside, np.nan, high)


def min_max_band(curves: Sequence[Curve], n_grid: int = 501) -> Band:
    """Min-max envelope of several curves of one class, covering each curve as it is drawn."""
    grid = np.unique(np.concatenate([np.linspace(0.0, 1.0, n_grid), *[c.recall for c in curves]]))
    ranges = [_curve_range(c, grid) for c in curves]
    low = np.nanmin(np.stack([r[0] for r in ranges]), axis=0)
    high = np.nanmax(np.stack([r[1] for r in ranges]), axis=0)
    return Band(recall=grid, low=low, high=high)

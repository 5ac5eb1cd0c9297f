"""The long-form tables: Table 2 (scores with bootstrap intervals) and the confusion matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ecglit.evaluation.binary_stats import METRICS, confusion_counts, per_class_scores, undefined_notes
from ecglit.evaluation.bootstrap import BootstrapResult, macro_replicates, percentile_interval

TABLE2_COLUMNS: tuple[str, ...] = ("predictor", "class", "metric", "value", "ci_low", "ci_high", "note")
CONFUSION_COLUMNS: tuple[str, ...] = ("predictor", "class", "tn", "fp", "fn", "tp", "n")
MACRO = "macro"


def score_table(
    predictors: Mapping[str, np.ndarray],
    target: np.ndarray,
    class_names: Sequence[str],
    boot: BootstrapResult,
    ci_method: str = "linear",
) -> pd.DataFrame:
    """Long Table 2: per predictor, class (and macro average) and metric, the value and its interval.

    Undefined values are NaN with a `note` saying why; the macro row averages the defined classes.
    """
    macro_low, macro_high = percentile_interval(macro_replicates(boot.replicates), boot.level, ci_method)
    rows = []
    for p, (name, labels) in enumerate(predictors.items()):
        scores = per_class_scores(labels, target)
        notes = undefined_notes(confusion_counts(labels, target), class_names)
        for m, metric in enumerate(METRICS):
            for c, class_name in enumerate(class_names):
                rows.append((name, class_name, metric, scores[metric][c], boot.low[p, c, m], boot.high[p, c, m],
                             notes.get((class_name, metric), "")))
        for m, metric in enumerate(METRICS):
            values = scores[metric]
            n_undefined = int(np.isnan(values).sum())
            macro = np.nan if n_undefined == len(values) else float(np.nanmean(values))
            note = f"mean over {len(values) - n_undefined} defined classes" if n_undefined else ""
            rows.append((name, MACRO, metric, macro, macro_low[p, m], macro_high[p, m], note))
    return pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))


def confusion_table(
    predictors: Mapping[str, np.ndarray], target: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """Long table of 2x2 confusion matrices (reference rows x predicted columns) per predictor and class."""
    rows = []
    for name, labels in predictors.items():
        counts = confusion_counts(labels, target)  # (C, 4): tp fp tn fn
        for c, class_name in enumerate(class_names):
            tp, fp, tn, fn = (int(v) for v in counts[c])
            rows.append((name, class_name, tn, fp, fn, tp, tn + fp + fn + tp))
    return pd.DataFrame(rows, columns=list(CONFUSION_COLUMNS))


def operating_points(table2: pd.DataFrame, class_names: Sequence[str]) -> dict[str, np.ndarray]:
    """{predictor: (C, 2) array of (recall, precision)} from Table 2, for the PR figure."""
    points = {}
    for name, group in table2.groupby("predictor", sort=False):
        wide = group.pivot(index="class", columns="metric", values="value")
        points[str(name)] = wide.loc[list(class_names), ["recall", "precision"]].to_numpy(dtype=float)
    return points

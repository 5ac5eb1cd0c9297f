"""Several trained networks (seeds) on one test set: per-seed metrics, the paper's pick, the ensemble.

The paper ranks its 10 seeds by micro-averaged average precision and reports the one at position
n // 2 of the ascending order (index[5] of 10, "immediately above the median"); that is `select="median"`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torchmetrics.functional.classification import multilabel_average_precision

from ecglit.errors import ConfigError
from ecglit.metrics.classification import METRICS, classification_metrics

ENSEMBLE = "ensemble"
SEED_COLUMNS: tuple[str, ...] = ("model", "rank_micro_ap", "class", "metric", "value")


def _quiet_tm(fn, *args, **kwargs) -> torch.Tensor:
    # torchmetrics warns about classes without positives/negatives; they are marked NaN by the caller.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return fn(*args, **kwargs)


def micro_average_precision(probs: np.ndarray, target: np.ndarray) -> float:
    """Micro-averaged average precision over all classes (the paper's ranking score)."""
    p, t = torch.as_tensor(probs, dtype=torch.float64), torch.as_tensor(target)
    if int(t.sum()) == 0:
        return float("nan")
    return float(_quiet_tm(multilabel_average_precision, p, t, num_labels=p.shape[1], average="micro"))


def ensemble_probabilities(probs_by_model: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean probability over models (N, C)."""
    return np.mean(np.stack(list(probs_by_model.values())), axis=0)


def select_model(micro_ap: Mapping[str, float], rule: str | int) -> str:
    """Name of the model picked by `rule` among models scored by micro-AP.

    rule: "median" (position n // 2 of the ascending order, the paper's pick), "best", "ensemble",
    a model name, or an int position in the ascending order (5 = the paper's index[5]).
    """
    names = list(micro_ap)
    order = [names[i] for i in np.argsort([micro_ap[n] for n in names], kind="stable")]
    if isinstance(rule, bool):
        raise ConfigError(f"select must be median, best, ensemble, a model name or an int, got {rule!r}")
    if isinstance(rule, int):
        if not -len(order) <= rule < len(order):
            raise ConfigError(f"select={rule} is out of range for {len(order)} models")
        return order[rule]
    if rule == "median":
        return order[len(order) // 2]
    if rule == "best":
        return order[-1]
    if rule == ENSEMBLE or rule in micro_ap:
        return rule
    raise ConfigError(f"select={rule!r}: expected median, best, ensemble, an int or one of {names}")


def seed_table(
    probs_by_model: Mapping[str, np.ndarray],
    target: np.ndarray,
    thresholds: np.ndarray,
    class_names: Sequence[str],
) -> pd.DataFrame:
    """Long table (SEED_COLUMNS): per model, micro-AP and, per class and macro, the metrics of
    `ecglit.metrics.classification.classification_metrics` (P/R/Spec/F1 at `thresholds`, AUROC, AP).

    Models are the given ones plus the mean-probability ensemble when there are two or more.
    `rank_micro_ap` is the position in the ascending micro-AP order (the ensemble is not ranked).
    """
    models = dict(probs_by_model)
    micro = {name: micro_average_precision(p, target) for name, p in models.items()}
    ranks = {name: rank for rank, name in enumerate(sorted(micro, key=lambda n: micro[n]))}
    if len(models) > 1:
        models[ENSEMBLE] = ensemble_probabilities(probs_by_model)
        micro[ENSEMBLE] = micro_average_precision(models[ENSEMBLE], target)
    rows = []
    for name, probs in models.items():
        rank = ranks.get(name, np.nan)
        rows.append((name, rank, "micro", "ap", micro[name]))
        scores = classification_metrics(torch.as_tensor(probs), torch.as_tensor(target),
                                         torch.as_tensor(thresholds), class_names)
        for metric in METRICS:
            for class_name in class_names:
                rows.append((name, rank, class_name, metric, scores["per_class"][class_name][metric]))
            rows.append((name, rank, "macro", metric, scores["macro"][metric]))
    return pd.DataFrame(rows, columns=list(SEED_COLUMNS))

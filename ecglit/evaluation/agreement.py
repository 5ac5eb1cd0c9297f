"""Agreement between every pair of predictors: Cohen's kappa and McNemar's test, per class.

McNemar follows the paper's script: for each exam and class a predictor is *wrong* when it disagrees
with the reference; b = exams where A is wrong and B right, c = where B is wrong and A right;
chi2 = (b - c)^2 / (b + c) with 1 degree of freedom and no continuity correction. With b + c = 0 the
predictors make exactly the same mistakes, the statistic is 0/0 and the p-value is reported as NaN.
torchmetrics has Cohen's kappa but no McNemar test, so that part is written here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
import torch
from scipy.stats import chi2
from torchmetrics.functional.classification import binary_cohen_kappa

AGREEMENT_COLUMNS: tuple[str, ...] = (
    "predictor_a", "predictor_b", "class", "kappa", "mcnemar_p",
    "mcnemar_chi2", "a_wrong_b_right", "b_wrong_a_right",
)


def cohen_kappa_per_class(labels_a: np.ndarray, labels_b: np.ndarray) -> np.ndarray:
    """Cohen's kappa between two raters' hard labels (N, C), per class (C,).

    NaN when kappa is undefined (both raters give one and the same label to every exam).
    """
    a, b = torch.as_tensor(labels_a), torch.as_tensor(labels_b)
    kappas = [binary_cohen_kappa(a[:, c], b[:, c]).item() for c in range(a.shape[1])]
    return np.asarray(kappas, dtype=np.float64)


def mcnemar_per_class(
    labels_a: np.ndarray, labels_b: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """McNemar's chi-square test (1 dof, no continuity correction) on the predictors' wrong answers.

    Returns per class (C,): p-value, chi-square statistic, b (A wrong, B right), c (B wrong, A right).
    """
    wrong_a = np.asarray(labels_a) != np.asarray(target)
    wrong_b = np.asarray(labels_b) != np.asarray(target)
    b = (wrong_a & ~wrong_b).sum(axis=0)
    c = (~wrong_a & wrong_b).sum(axis=0)
    discordant = b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.where(discordant > 0, (b - c) ** 2 / discordant, np.nan)
    p_value = np.where(np.isnan(statistic), np.nan, chi2.sf(np.nan_to_num(statistic), df=1))
    return p_value, statistic, b, c


def agreement_table(
    predictors: Mapping[str, np.ndarray], target: np.ndarray, class_names: Sequence[str]
) -> pd.DataFrame:
    """Long table (AGREEMENT_COLUMNS) with one row per pair of predictors and class."""
    rows = []
    for name_a, name_b in combinations(predictors, 2):
        labels_a, labels_b = predictors[name_a], predictors[name_b]
        kappa = cohen_kappa_per_class(labels_a, labels_b)
        p_value, statistic, b, c = mcnemar_per_class(labels_a, labels_b, target)
        for k, class_name in enumerate(class_names):
            rows.append((name_a, name_b, class_name, kappa[k], p_value[k], statistic[k], int(b[k]), int(c[k])))
    return pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS))

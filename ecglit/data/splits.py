"""Train/val/test splits: by patient (seeded) or the paper's "last rows as validation".

Both return positions into the index (sorted ascending, so val/test loaders read shards in order).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from ecglit.errors import ConfigError

SplitMethod = Literal["patient", "last_rows", "random"]


class Split(NamedTuple):
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= value < 1.0:
            raise ConfigError(f"{name} must be in [0, 1), got {value}")
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"val_fraction + test_fraction must be < 1 (nothing left to train on), got "
                          f"{val_fraction} + {test_fraction}")


def split_by_patient(patient_ids: np.ndarray, val_fraction: float, test_fraction: float,
                     seed: int = 0) -> Split:
    """Assign whole patients to test, then val, then train, in a seeded random patient order.

    Patients are added to test until it holds ``test_fraction`` of the exams (rounded to whole
    patients), then to val likewise; all remaining patients train. A patient never straddles splits.
    """
    check_fractions(val_fraction, test_fraction)
    patient_ids = np.asarray(patient_ids)
    n = len(patient_ids)
    patients, inverse, sizes = np.unique(patient_ids, return_inverse=True, return_counts=True)
    order = np.random.default_rng(seed).permutation(len(patients))
    cum = np.cumsum(sizes[order])  # exams covered after taking each patient in order

    def patients_to_cover(fraction: float) -> int:
        # Fewest patients (in order) holding at least ``fraction`` of the exams; none for fraction 0.
        return int(np.searchsorted(cum, fraction * n - 1e-9)) + 1 if fraction > 0 else 0

    n_test = patients_to_cover(test_fraction)
    n_val_end = max(n_test, patients_to_cover(test_fraction + val_fraction) if val_fraction > 0 else 0)
    which = np.empty(len(patients), np.int8)  # 0 train, 1 val, 2 test
    which[order[:n_test]] = 2
    which[order[n_test:n_val_end]] = 1
    which[order[n_val_end:]] = 0
    per_exam = which[inverse]
    return Split(*(np.flatnonzero(per_exam == k) for k in (0, 1, 2)))


def split_last_rows(n: int, val_fraction: float, test_fraction: float = 0.0) -> Split:
    """The paper's split: the last ``val_fraction`` of rows validate; before them ``test_fraction`` test.

    Row order is the index order (shards in part order, rows in stored order). Patients may straddle.
    """
    check_fractions(val_fraction, test_fraction)
    n_val = round(val_fraction * n)
    n_test = round(test_fraction * n)
    rows = np.arange(n)
    return Split(train=rows[: n - n_val - n_test], val=rows[n - n_val:], test=rows[n - n_val - n_test: n - n_val])


def split_random(n: int, val_fraction: float, test_fraction: float, seed: int = 0) -> Split:
    """Seeded random split of ``n`` items (each item its own group), e.g. for synthetic data."""
    return split_by_patient(np.arange(n), val_fraction, test_fraction, seed)


def make_split(method: SplitMethod, patient_ids: np.ndarray, val_fraction: float, test_fraction: float,
               seed: int = 0) -> Split:
    """Dispatch on ``method`` ("patient", "last_rows" or "random")."""
    if method == "patient":
        return split_by_patient(patient_ids, val_fraction, test_fraction, seed)
    if method == "last_rows":
        return split_last_rows(len(patient_ids), val_fraction, test_fraction)
    if method == "random":
        return split_random(len(patient_ids), val_fraction, test_fraction, seed)
    raise ConfigError(f"split must be 'patient', 'last_rows' or 'random', got {method!r}")

"""Train/val/test splits: by patient (seeded) or the paper's "last rows as validation".

Both return positions into the index (sorted ascending, so val/test loaders read shards in order).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np

from ecglit.errors import ConfigError

SplitMethod = Literal["patient", "last_rows", "random", "kfold", "holdout"]


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


def kfold_assignment(patient_ids: np.ndarray, labels: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold (0..folds-1) of every exam: whole patients, stratified by class (iterative stratification).

    Patients are taken rarest class first (seeded order within a class) and each goes to the fold that
    most lacks that class, ties to the smallest fold, so every fold gets its share of every class's
    positives. NaN labels (not annotated) count as no positive.
    """
    if folds < 2:
        raise ConfigError(f"folds must be >= 2, got {folds}")
    patients, inverse = np.unique(np.asarray(patient_ids), return_inverse=True)
    if len(patients) < folds:
        raise ConfigError(f"{len(patients)} patient(s) cannot fill {folds} folds")
    pos = np.zeros((len(patients), labels.shape[1]))
    np.add.at(pos, inverse, np.nan_to_num(np.asarray(labels, np.float64)) > 0.5)
    sizes = np.bincount(inverse, minlength=len(patients)).astype(float)
    totals = pos.sum(axis=0)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(patients))
    rarest = np.where(pos[order] > 0, totals[None, :], np.inf).min(axis=1)
    order = order[np.argsort(rarest, kind="stable")]  # patients with the rarest classes first
    fold_pos, fold_size = np.zeros((folds, labels.shape[1])), np.zeros(folds)
    which = np.empty(len(patients), np.int64)
    for p in order:
        present = pos[p] > 0
        if present.any():
            c = np.flatnonzero(present)[np.argmin(totals[present])]
            need = totals[c] / folds - fold_pos[:, c]
            candidates = np.flatnonzero(need == need.max())
        else:
            candidates = np.arange(folds)
        f = candidates[np.argmin(fold_size[candidates])]
        which[p] = f
        fold_pos[f] += pos[p]
        fold_size[f] += sizes[p]
    return which[inverse]


def split_kfold(patient_ids: np.ndarray, labels: np.ndarray, folds: int, fold: int, val_fraction: float,
                seed: int = 0) -> Split:
    """Fold ``fold`` tests; whole patients of the other folds validate (``val_fraction``) and train."""
    if not 0 <= fold < folds:
        raise ConfigError(f"fold must be in [0, {folds}), got {fold}")
    in_test = kfold_assignment(patient_ids, labels, folds, seed) == fold
    return _split_rest(np.asarray(patient_ids), in_test, val_fraction, seed)


def split_holdout(patient_ids: np.ndarray, in_test: np.ndarray, val_fraction: float, seed: int = 0) -> Split:
    """The exams of ``in_test`` (e.g. one source) test; whole patients of the rest validate and train."""
    if not np.any(in_test):
        raise ConfigError("the holdout selects no exam")
    if np.all(in_test):
        raise ConfigError("the holdout selects every exam: nothing is left to train on")
    return _split_rest(np.asarray(patient_ids), np.asarray(in_test, bool), val_fraction, seed)


def _split_rest(patient_ids: np.ndarray, in_test: np.ndarray, val_fraction: float, seed: int) -> Split:
    rest = np.flatnonzero(~in_test)
    inner = split_by_patient(patient_ids[rest], val_fraction, 0.0, seed)
    return Split(train=rest[inner.train], val=rest[inner.val], test=np.flatnonzero(in_test))


def make_split(method: SplitMethod, patient_ids: np.ndarray, val_fraction: float, test_fraction: float,
               seed: int = 0) -> Split:
    """Dispatch on ``method`` ("patient", "last_rows" or "random"; k-fold and holdout splits need more
    than patient ids: :func:`split_kfold`, :func:`split_holdout`)."""
    if method == "patient":
        return split_by_patient(patient_ids, val_fraction, test_fraction, seed)
    if method == "last_rows":
        return split_last_rows(len(patient_ids), val_fraction, test_fraction)
    if method == "random":
        return split_random(len(patient_ids), val_fraction, test_fraction, seed)
    raise ConfigError(f"split must be 'patient', 'last_rows' or 'random', got {method!r}")

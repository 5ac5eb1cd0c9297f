"""Reader for the CODE-test layout (Ribeiro et al. 2020 test set, Zenodo 3765780).

One HDF5 file with a single ``tracings`` (N, 4096, 12) dataset and no exam_id, plus a label CSV
with the same row order (``annotations/gold_standard.csv``: columns 1dAVb..ST, values 0/1). Exams have
no ids, so ``exam_ids`` are the row numbers 0..N-1.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ecglit.constants import CLASSES
from ecglit.data.h5dataset import H5RowsDataset
from ecglit.data.labels import parse_labels, read_table
from ecglit.data.hdf5_exams import inspect_exam_file, require_values
from ecglit.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_TRACINGS = "ecg_tracings.hdf5"
DEFAULT_LABELS = ("gold_standard.csv", "annotations/gold_standard.csv")


def resolve_code_test_paths(root: str | Path, labels: str | Path | None = None) -> tuple[Path, Path | None]:
    """(tracings file, label CSV) for ``root`` = the HDF5 file itself or a directory holding it.

    In a directory the tracings are ``ecg_tracings.hdf5`` (or its only ``*.hdf5``/``*.h5``) and the labels
    ``gold_standard.csv`` or ``annotations/gold_standard.csv`` unless ``labels`` names a CSV.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(root, "CODE-test data not found (expected ecg_tracings.hdf5 or a directory holding it)")
    base = root.parent if root.is_file() else root
    if root.is_file():
        tracings = root
    elif (root / DEFAULT_TRACINGS).is_file():
        tracings = root / DEFAULT_TRACINGS
    else:
        candidates = sorted([*root.glob("*.hdf5"), *root.glob("*.h5")])
        if len(candidates) != 1:
            raise DataError(root, f"expected {DEFAULT_TRACINGS} (or exactly one .hdf5 file), found "
                                  f"{[p.name for p in candidates]}")
        tracings = candidates[0]
    if labels is not None:
        return tracings, Path(labels)
    found = [base / name for name in DEFAULT_LABELS if (base / name).is_file()]
    return tracings, (found[0] if found else None)


def read_code_test_labels(path: str | Path, n_rows: int, tracings_name: str = "the tracings file") -> np.ndarray:
    """The row-aligned CODE-test label CSV (columns 1dAVb..ST, 0/1) as float32 (n_rows, 6)."""
    table = read_table(path, CLASSES, "CODE-test label CSV")
    if len(table) != n_rows:
        raise DataError(path, f"has {len(table)} rows but {tracings_name} has {n_rows} tracings; "
                              "the label CSV must be row-aligned with the tracings")
    y = parse_labels(table, path)
    if np.isnan(y).any():
        line = int(np.flatnonzero(np.isnan(y).any(axis=1))[0]) + 2
        raise DataError(path, "empty label cell; CODE-test labels must all be 0/1", record=f"line {line}")
    return y


class CodeTestDataset(H5RowsDataset):
    """The CODE-test set as a Dataset of ``(x, y)``; ``y`` is NaN when no label CSV is given.

    Args:
        root: ``ecg_tracings.hdf5`` or the directory holding it (and ``annotations/gold_standard.csv``).
        labels: label CSV (row-aligned, columns 1dAVb..ST); default: found next to the tracings.
        require_labels: raise a DataError when no label CSV is found (the DataModule's test set does).
        input_scale: factor applied to every tracing value.
    """

    def __init__(self, root: str | Path, labels: str | Path | None = None, input_scale: float = 1.0,
                 require_labels: bool = False) -> None:
        tracings, label_path = resolve_code_test_paths(root, labels)
        info = inspect_exam_file(tracings)
        require_values(info)
        n = info.n_rows
        if label_path is None:
            if require_labels:
                raise DataError(Path(root), "no label CSV found (gold_standard.csv or "
                                            "annotations/gold_standard.csv); pass the labels path")
            y = np.full((n, len(CLASSES)), np.nan, np.float32)
        else:
            y = read_code_test_labels(label_path, n, tracings.name)
        self.tracings_path, self.labels_path = tracings, label_path
        log.info("CODE-test set %s: %d exams, labels from %s", tracings, n, label_path)
        super().__init__([tracings], np.zeros(n, np.int32), np.arange(n), y, np.arange(n), input_scale)

"""Reading label and probability files for evaluation, with errors that name the file, row and cause."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES
from ecglit.data.labels import INDEX_COLUMN_PREFIX, read_label_matrix
from ecglit.errors import DataError



def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(path, f"not a readable CSV file ({err})") from err
    # Drop a leading unnamed index column, as written by DataFrame.to_csv() with the default index.
    if len(frame.columns) and str(frame.columns[0]).startswith(INDEX_COLUMN_PREFIX):
        frame = frame.drop(columns=frame.columns[0])
    return frame


def _select_class_columns(frame: pd.DataFrame, path: Path, class_names: Sequence[str]) -> pd.DataFrame:
    """Return the class columns in `class_names` order; any missing or extra column is an error."""
    columns = [str(c) for c in frame.columns]
    missing = [c for c in class_names if c not in columns]
    extra = [c for c in columns if c not in class_names]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {missing}")
        if extra:
            parts.append(f"unexpected columns {extra}")
        raise DataError(path, f"{'; '.join(parts)} (expected exactly {list(class_names)})")
    return frame[list(class_names)]


def _first_bad_row(mask: np.ndarray) -> int:
    """Index of the first row (0-based data row) where `mask` holds in any column."""
    return int(np.flatnonzero(mask.any(axis=1))[0])


def load_labels(
    path: str | Path, class_names: Sequence[str] = CLASSES, n_rows: int | None = None
) -> np.ndarray:
    """Read a CSV of 0/1 labels (one row per exam, one column per class) as an int64 array (N, C).

    Columns are matched by name and returned in `class_names` order. When `n_rows` is given the file
    must have exactly that many rows (every file describes the same exams in the same order). The
    parsing rules are ecglit's one label parser, :mod:`ecglit.data.labels`.
    """
    return read_label_matrix(path, class_names, n_rows)


def _all_numeric(frame: pd.DataFrame) -> bool:
    return all(pd.api.types.is_numeric_dtype(dtype) for dtype in frame.dtypes)


def load_probabilities(
    path: str | Path, class_names: Sequence[str] = CLASSES, n_rows: int | None = None
) -> np.ndarray:
    """Read predicted probabilities (N, C) from a .npy array or a CSV with one column per class.

    Values must be finite and within [0, 1] (sigmoid outputs, not logits).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    if path.suffix == ".npy":
        try:
            values = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise DataError(path, f"not a readable .npy array ({err})") from err
    elif path.suffix == ".csv":
        frame = _select_class_columns(_read_csv(path), path, class_names)
        if not _all_numeric(frame):
            raise DataError(path, "non-numeric probabilities")
        values = frame.to_numpy(dtype=float, na_value=np.nan)
    else:
        raise DataError(path, f"unsupported prediction file type {path.suffix!r} (use .npy or .csv)")
    return check_probabilities(values, path, len(class_names), n_rows)


def check_probabilities(
    values: np.ndarray, path: str | Path | None, n_classes: int, n_rows: int | None = None
) -> np.ndarray:
    """Validate an (N, C) probability array; return it as float64."""
    values = np.asarray(values)
    expected = f"({n_rows if n_rows is not None else 'N'}, {n_classes})"
    if values.ndim != 2 or values.shape[1] != n_classes or (n_rows is not None and values.shape[0] != n_rows):
        raise DataError(path, f"predictions have shape {values.shape}, expected {expected}")
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(path, f"predictions have dtype {values.dtype}, expected floats")
    values = values.astype(np.float64)
    nan = ~np.isfinite(values)
    if nan.any():
        row = _first_bad_row(nan)
        raise DataError(path, f"NaN or infinite probability {values[row].tolist()}", record=f"row {row + 1}")
    outside = (values < 0.0) | (values > 1.0)
    if outside.any():
        row = _first_bad_row(outside)
        raise DataError(path, f"probability outside [0, 1] {values[row].tolist()} (logits? apply a sigmoid)",
                        record=f"row {row + 1}")
    return values

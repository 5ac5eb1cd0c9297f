"""Read label tables (CODE-15% ``exams.csv``, CODE-test annotation CSVs) into validated arrays.

Label cells may be True/False (CODE-15%), 0/1 (CODE-test) or empty ("not annotated" -> NaN); anything
else is a DataError naming the file, the CSV line, the column and the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES
from ecglit.errors import DataError

_LABEL_VALUES = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0, "": np.nan}


def read_table(path: str | Path, required: Sequence[str], what: str,
               optional: Sequence[str] | None = None) -> pd.DataFrame:
    """Read a CSV with every column as text, checking that ``required`` columns are present.

    With ``optional`` given, only the ``required`` and ``optional`` columns are read: on a large table
    (CODE-15%'s exams.csv: 345k rows, 15 columns) that keeps the text cells, which are the peak memory of
    building an index, to the columns that are used.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, f"{what} not found")
    try:
        header = pd.read_csv(path, dtype=str, nrows=0).columns
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(path, f"missing column(s) {missing}; found {list(header)}")
        wanted = None if optional is None else {*required, *optional}
        df = pd.read_csv(path, dtype=str, keep_default_na=False,
                         usecols=None if wanted is None else (lambda c: c in wanted))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError(path, f"cannot parse as CSV ({e})") from None
    return df


def parse_labels(df: pd.DataFrame, path: str | Path, row_names: Sequence[object] | None = None) -> np.ndarray:
    """The CLASSES columns of ``df`` as float32 (N, 6): 1, 0, or NaN for empty cells.

    ``row_names`` (e.g. the exam_ids) are quoted in the error message next to the CSV line number.
    """
    out = np.empty((len(df), len(CLASSES)), np.float32)
    for k, c in enumerate(CLASSES):
        # A label column holds a handful of distinct cells: parse those, not every row.
        codes, cells = pd.factorize(df[c].to_numpy(), use_na_sentinel=False)
        values = np.array([_LABEL_VALUES.get(str(v).strip().lower(), -1.0) for v in cells], np.float32)
        bad = values[codes] == -1.0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            who = f"line {i + 2}" + (f", exam_id {row_names[i]}" if row_names is not None else "")
            raise DataError(path, f"column {c!r} has value {df[c].iloc[i]!r}; labels must be 0/1/True/False "
                                  f"or empty (not annotated); {int(bad.sum())} such cell(s)", record=who)
        out[:, k] = values[codes]
    return out


def parse_int_column(df: pd.DataFrame, column: str, path: str | Path) -> np.ndarray:
    """An integer id column (e.g. exam_id); empty or non-integer cells are a DataError."""
    values = pd.to_numeric(df[column].str.strip(), errors="coerce")
    bad = values.isna() | (values != values.round())
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(path, f"column {column!r} has non-integer value {df[column].iloc[i]!r}",
                        record=f"line {i + 2}")
    return values.to_numpy().astype(np.int64)

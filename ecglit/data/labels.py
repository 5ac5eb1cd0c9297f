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


# pandas names an unnamed leading column "Unnamed: 0" (DataFrame.to_csv's default index, e.g. the paper's dnn.csv).
INDEX_COLUMN_PREFIX = "Unnamed:"


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
        # pandas renames a repeated column "AF" to "AF.1": compare the names as written
        written = pd.read_csv(path, dtype=str, header=None, nrows=1, keep_default_na=False).iloc[0].tolist()
        repeated = sorted({c for c in written if written.count(c) > 1})
        if repeated:
            raise DataError(path, f"column(s) {repeated} appear more than once in the header")
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(path, f"missing column(s) {missing}; found {list(header)}")
        wanted = None if optional is None else {*required, *optional}
        df = pd.read_csv(path, dtype=str, keep_default_na=False,
                         usecols=None if wanted is None else (lambda c: c in wanted))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise DataError(path, f"cannot parse as CSV ({str(e).splitlines()[0] if str(e) else e})") from None
    if len(df.columns) and str(df.columns[0]).startswith(INDEX_COLUMN_PREFIX):
        df = df.drop(columns=df.columns[0])
    return df


def read_label_matrix(path: str | Path, classes: Sequence[str] = CLASSES, n_rows: int | None = None,
                      what: str = "label CSV") -> np.ndarray:
    """A row-aligned CSV of 0/1 labels with exactly the ``classes`` columns (any order; a leading unnamed
    index column is ignored) as int64 (N, C). Empty cells are refused; ``n_rows`` must match when given."""
    table = read_table(path, classes, what)
    extra = [c for c in table.columns if c not in classes]
    if extra:
        raise DataError(path, f"unexpected columns {extra} (expected exactly {list(classes)})")
    if n_rows is not None and len(table) != n_rows:
        raise DataError(path, f"has {len(table)} rows but the reference has {n_rows}")
    if len(table) == 0:
        raise DataError(path, "has no rows")
    values = parse_labels(table, path, classes=classes)
    empty = np.isnan(values).any(axis=1)
    if empty.any():
        raise DataError(path, "empty label cell; every label must be 0 or 1",
                        record=f"line {int(np.flatnonzero(empty)[0]) + 2}")
    return values.astype(np.int64)


def parse_labels(df: pd.DataFrame, path: str | Path, row_names: Sequence[object] | None = None,
                 classes: Sequence[str] = CLASSES) -> np.ndarray:
    """The ``classes`` columns of ``df`` as float32 (N, C): 1, 0, or NaN for empty cells.

    ``row_names`` (e.g. the exam_ids) are quoted in the error message next to the CSV line number.
    """
    out = np.empty((len(df), len(classes)), np.float32)
    for k, c in enumerate(classes):
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


def read_labels_by_id(path: str | Path, what: str, id_column: str = "exam_id",
                      optional: Sequence[str] = ("patient_id",)) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A label table keyed by ``id_column``: (table, ids (N,) int64, labels (N, 6) float32, NaN = empty).

    Ids must be integers and unique (a duplicate names both lines); only the id, the class columns and
    ``optional`` columns are read.
    """
    table = read_table(path, [id_column, *CLASSES], what, optional=list(optional))
    ids = parse_int_column(table, id_column, path)
    index = pd.Index(ids)
    if not index.is_unique:
        dup = np.unique(ids[index.duplicated()])
        lines = (np.flatnonzero(ids == dup[0]) + 2).tolist()
        shown = ", ".join(str(int(i)) for i in dup[:5]) + (", ..." if len(dup) > 5 else "")
        raise DataError(path, f"{len(dup)} {id_column}(s) appear on more than one row (e.g. {shown}); "
                              f"{id_column} {dup[0]} is on lines {lines}")
    return table, ids, parse_labels(table, path, row_names=ids)

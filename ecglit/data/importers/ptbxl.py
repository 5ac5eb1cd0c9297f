"""A PTB-XL folder: ``ptbxl_database.csv`` lists the records (``filename_hr`` 500 Hz under records500/,
``filename_lr`` 100 Hz under records100/) with their ``scp_codes``, patient and demographics.

The signals are plain WFDB (16 bit, 1 uV/LSB) and are read by the WFDB importer; labels and patient
ids come from the database row.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from ecglit.data.importers.labels import ptbxl_meta, read_ptbxl_database
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.data.importers.wfdb_records import read_wfdb
from ecglit.errors import DataError

DATABASE = "ptbxl_database.csv"


def is_ptbxl_folder(folder: Path) -> bool:
    """A folder holding ptbxl_database.csv next to records100/ or records500/."""
    return (folder / DATABASE).is_file() and any((folder / d).is_dir() for d in ("records100", "records500"))


@lru_cache(maxsize=4)
def _database(path: str, mtime_ns: int) -> pd.DataFrame:
    return read_ptbxl_database(path)


def database(path: Path) -> pd.DataFrame:
    return _database(str(path), path.stat().st_mtime_ns)


def find_ptbxl_records(folder: Path, rate: int, root: Path | None = None) -> list[RecordRef]:
    """One reference per database row, at the chosen rate (files that are absent fail when read)."""
    table = folder / DATABASE
    df = database(table)
    column = "filename_hr" if rate == 500 else "filename_lr"
    if column not in df.columns:
        raise DataError(table, f"no {column!r} column (needed for ptbxl_rate={rate})")
    refs = []
    for ecg_id, filename in df[column].items():
        if not isinstance(filename, str) or not filename.strip():
            raise DataError(table, f"empty {column}", record=f"ecg_id {ecg_id}")
        path = folder / (filename.strip() + ".hea")
        refs.append(RecordRef(path, "ptbxl", Path(filename).name, int(ecg_id), root or folder, table))
    return refs


def read_ptbxl(ref: RecordRef, options: ImportOptions) -> RawRecord:
    if ref.table is None or ref.index is None:
        raise DataError(ref.path, "a PTB-XL record needs its database row", record=ref.name)
    if not ref.path.is_file():
        raise DataError(ref.path, f"record listed in {ref.table.name} (ecg_id {ref.index}) is missing",
                        record=ref.name)
    raw = read_wfdb(ref, options)
    row = database(ref.table).loc[ref.index]
    raw.labels = dict(row["labels"])
    raw.meta.update(ptbxl_meta(row), label_source="ptbxl_database")
    return raw

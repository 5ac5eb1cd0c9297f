"""Find the records under a path and read one with the importer of its format.

Formats: ``wfdb`` (.hea + .dat/...), ``cinc`` (.hea + .mat), ``cpsc`` (raw CPSC 2018 .mat), ``ptbxl``
(a folder with ptbxl_database.csv and records100/500), ``code_test`` (HDF5 ``tracings`` rows),
``array`` (.npy / .csv). Label tables found while searching (CPSC ``REFERENCE.csv``, PTB-XL
``ptbxl_database.csv`` without records beside it) are collected for label look-up.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ecglit.data.importers.arrays import csv_is_signal, read_array
from ecglit.data.importers.cinc import is_cinc_header, read_cinc
from ecglit.data.importers.code_test_hdf5 import hdf5_refs, read_code_test
from ecglit.data.importers.cpsc import mat_kind, read_cpsc
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.ptbxl import DATABASE, find_ptbxl_records, is_ptbxl_folder, read_ptbxl
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.data.importers.wfdb_records import read_wfdb
from ecglit.errors import DataError

READERS: dict[str, Callable[[RecordRef, ImportOptions], RawRecord]] = {
    "wfdb": read_wfdb,
    "cinc": read_cinc,
    "cpsc": read_cpsc,
    "ptbxl": read_ptbxl,
    "code_test": read_code_test,
    "array": read_array,
}
CPSC_REFERENCE = "REFERENCE.csv"
_HDF5 = (".hdf5", ".h5", ".hd5")
# Files that belong to a header-described record, or are plainly not records: never reported.
_COMPANIONS = {".dat", ".xyz", ".atr", ".qrs", ".ecg", ".edf"}


@dataclass
class Discovery:
    """What a search found: records, label tables, and files that are not records."""

    refs: list[RecordRef] = field(default_factory=list)
    cpsc_reference: list[Path] = field(default_factory=list)
    ptbxl_database: list[Path] = field(default_factory=list)
    ignored: list[Path] = field(default_factory=list)


def _file_ref(path: Path, root: Path | None) -> RecordRef | list[RecordRef] | None:
    """The record(s) in one file, or None when the file is not a record on its own."""
    suffix = path.suffix.lower()
    if suffix == ".hea":
        return RecordRef(path, "cinc" if is_cinc_header(path) else "wfdb", path.stem, None, root)
    if suffix == ".mat":
        if path.with_suffix(".hea").is_file():
            return None  # the samples of a CinC record, read through its header
        kind = mat_kind(path)
        if kind == "cpsc":
            return RecordRef(path, "cpsc", path.stem, None, root)
        if kind == "cinc":
            raise DataError(path, "CinC .mat without its .hea header (the header holds rate and gains)")
        raise DataError(path, "MATLAB file is neither a CinC record ('val' + .hea) nor a CPSC 2018 record "
                              "(struct 'ECG')")
    if suffix in _HDF5:
        return hdf5_refs(path, root)
    if suffix == ".npy" or (suffix == ".csv" and csv_is_signal(path)):
        return RecordRef(path, "array", path.stem, None, root)
    return None


_UNKNOWN = ("unknown record format {}: expected .hea (+ .dat/.mat), a CPSC .mat, .hdf5, .npy, a numeric "
            ".csv or a PTB-XL folder")


def _single_file_refs(path: Path) -> list[RecordRef]:
    if path.suffix.lower() in (".mat", ".dat") and path.with_suffix(".hea").is_file():
        path = path.with_suffix(".hea")  # the samples of a header-described record
    found = _file_ref(path, path.parent)
    if found is None:
        raise DataError(path, _UNKNOWN.format(repr(path.suffix or "(no extension)")))
    return found if isinstance(found, list) else [found]


def detect_format(path: str | Path) -> str:
    """The importer that reads a file or folder (raises DataError for an unknown format)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file or directory")
    if path.is_dir():
        if is_ptbxl_folder(path):
            return "ptbxl"
        raise DataError(path, "a folder of records: use find_records()")
    refs = _single_file_refs(path)
    return refs[0].format if refs else "code_test"


def scan_input(path: str | Path, ptbxl_rate: int = 500, exclude: str | Path | None = None) -> Discovery:
    """All records under ``path`` (a file or a folder, searched recursively in sorted order).

    In a folder, a file that should be a record but cannot be identified (a ``.mat`` of unknown
    content, an unreadable HDF5) becomes a reference carrying ``error``, reported when it is loaded;
    files of other types are listed in ``ignored``. A single file of unknown type raises DataError.
    ``exclude``: a folder not to search (the conversion's own output, when it lies inside ``path``).
    """
    path = Path(path)
    out = Discovery()
    if not path.exists():
        raise DataError(path, "input does not exist")
    if path.is_file():
        if path.name == DATABASE and is_ptbxl_folder(path.parent):
            path = path.parent
        else:
            out.refs.extend(_single_file_refs(path))
            return out
    root = path
    skip = Path(exclude).resolve() if exclude is not None else None
    for folder, dirs, files in os.walk(root):
        folder_path = Path(folder)
        if skip is not None:
            dirs[:] = [d for d in dirs if (folder_path / d).resolve() != skip]
        dirs.sort()
        if is_ptbxl_folder(folder_path):
            out.refs.extend(find_ptbxl_records(folder_path, ptbxl_rate, root))
            out.ptbxl_database.append(folder_path / DATABASE)
            dirs[:] = [d for d in dirs if d not in ("records100", "records500")]
        for name in sorted(files):
            p = folder_path / name
            if name == CPSC_REFERENCE:
                out.cpsc_reference.append(p)
                continue
            if name == DATABASE:
                if p not in out.ptbxl_database:
                    out.ptbxl_database.append(p)
                continue
            if name.startswith(".") or p.suffix.lower() in _COMPANIONS:
                continue
            if p.suffix.lower() == ".mat" and p.with_suffix(".hea").is_file():
                continue  # the samples of a CinC record, read through its header
            try:
                found = _file_ref(p, root)
            except DataError as e:
                out.refs.append(RecordRef(p, "unknown", p.stem, None, root, error=e.cause))
                continue
            if found is None:
                out.ignored.append(p)
            else:
                out.refs.extend(found if isinstance(found, list) else [found])
    return out


def find_records(path: str | Path, ptbxl_rate: int = 500) -> list[RecordRef]:
    """The records under a file or folder (see :func:`scan_input` for the label tables found too)."""
    return scan_input(path, ptbxl_rate).refs


def load_record(record: RecordRef | str | Path, options: ImportOptions | None = None, **opts: Any
                ) -> RawRecord:
    """Read one record into a :class:`RawRecord` (signal in mV, original rate and leads, labels).

    ``record`` is a reference from :func:`find_records` or the path of a single-record file;
    ``opts`` override fields of ``options`` (e.g. ``load_record("x.npy", fs=500)``).
    """
    options = options or ImportOptions()
    if opts:
        options = replace(options, **opts)
    if not isinstance(record, RecordRef):
        refs = scan_input(record, options.ptbxl_rate).refs
        if len(refs) != 1:
            raise DataError(record, f"holds {len(refs)} records; use find_records() and pass one reference")
        record = refs[0]
    if record.error is not None:
        raise DataError(record.path, record.error, record=record.name)
    reader = READERS.get(record.format)
    if reader is None:
        raise DataError(record.path, f"unknown format {record.format!r}", record=record.name)
    raw = reader(record, options)
    raw.meta.setdefault("path", str(record.path))
    raw.labels = options.tables.mask_not_annotated(raw.name, raw.labels)
    return raw

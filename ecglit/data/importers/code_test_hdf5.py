"""HDF5 files of tracings already in the CODE layout: the CODE test set (``ecg_tracings.hdf5``:
``tracings`` (827, 4096, 12), no exam ids, rows aligned with the annotation CSVs) and CODE-15%-layout
shards (``tracings`` + ``exam_id``; the sentinel rows with exam_id 0 are skipped).

Values are CODE units (1e-4 V, 10 per mV) at 400 Hz, so re-converting them changes nothing. Labels for
the CODE test set come from an optional row-aligned CSV (``code_test_labels``, e.g. gold_standard.csv).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ecglit.constants import CLASSES, LEADS, SAMPLE_RATE, UNITS_PER_MV
from ecglit.data.code_test import read_code_test_labels
from ecglit.data.hdf5_exams import (
    TRACINGS,
    ExamFile,
    duplicate_ids,
    inspect_exam_file,
    open_h5,
    read_rows,
    require_values,
)
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef, unannotated
from ecglit.errors import DataError


@lru_cache(maxsize=8)
def _inspect(path: Path, mtime_ns: int) -> ExamFile:
    return inspect_exam_file(path)


def _info(path: Path) -> ExamFile:
    return _inspect(path, path.stat().st_mtime_ns if path.exists() else 0)


def hdf5_refs(path: Path, root: Path | None = None) -> list[RecordRef]:
    """One reference per exam row (sentinel rows with exam_id 0 left out); repeated exam_ids are refused."""
    info = _info(path)
    repeated, where = duplicate_ids([info])
    if len(repeated):
        raise DataError(path, f"{len(repeated)} exam_id(s) occur more than once; {where}")
    if info.exam_ids is None:
        return [RecordRef(path, "code_test", f"{path.stem}_{i}", int(i), root) for i in info.exam_rows]
    return [RecordRef(path, "code_test", str(int(info.exam_ids[i])), int(i), root) for i in info.exam_rows]


@lru_cache(maxsize=4)
def _labels(path: str, mtime_ns: int, n_rows: int, tracings_name: str) -> np.ndarray:
    return read_code_test_labels(path, n_rows, tracings_name)


def read_code_test(ref: RecordRef, options: ImportOptions) -> RawRecord:
    if ref.index is None:
        raise DataError(ref.path, "an HDF5 record needs its row index", record=ref.name)
    info = _info(ref.path)
    override = options.gain_for(ref)
    require_values(info, override)  # integer ADC counts need a gain
    with open_h5(ref.path) as f:
        x = read_rows(f[TRACINGS], ref.path, ref.index, ref.index + 1)[0].astype(np.float64)
    labels = unannotated()
    label_source = "none"
    if options.code_test_labels is not None:
        p = options.code_test_labels
        table = _labels(str(p), p.stat().st_mtime_ns if p.exists() else 0, info.n_rows, ref.path.name)
        row = table[ref.index]
        labels = {c: (None if np.isnan(v) else int(v)) for c, v in zip(CLASSES, row, strict=True)}
        label_source = "code_test_labels"
    gain = override or UNITS_PER_MV
    meta = {"source_file": ref.relative_path, "gain_used": gain, "label_source": label_source,
            "gain_overridden": override is not None, "header_gain": UNITS_PER_MV, "notes": [],
            "row": ref.index}
    return RawRecord(ref.name, x / gain, float(SAMPLE_RATE), list(LEADS), labels, meta)

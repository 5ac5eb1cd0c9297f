"""HDF5 files of tracings already in the CODE layout: the CODE test set (``ecg_tracings.hdf5``:
``tracings`` (827, 4096, 12), no exam ids, rows aligned with the annotation CSVs) and CODE-15%-layout
shards (``tracings`` + ``exam_id``; the sentinel rows with exam_id 0 are skipped).

Values are CODE units (1e-4 V, 10 per mV) at 400 Hz, so re-converting them changes nothing. Labels for
the CODE test set come from an optional row-aligned CSV (``code_test_labels``, e.g. gold_standard.csv).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import h5py
import numpy as np

from ecglit.constants import CLASSES, LEADS, SAMPLE_RATE, UNITS_PER_MV
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef, unannotated
from ecglit.data.labels import parse_labels, read_table
from ecglit.data.scan import check_tracings_shape
from ecglit.errors import DataError


def _open(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(path, f"cannot open as HDF5 ({e})") from None


def hdf5_refs(path: Path, root: Path | None = None) -> list[RecordRef]:
    """One reference per exam row (sentinel rows with exam_id 0 left out)."""
    with _open(path) as f:
        if "tracings" not in f:
            raise DataError(path, f"no 'tracings' dataset (found {sorted(f.keys())})")
        ids = f["exam_id"][()] if "exam_id" in f else None
        check_tracings_shape(path, f["tracings"].shape, None if ids is None else len(ids))
        n = f["tracings"].shape[0]
    if ids is None:
        return [RecordRef(path, "code_test", f"{path.stem}_{i}", i, root) for i in range(n)]
    return [RecordRef(path, "code_test", str(int(e)), i, root) for i, e in enumerate(ids) if int(e) != 0]


@lru_cache(maxsize=4)
def _labels(path: str, mtime_ns: int) -> np.ndarray:
    df = read_table(path, CLASSES, "CODE-test label CSV")
    return parse_labels(df, path)


def read_code_test(ref: RecordRef, options: ImportOptions) -> RawRecord:
    if ref.index is None:
        raise DataError(ref.path, "an HDF5 record needs its row index", record=ref.name)
    with _open(ref.path) as f:
        x = np.asarray(f["tracings"][ref.index], dtype=np.float64)
        n_rows = f["tracings"].shape[0]
    labels = unannotated()
    label_source = "none"
    if options.code_test_labels is not None:
        p = options.code_test_labels
        table = _labels(str(p), p.stat().st_mtime_ns if p.exists() else 0)
        if len(table) != n_rows:
            raise DataError(p, f"{len(table)} label rows for {n_rows} tracings in {ref.path.name}; the "
                               "CODE-test CSVs are row-aligned with the HDF5")
        row = table[ref.index]
        labels = {c: (None if np.isnan(v) else int(v)) for c, v in zip(CLASSES, row, strict=True)}
        label_source = "code_test_labels"
    override = options.gain_for(ref)
    gain = override or UNITS_PER_MV
    meta = {"source_file": ref.relative_path, "gain_used": gain, "label_source": label_source,
            "gain_overridden": override is not None, "header_gain": UNITS_PER_MV, "notes": [],
            "row": ref.index}
    return RawRecord(ref.name, x / gain, float(SAMPLE_RATE), list(LEADS), labels, meta)

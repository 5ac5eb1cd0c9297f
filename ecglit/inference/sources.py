"""Stream exams to predict on, in batches, from shards, an HDF5 file or a folder of records.

- a folder of CODE-15%-layout shards (``exams_part*.hdf5``): ids from each shard's ``exam_id``, the
  sentinel rows (exam_id 0) left out; rows are read a batch at a time;
- an HDF5 file with ``tracings`` (the CODE test set, or a single shard): ids from ``exam_id`` when
  present, else the row numbers 0..N-1 (as ecglit.data.code_test numbers them);
- anything else goes through the importers (ecglit.data.importers): every record is read and
  standardised in memory; ids are record names (``name#k`` for the k-th window of a long record).
Only one batch of tracings is in memory at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ecglit.data.code_test import resolve_code_test_paths
from ecglit.data.importers import ImportOptions, LabelTables, load_record, scan_input, standardize
from ecglit.data.scan import check_tracings_shape, find_shards
from ecglit.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ExamBatch:
    ids: list[Any]
    x: np.ndarray  # (B, 4096, 12) float32, 1e-4 V
    extra: list[dict[str, Any]] | None = None  # per-exam extra output columns


@dataclass
class PredictionSource:
    """What to predict on: ``batches()`` yields ExamBatch; ``skipped`` fills while records stream."""

    kind: str
    id_column: str
    total: int | None
    batches: Callable[[], Iterator[ExamBatch]]
    extra_columns: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def _hdf5_rows(path: Path, batch_size: int, ids: np.ndarray | None) -> Iterator[ExamBatch]:
    with h5py.File(path, "r") as f:
        x = f["tracings"]
        n = x.shape[0]
        row_ids = np.arange(n) if ids is None else ids
        for start in range(0, n, batch_size):
            stop = min(start + batch_size, n)
            keep = np.ones(stop - start, bool) if ids is None else row_ids[start:stop] != 0  # sentinel rows
            if not keep.any():
                continue
            ids_here = [int(i) for i in row_ids[start:stop][keep]]
            yield ExamBatch(ids_here, np.asarray(x[start:stop], np.float32)[keep])


def _open_hdf5(path: Path) -> tuple[int, np.ndarray | None]:
    try:
        with h5py.File(path, "r") as f:
            if "tracings" not in f:
                raise DataError(path, f"no 'tracings' dataset (found {sorted(f.keys())})")
            ids = f["exam_id"][()].astype(np.int64) if "exam_id" in f else None
            check_tracings_shape(path, f["tracings"].shape, None if ids is None else len(ids))
            n = f["tracings"].shape[0]
    except OSError as e:
        raise DataError(path, f"cannot open as HDF5 ({e})") from None
    return (n if ids is None else int((ids != 0).sum())), ids


def shard_source(root: Path, batch_size: int) -> PredictionSource:
    shards = find_shards(root)
    opened = [(p, *_open_hdf5(p)) for p in shards]
    for p, _, ids in opened:
        if ids is None:
            raise DataError(p, "shard has no 'exam_id' dataset")

    def batches() -> Iterator[ExamBatch]:
        for p, _, ids in opened:
            yield from _hdf5_rows(p, batch_size, ids)

    return PredictionSource("shards", "exam_id", sum(n for _, n, _ in opened), batches)


def hdf5_source(path: Path, batch_size: int) -> PredictionSource:
    n, ids = _open_hdf5(path)
    return PredictionSource("hdf5", "exam_id", n, lambda: _hdf5_rows(path, batch_size, ids))


def record_source(path: Path, batch_size: int, options: ImportOptions, long_records: str = "crop",
                  strict: bool = False) -> PredictionSource:
    found = scan_input(path, options.ptbxl_rate)
    if found.cpsc_reference or found.ptbxl_database:
        options = replace(options, tables=options.tables.merged_with(
            LabelTables.load(found.cpsc_reference, found.ptbxl_database)))
    if not found.refs:
        raise DataError(path, "no records found (expected shards, an HDF5 file or ECG records)")
    source = PredictionSource("records", "record", None, lambda: iter(()), ["source_file", "flags"])

    def batches() -> Iterator[ExamBatch]:
        ids: list[str] = []
        xs: list[np.ndarray] = []
        extra: list[dict[str, Any]] = []
        for ref in found.refs:
            try:
                std = standardize(load_record(ref, options), long_records, path=ref.path)
            except DataError as e:
                if strict:
                    raise
                source.skipped.append((ref.relative_path, str(e)))
                log.warning("skipped %s", e)
                continue
            info = {"source_file": ref.relative_path, "flags": ";".join(std.plausibility.flags)}
            for k, exam in enumerate(std.exams):
                ids.append(ref.name if len(std.exams) == 1 else f"{ref.name}#{k}")
                xs.append(exam)
                extra.append(info)
                if len(ids) == batch_size:
                    yield ExamBatch(ids, np.stack(xs), extra)
                    ids, xs, extra = [], [], []
        if ids:
            yield ExamBatch(ids, np.stack(xs), extra)

    source.batches = batches
    source.total = len(found.refs) if long_records == "crop" else None  # one exam per record when cropping
    return source


def open_source(path: str | Path, batch_size: int = 64, options: ImportOptions | None = None,
                long_records: str = "crop", strict: bool = False) -> PredictionSource:
    """Pick the reader for ``path`` (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DataError(path, "input does not exist")
    if path.is_dir() and any(path.glob("exams_part*.hdf5")):
        return shard_source(path, batch_size)
    if path.is_file() and path.suffix.lower() in (".hdf5", ".h5", ".hd5"):
        return hdf5_source(path, batch_size)
    if path.is_dir() and (path / "ecg_tracings.hdf5").is_file():
        return hdf5_source(resolve_code_test_paths(path)[0], batch_size)
    return record_source(path, batch_size, options or ImportOptions(), long_records, strict)


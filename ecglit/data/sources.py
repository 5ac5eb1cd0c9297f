"""Stream exams in batches from shards, an HDF5 file or a folder of records (prediction, test sets).

- a folder of CODE-15%-layout shards (``exams_part*.hdf5``): ids from each shard's ``exam_id``, the
  sentinel rows (exam_id 0) left out; labels from ``exams.csv`` beside them when it exists (empty cells
  stay NaN: not annotated); rows are read a batch at a time;
- an HDF5 file with ``tracings`` (the CODE test set, or a single shard): ids from ``exam_id`` when
  present, else the row numbers 0..N-1 (as ecglit.data.code_test numbers them); labels from a CODE-test
  ``gold_standard.csv`` found beside it;
- anything else goes through the importers (ecglit.data.importers): every record is read and
  standardised in memory; ids are record names (``name#k`` for the k-th window of a long record), labels
  come from the records' own headers or label tables.
Only one batch of tracings is in memory at a time. Exams that cannot be scored (NaN/inf or all-zero
tracings, unreadable records) are left out and listed in ``skipped``; duplicate exam ids are an error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES
from ecglit.data.code_test import read_code_test_labels, resolve_code_test_paths
from ecglit.data.hdf5_exams import HDF5_SUFFIXES, ExamFile, duplicate_ids, inspect_exam_file, iter_blocks, row_flags
from ecglit.data.importers import ImportOptions, LabelTables, RecordRef, load_record, scan_input, standardize
from ecglit.data.importers.databases import database_of
from ecglit.data.labels import read_labels_by_id
from ecglit.data.scan import find_shards
from ecglit.data.shards import EXAMS_CSV
from ecglit.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class ExamBatch:
    ids: list[Any]
    x: np.ndarray  # (B, 4096, 12) float32, 1e-4 V
    labels: np.ndarray | None = None  # (B, 6) float32 in CLASSES order, NaN = not annotated
    extra: list[dict[str, Any]] | None = None  # per-exam extra output columns


@dataclass
class PredictionSource:
    """What to predict on: ``batches()`` yields ExamBatch; ``skipped`` fills while exams stream."""

    kind: str
    id_column: str
    total: int | None
    batches: Callable[[], Iterator[ExamBatch]]
    extra_columns: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    has_labels: bool = False
    path: str | None = None  # the input it reads (for messages)


def _unlabelled(n: int) -> np.ndarray:
    return np.full((n, len(CLASSES)), np.nan, np.float32)


def _hdf5_batches(info: ExamFile, batch_size: int, labels: np.ndarray | None,
                  skipped: list[tuple[str, str]]) -> Iterator[ExamBatch]:
    """Batches of the exam rows of one file; ``labels`` are per row (n_rows, 6) or None."""
    ids = info.ids
    exam = np.zeros(info.n_rows, bool)
    exam[info.exam_rows] = True
    for start, block in iter_blocks(info, batch_size):
        rows = np.arange(start, start + len(block))
        all_zero, non_finite = row_flags(block)
        bad = exam[rows] & (all_zero | non_finite)
        for r, z in zip(rows[bad], all_zero[bad]):
            why = "all-zero tracing" if z else "tracing holds NaN or inf values"
            skipped.append((f"{info.path.name} row {int(r)} (exam_id {int(ids[r])})", why))
        keep = exam[rows] & ~bad
        if keep.any():
            yield ExamBatch([int(i) for i in ids[rows[keep]]], block[keep],
                            None if labels is None else labels[rows[keep]])


def _row_labels(info: ExamFile, table_ids: np.ndarray, table_labels: np.ndarray) -> np.ndarray:
    """Labels per row of ``info`` joined on exam_id (NaN for exams the table does not list)."""
    pos = pd.Index(table_ids).get_indexer(info.ids)
    out = _unlabelled(info.n_rows)
    out[pos >= 0] = table_labels[pos[pos >= 0]]
    return out


def shard_source(root: Path, batch_size: int) -> PredictionSource:
    files = [inspect_exam_file(p, require_ids=True) for p in find_shards(root)]
    dup, where = duplicate_ids(files)
    if len(dup):
        raise DataError(root, f"{len(dup)} exam_id(s) occur more than once in the shards; {where}")
    labels_csv = root / EXAMS_CSV
    per_file: list[np.ndarray | None] = [None] * len(files)
    if labels_csv.is_file():
        _, table_ids, table_labels = read_labels_by_id(labels_csv, "label table (exams.csv)", optional=())
        per_file = [_row_labels(fi, table_ids, table_labels) for fi in files]
    source = PredictionSource("shards", "exam_id", sum(len(fi.exam_rows) for fi in files), lambda: iter(()),
                              has_labels=labels_csv.is_file())

    def batches() -> Iterator[ExamBatch]:
        for fi, labels in zip(files, per_file):
            yield from _hdf5_batches(fi, batch_size, labels, source.skipped)

    source.batches = batches
    return source


def hdf5_source(path: Path, batch_size: int, labels_csv: Path | None = None) -> PredictionSource:
    info = inspect_exam_file(path)
    dup, where = duplicate_ids([info])
    if len(dup):
        raise DataError(path, f"{len(dup)} exam_id(s) occur more than once; {where}")
    labels = None if labels_csv is None else read_code_test_labels(labels_csv, info.n_rows, path.name)
    source = PredictionSource("hdf5", "exam_id", len(info.exam_rows), lambda: iter(()),
                              has_labels=labels is not None)
    source.batches = lambda: _hdf5_batches(info, batch_size, labels, source.skipped)
    return source


def _record_labels(labels: dict[str, int | None]) -> np.ndarray:
    return np.array([np.nan if labels.get(c) is None else float(labels[c]) for c in CLASSES], np.float32)


def record_ids(refs: list[RecordRef], root: Path) -> list[str]:
    """One id per record: its name, or, when two records share a name, every record's path relative to the
    input (without extension; ``path/name`` for the rows of a multi-record file). Ids are unique."""
    names = [r.name for r in refs]
    if len(set(names)) == len(names):
        return names
    per_file = Counter(r.path for r in refs)
    ids = [r.relative_path.rsplit(".", 1)[0] + (f"/{r.name}" if per_file[r.path] > 1 else "") for r in refs]
    repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
    if repeated:
        raise DataError(root, f"{len(repeated)} record id(s) occur more than once even with their paths "
                              f"(e.g. {repeated[0]!r}); rename the records")
    return ids


def record_source(path: Path, batch_size: int, options: ImportOptions, long_records: str = "crop",
                  strict: bool = False) -> PredictionSource:
    found = scan_input(path, options.ptbxl_rate)
    if found.cpsc_reference or found.ptbxl_database:
        options = replace(options, tables=options.tables.merged_with(
            LabelTables.load(found.cpsc_reference, found.ptbxl_database)))
    if not found.refs:
        raise DataError(path, "no records found (expected shards, an HDF5 file or ECG records)")
    names = record_ids(found.refs, path)
    source = PredictionSource("records", "record", None, lambda: iter(()), ["source_file", "source", "flags"],
                              has_labels=True)

    def batches() -> Iterator[ExamBatch]:
        ids: list[str] = []
        xs: list[np.ndarray] = []
        ys: list[np.ndarray] = []
        extra: list[dict[str, Any]] = []
        for ref, name in zip(found.refs, names):
            try:
                std = standardize(load_record(ref, options), long_records, path=ref.path)
            except DataError as e:
                if strict:
                    raise
                source.skipped.append((ref.relative_path, e.cause if e.path else str(e)))
                log.warning("skipped %s", e)
                continue
            rel = ref.relative_path
            # per source: the public database when the record's name says it, else its first folder
            folder = rel.split("/", 1)[0] if "/" in rel else ""
            info = {"source_file": rel, "source": database_of(std.raw.name) or folder,
                    "flags": ";".join(std.plausibility.flags)}
            y = _record_labels(std.raw.labels)
            for k, exam in enumerate(std.exams):
                ids.append(name if len(std.exams) == 1 else f"{name}#{k}")
                xs.append(exam)
                ys.append(y)
                extra.append(info)
                if len(ids) == batch_size:
                    yield ExamBatch(ids, np.stack(xs), np.stack(ys), extra)
                    ids, xs, ys, extra = [], [], [], []
        if ids:
            yield ExamBatch(ids, np.stack(xs), np.stack(ys), extra)

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
        source = shard_source(path, batch_size)
    elif path.is_file() and path.suffix.lower() in HDF5_SUFFIXES:
        source = hdf5_source(path, batch_size, resolve_code_test_paths(path)[1])
    elif path.is_dir() and (path / "ecg_tracings.hdf5").is_file():
        tracings, labels = resolve_code_test_paths(path)
        source = hdf5_source(tracings, batch_size, labels)
    else:
        source = record_source(path, batch_size, options or ImportOptions(), long_records, strict)
    source.path = str(path)
    return source

"""Writing datasets in the CODE-15% layout: ``exams_part{k}.hdf5`` shards plus ``exams.csv``.

Every producer of ecglit data (the synthetic generator, the importers of real records) writes
through :class:`ShardWriter`, so the DataModule reads all of them with one code path.

Layout (as the released CODE-15%):
- ``exams_part{k}.hdf5`` with ``tracings`` (N, 4096, 12) float32 and ``exam_id`` (N,) int64, in the
  same row order; optionally a trailing sentinel row (exam_id 0, all-zero tracing) like the release.
- ``exams.csv`` with the CODE-15% columns (``ecglit.constants.CODE15_COLUMNS``) followed by any
  extra columns the producer adds (provenance, ...).
- optional side tables (e.g. ``metadata.csv``) keyed by exam_id, written with :meth:`add_table_rows`.

Shards are streamed to a temporary name (memory stays at one ``add`` call) and renamed when complete,
and the CSVs are rewritten after every shard, so an interrupted run leaves only complete shards with
their labels.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ecglit.constants import CODE15_COLUMNS, LEADS, N_SAMPLES
from ecglit.errors import ConfigError, DataError
from ecglit.utils.io import atomic_open, check_creatable, ensure_dir, refuse_existing

SHARD_PATTERN = "exams_part{k}.hdf5"
EXAMS_CSV = "exams.csv"


def shard_name(k: int) -> str:
    return SHARD_PATTERN.format(k=k)


def _csv_value(value: Any) -> Any:
    """CSV cell for a value: None/NaN become empty cells ('not known' stays distinct from False)."""
    if value is None:
        return ""
    if isinstance(value, float | np.floating) and np.isnan(value):
        return ""
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_csv(path: str | Path, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows atomically (temporary file then rename), replacing ``path``; missing keys become empty
    cells. Callers check beforehand that ``path`` is theirs to replace (see ShardWriter)."""
    with atomic_open(path, "w", overwrite=True, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in columns])


def check_output_dir(out_dir: str | Path, overwrite: bool = False, outputs: Sequence[str] = ()) -> list[Path]:
    """Refuse (:class:`~ecglit.errors.OutputExistsError`) a folder that holds shards, ``exams.csv`` or any of
    ``outputs``, unless ``overwrite``; returns the shards found there."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(out_dir, "exists and is not a folder (the output must be a folder)")
    check_creatable(out_dir)
    existing = sorted(out_dir.glob("exams_part*.hdf5"))
    refuse_existing([*existing, *(out_dir / name for name in (EXAMS_CSV, *outputs))], overwrite)
    return existing


class ShardWriter:
    """Accumulate exams and write CODE-15%-layout shards.

    Args:
        out_dir: output directory (created).
        shard_size: exams per shard (the release uses about 20,000).
        sentinel: end each shard with the release's sentinel row (exam_id 0, zero tracing).
        extra_columns: columns written after the CODE-15% ones in ``exams.csv``.
        overwrite: allow writing into a directory that already holds shards, ``exams.csv`` or any of
            ``outputs`` (the shards found there are deleted); else such a directory is refused
            (:class:`~ecglit.errors.OutputExistsError`) before anything is written.
        outputs: other files the producer writes into ``out_dir`` (reports, side tables), checked likewise.
    """

    def __init__(
        self,
        out_dir: str | Path,
        shard_size: int = 20_000,
        sentinel: bool = True,
        extra_columns: Sequence[str] = (),
        overwrite: bool = False,
        compression: str | None = None,
        outputs: Sequence[str] = (),
    ) -> None:
        if isinstance(shard_size, bool) or not isinstance(shard_size, int | np.integer) or shard_size <= 0:
            raise ConfigError(f"shard_size must be a positive integer, got {shard_size!r}")
        self.out_dir = Path(out_dir)
        existing = check_output_dir(self.out_dir, overwrite, outputs)
        ensure_dir(self.out_dir)
        for p in existing:
            p.unlink()
        self.shard_size = shard_size
        self.sentinel = sentinel
        self.compression = compression
        self.columns = list(CODE15_COLUMNS) + [c for c in extra_columns if c not in CODE15_COLUMNS]
        self._rows: list[dict[str, Any]] = []
        self._tables: dict[str, tuple[list[str], list[Mapping[str, Any]]]] = {}
        self._file: h5py.File | None = None
        self._tmp_path: Path | None = None
        self._shard_rows: list[dict[str, Any]] = []
        self._in_shard = 0
        self._next_shard = 0
        self._seen_ids: set[int] = set()
        self.n_written = 0

    def add(self, tracings: np.ndarray, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add exams: ``tracings`` (n, 4096, 12) and one exams.csv row (with ``exam_id``) per exam.

        Rows go straight into the open shard file, so memory stays at the size of one call.
        """
        x = np.asarray(tracings)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != (N_SAMPLES, len(LEADS)):
            raise DataError(None, f"tracings must have shape (n, {N_SAMPLES}, {len(LEADS)}), got {x.shape}")
        if len(rows) != len(x):
            raise DataError(None, f"{len(x)} tracings but {len(rows)} rows")
        ids = []
        for row in rows:
            exam_id = int(row["exam_id"])
            if exam_id <= 0:
                raise DataError(None, f"exam_id must be a positive integer (0 is the sentinel), got {exam_id}")
            if exam_id in self._seen_ids:
                raise DataError(None, f"duplicate exam_id {exam_id}")
            self._seen_ids.add(exam_id)
            ids.append(exam_id)
        x = x.astype(np.float32, copy=False)
        done = 0
        while done < len(x):
            if self._file is None:
                self._open_shard()
            take = min(len(x) - done, self.shard_size - self._in_shard)
            self._append(x[done:done + take], ids[done:done + take], rows[done:done + take])
            done += take
            if self._in_shard == self.shard_size:
                self._finish_shard()

    def add_table_rows(self, name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows to a side table ``<name>.csv`` (e.g. the synthetic metadata), keyed by exam_id."""
        cols, stored = self._tables.setdefault(name, (list(columns), []))
        if list(columns) != cols:
            raise ConfigError(f"table {name!r} was started with columns {cols}, got {list(columns)}")
        stored.extend(rows)

    def _open_shard(self) -> None:
        path = self.out_dir / shard_name(self._next_shard)
        self._tmp_path = path.with_name(path.name + ".tmp")
        self._file = h5py.File(self._tmp_path, "w")
        chunk = (min(64, self.shard_size + 1), N_SAMPLES, len(LEADS))
        self._file.create_dataset("tracings", shape=(0, N_SAMPLES, len(LEADS)), maxshape=(None, N_SAMPLES, len(LEADS)),
                                  dtype="f4", chunks=chunk, compression=self.compression)
        self._file.create_dataset("exam_id", shape=(0,), maxshape=(None,), dtype="i8", chunks=(4096,))
        self._in_shard = 0

    def _append(self, x: np.ndarray, ids: Sequence[int], rows: Sequence[Mapping[str, Any]]) -> None:
        assert self._file is not None
        tr, ei = self._file["tracings"], self._file["exam_id"]
        n0 = tr.shape[0]
        tr.resize(n0 + len(x), axis=0)
        tr[n0:] = x
        ei.resize(n0 + len(ids), axis=0)
        ei[n0:] = np.asarray(ids, dtype=np.int64)
        self._shard_rows.extend(dict(r) for r in rows)
        self._in_shard += len(x)

    def _finish_shard(self) -> None:
        """Add the sentinel, close, rename into place, then record the rows in the CSVs."""
        assert self._file is not None
        if self.sentinel:
            self._append(np.zeros((1, N_SAMPLES, len(LEADS)), np.float32), [0], [])
        self._file.close()
        self._file = None
        name = shard_name(self._next_shard)
        os.replace(self._tmp_path, self.out_dir / name)
        self._next_shard += 1
        for r in self._shard_rows:
            r["trace_file"] = name
        self._rows.extend(self._shard_rows)
        self.n_written += len(self._shard_rows)
        self._shard_rows = []
        self._in_shard = 0
        self._write_tables()

    def _write_tables(self) -> None:
        write_csv(self.out_dir / EXAMS_CSV, self.columns, self._rows)
        written = {int(r["exam_id"]) for r in self._rows}
        for name, (cols, rows) in self._tables.items():
            write_csv(self.out_dir / f"{name}.csv", cols, [r for r in rows if int(r["exam_id"]) in written])

    def close(self) -> Path:
        """Write the last (partial) shard and the CSVs; returns the output directory."""
        if self._file is not None and self._in_shard:
            self._finish_shard()
        else:
            self._write_tables()
        return self.out_dir

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On error, keep what is complete: finished shards and their CSV rows are already on disk;
        # the unfinished shard stays a .tmp file that no reader picks up.
        if exc_type is None:
            self.close()
        elif self._file is not None:
            self._file.close()
            self._file = None

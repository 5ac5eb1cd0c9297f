"""Writing datasets in the CODE-15% layout: ``exams_part{k}.hdf5`` shards plus ``exams.csv``.

Every producer of ecglit data (the synthetic generator, the importers of real records) writes
through :class:`ShardWriter`, so the DataModule reads all of them with one code path.

Layout (as the released CODE-15%):
- ``exams_part{k}.hdf5`` with ``tracings`` (N, 4096, 12) float32 and ``exam_id`` (N,) int64, in the
  same row order; optionally a trailing sentinel row (exam_id 0, all-zero tracing) like the release.
- ``exams.csv`` with the CODE-15% columns (``ecglit.constants.CODE15_COLUMNS``) followed by any
  extra columns the producer adds (provenance, ...).
- optional side tables (e.g. ``metadata.csv``) keyed by exam_id, written with :meth:`add_table_rows`.

Shards are written to a temporary name and renamed when complete, and the CSVs are rewritten after
every shard, so an interrupted run leaves only complete shards with their labels.
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
    """Write rows atomically (temporary file then rename); missing keys become empty cells."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_value(row.get(c)) for c in columns])
    os.replace(tmp, path)


class ShardWriter:
    """Accumulate exams and write CODE-15%-layout shards.

    Args:
        out_dir: output directory (created).
        shard_size: exams per shard (the release uses about 20,000).
        sentinel: end each shard with the release's sentinel row (exam_id 0, zero tracing).
        extra_columns: columns written after the CODE-15% ones in ``exams.csv``.
        overwrite: allow writing into a directory that already holds shards.
    """

    def __init__(
        self,
        out_dir: str | Path,
        shard_size: int = 20_000,
        sentinel: bool = True,
        extra_columns: Sequence[str] = (),
        overwrite: bool = False,
        compression: str | None = None,
    ) -> None:
        if shard_size <= 0:
            raise ConfigError(f"shard_size must be positive, got {shard_size}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        existing = sorted(self.out_dir.glob("exams_part*.hdf5"))
        if existing and not overwrite:
            raise DataError(self.out_dir, f"already holds {len(existing)} shard(s); pass overwrite=True "
                            "or choose an empty directory")
        for p in existing:
            p.unlink()
        self.shard_size = shard_size
        self.sentinel = sentinel
        self.compression = compression
        self.columns = list(CODE15_COLUMNS) + [c for c in extra_columns if c not in CODE15_COLUMNS]
        self._rows: list[dict[str, Any]] = []
        self._tables: dict[str, tuple[list[str], list[Mapping[str, Any]]]] = {}
        self._buf_x: list[np.ndarray] = []
        self._buf_rows: list[dict[str, Any]] = []
        self._buffered = 0
        self._next_shard = 0
        self._seen_ids: set[int] = set()
        self.n_written = 0

    def add(self, tracings: np.ndarray, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add exams: ``tracings`` (n, 4096, 12) and one exams.csv row (with ``exam_id``) per exam."""
        x = np.asarray(tracings)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != (N_SAMPLES, len(LEADS)):
            raise DataError(None, f"tracings must have shape (n, {N_SAMPLES}, {len(LEADS)}), got {x.shape}")
        if len(rows) != len(x):
            raise DataError(None, f"{len(x)} tracings but {len(rows)} rows")
        for row in rows:
            exam_id = int(row["exam_id"])
            if exam_id <= 0:
                raise DataError(None, f"exam_id must be a positive integer (0 is the sentinel), got {exam_id}")
            if exam_id in self._seen_ids:
                raise DataError(None, f"duplicate exam_id {exam_id}")
            self._seen_ids.add(exam_id)
        self._buf_x.append(x.astype(np.float32, copy=False))
        self._buf_rows.extend(dict(r) for r in rows)
        self._buffered += len(x)
        while self._buffered >= self.shard_size:
            self._flush(self.shard_size)

    def add_table_rows(self, name: str, columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> None:
        """Add rows to a side table ``<name>.csv`` (e.g. the synthetic metadata), keyed by exam_id."""
        cols, stored = self._tables.setdefault(name, (list(columns), []))
        if list(columns) != cols:
            raise ConfigError(f"table {name!r} was started with columns {cols}, got {list(columns)}")
        stored.extend(rows)

    def _flush(self, n: int) -> None:
        x = np.concatenate(self._buf_x) if len(self._buf_x) > 1 else self._buf_x[0]
        take, rest = x[:n], x[n:]
        rows, self._buf_rows = self._buf_rows[:n], self._buf_rows[n:]
        self._buf_x = [rest] if len(rest) else []
        self._buffered = len(rest)
        name = shard_name(self._next_shard)
        self._next_shard += 1
        ids = np.array([int(r["exam_id"]) for r in rows], dtype=np.int64)
        if self.sentinel:
            take = np.concatenate([take, np.zeros((1, *take.shape[1:]), np.float32)])
            ids = np.concatenate([ids, np.zeros(1, np.int64)])
        path = self.out_dir / name
        tmp = path.with_name(path.name + ".tmp")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("tracings", data=take, dtype="f4", compression=self.compression,
                             chunks=(1, N_SAMPLES, len(LEADS)) if self.compression else None)
            f.create_dataset("exam_id", data=ids, dtype="i8")
        os.replace(tmp, path)
        for r in rows:
            r["trace_file"] = name
        self._rows.extend(rows)
        self.n_written += len(rows)
        self._write_tables()

    def _write_tables(self) -> None:
        write_csv(self.out_dir / EXAMS_CSV, self.columns, self._rows)
        written = {int(r["exam_id"]) for r in self._rows}
        for name, (cols, rows) in self._tables.items():
            write_csv(self.out_dir / f"{name}.csv", cols, [r for r in rows if int(r["exam_id"]) in written])

    def close(self) -> Path:
        """Write the last (partial) shard and the CSVs; returns the output directory."""
        if self._buffered:
            self._flush(self._buffered)
        else:
            self._write_tables()
        return self.out_dir

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # On error, keep what is complete: finished shards and their CSV rows are already on disk.
        if exc_type is None:
            self.close()

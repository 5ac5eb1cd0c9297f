"""Scan CODE-15%-layout shards once: exam_ids and which rows are all-zero or hold NaN/inf.

The scan reads every shard in chunks of rows (never a whole shard at once) and its result is cached
in ``.ecglit-index.npz`` next to the shards, keyed by the shards' names, sizes and mtimes; when the
data directory is read-only the cache goes to ``$ECGLIT_CACHE_DIR`` (default ``~/.cache/ecglit``).
Any change to a shard invalidates the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ecglit.data.hdf5_exams import READ_CHUNK_ROWS, inspect_exam_file, iter_blocks, row_flags
from ecglit.errors import DataError

log = logging.getLogger(__name__)

SHARD_GLOB = "exams_part*.hdf5"
INDEX_CACHE = ".ecglit-index.npz"
# Bump when the scan's output changes, so old caches are ignored.
SCAN_VERSION = 1
SCAN_CHUNK_ROWS = READ_CHUNK_ROWS


def find_shards(root: str | Path) -> list[Path]:
    """``exams_part*.hdf5`` in ``root``, in natural order of the part number (part2 before part10)."""
    root = Path(root)
    if not root.exists():
        raise DataError(root, "data directory does not exist")
    if not root.is_dir():
        raise DataError(root, "expected a directory holding exams_part*.hdf5 shards and exams.csv")
    shards = [p for p in root.glob(SHARD_GLOB) if p.is_file()]
    if not shards:
        raise DataError(root, "no exams_part*.hdf5 shards found (expected the CODE-15% layout)")

    def part_number(p: Path) -> tuple[int, str]:
        m = re.search(r"(\d+)", p.stem.removeprefix("exams_part"))
        return (int(m.group(1)) if m else -1, p.name)

    return sorted(shards, key=part_number)


@dataclass
class ShardScan:
    """Per-row facts of all shards, concatenated in shard order (``shard``/``row`` locate each row)."""

    shards: list[Path]
    shard: np.ndarray  # (R,) int32 index into ``shards``
    row: np.ndarray  # (R,) int64 row within the shard
    exam_id: np.ndarray  # (R,) int64
    all_zero: np.ndarray  # (R,) bool
    non_finite: np.ndarray  # (R,) bool: NaN or inf somewhere in the tracing


def _scan_one(path: Path, chunk_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    info = inspect_exam_file(path, require_ids=True)
    all_zero = np.zeros(info.n_rows, bool)
    non_finite = np.zeros(info.n_rows, bool)
    for start, block in iter_blocks(info, chunk_rows):
        all_zero[start:start + len(block)], non_finite[start:start + len(block)] = row_flags(block)
    return info.ids, all_zero, non_finite


def _cache_key(shards: list[Path]) -> str:
    parts = [SCAN_VERSION] + [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in shards]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _cache_paths(root: Path, cache_dir: str | Path | None) -> list[Path]:
    base = Path(cache_dir) if cache_dir else Path(os.environ.get("ECGLIT_CACHE_DIR",
                                                                 Path.home() / ".cache" / "ecglit"))
    root_hash = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    return [root / INDEX_CACHE, base / "index" / f"{root_hash}.npz"]


def _load_cache(paths: list[Path], key: str, shards: list[Path]) -> ShardScan | None:
    for path in paths:
        try:
            with np.load(path) as z:
                if str(z["key"]) != key:
                    continue
                return ShardScan(shards, z["shard"], z["row"], z["exam_id"], z["all_zero"], z["non_finite"])
        except (OSError, KeyError, ValueError):
            continue
    return None


def _save_cache(paths: list[Path], key: str, scan: ShardScan) -> None:
    for path in paths:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Write under a temporary name and rename: a concurrent reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                np.savez(f, key=key, shard=scan.shard, row=scan.row, exam_id=scan.exam_id,
                         all_zero=scan.all_zero, non_finite=scan.non_finite)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the index is as readable as the data
            os.replace(tmp, path)
            return
        except OSError as e:
            log.debug("cannot write index cache %s (%s); trying the next location", path, e)
    log.warning("could not write the shard index cache anywhere (%s); the next run scans again", paths)


def scan_shards(root: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True,
                chunk_rows: int = SCAN_CHUNK_ROWS) -> ShardScan:
    """Scan all shards in ``root`` (or load the cached scan when the shards did not change)."""
    root = Path(root)
    shards = find_shards(root)
    key = _cache_key(shards)
    cache_paths = _cache_paths(root, cache_dir)
    if use_cache and (cached := _load_cache(cache_paths, key, shards)) is not None:
        log.debug("loaded shard index of %s from cache", root)
        return cached
    log.info("scanning %d shard(s) in %s for exam_ids and empty tracings (cached afterwards)", len(shards), root)
    ids, zeros, bad, shard_of, rows = [], [], [], [], []
    for k, path in enumerate(shards):
        exam_id, all_zero, non_finite = _scan_one(path, chunk_rows)
        log.info("scanned %s: %d rows (%d/%d shards)", path.name, len(exam_id), k + 1, len(shards))
        ids.append(exam_id)
        zeros.append(all_zero)
        bad.append(non_finite)
        shard_of.append(np.full(len(exam_id), k, np.int32))
        rows.append(np.arange(len(exam_id), dtype=np.int64))
    scan = ShardScan(shards, np.concatenate(shard_of), np.concatenate(rows), np.concatenate(ids),
                     np.concatenate(zeros), np.concatenate(bad))
    if use_cache:
        _save_cache(cache_paths, key, scan)
    return scan

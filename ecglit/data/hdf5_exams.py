"""The one reader of HDF5 exam files: CODE-15%-layout shards and the CODE test set.

Every part of ecglit that reads ``tracings`` from HDF5 (the training index, the CODE-test dataset, the
importers, prediction) goes through this module, so one set of rules holds everywhere:

- ``tracings`` is (N, 4096, 12) (a transposed (N, 12, 4096) file is named as such), floating point in
  1e-4 V. Integer tracings are ADC counts and are refused unless a gain (units per mV) is given.
- ``exam_id``, when present, is a 1-D integer dataset row-aligned with ``tracings``; rows with exam_id 0
  are the release's sentinel rows and are never exams. Without ``exam_id`` (the CODE test set) exams are
  numbered by row, 0..N-1.
- Exams whose tracing holds NaN/inf or is all zero are flagged (:func:`row_flags`); callers decide.
- Every failure is a DataError naming the file (and row) and the cause.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ecglit.constants import LEADS, N_SAMPLES, UNITS_PER_MV
from ecglit.errors import DataError

TRACINGS, EXAM_ID = "tracings", "exam_id"
SENTINEL_ID = 0
HDF5_SUFFIXES = (".hdf5", ".h5", ".hd5")
READ_CHUNK_ROWS = 256  # 256 exams = 50 MB of float32 per read


@dataclass(frozen=True)
class ExamFile:
    """What one HDF5 exam file holds (validated): its rows, ids and storage type."""

    path: Path
    n_rows: int
    exam_ids: np.ndarray | None  # (n_rows,) int64, None when the file has no exam_id (CODE test set)
    integer: bool  # tracings stored as integers (ADC counts: need a gain)

    @property
    def ids(self) -> np.ndarray:
        """Exam ids per row: ``exam_id``, or the row numbers when the file has none."""
        return np.arange(self.n_rows, dtype=np.int64) if self.exam_ids is None else self.exam_ids

    @property
    def exam_rows(self) -> np.ndarray:
        """Rows that are exams (sentinel rows left out)."""
        return np.arange(self.n_rows) if self.exam_ids is None else np.flatnonzero(self.exam_ids != SENTINEL_ID)


def open_h5(path: str | Path) -> h5py.File:
    """``h5py.File(path, "r")``; an unreadable or non-HDF5 file is a DataError naming it."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(path, f"cannot open as HDF5 ({str(e).splitlines()[0] if str(e) else 'corrupt file'})"
                        ) from None


def check_tracings_shape(path: str | Path, shape: tuple[int, ...], n_ids: int | None) -> None:
    """Raise a DataError unless ``shape`` is (N, 4096, 12) (and N matches ``n_ids`` when given)."""
    expected = (N_SAMPLES, len(LEADS))
    if len(shape) != 3 or tuple(shape[1:]) != expected:
        hint = ""
        if len(shape) == 3 and tuple(shape[1:]) == expected[::-1]:
            hint = " (it looks transposed: samples and leads are swapped; store (N, 4096, 12))"
        raise DataError(path, f"'{TRACINGS}' has shape {tuple(shape)}, expected (N, {N_SAMPLES}, "
                              f"{len(LEADS)}){hint}")
    if n_ids is not None and shape[0] != n_ids:
        raise DataError(path, f"'{TRACINGS}' has {shape[0]} rows but '{EXAM_ID}' has {n_ids}; they must be "
                              "row-aligned")


def _inspect(f: h5py.File, path: Path, require_ids: bool) -> ExamFile:
    if TRACINGS not in f or not isinstance(f[TRACINGS], h5py.Dataset):
        raise DataError(path, f"no '{TRACINGS}' dataset (found: {sorted(f.keys())}); an exam file holds "
                              f"'{TRACINGS}' (N, {N_SAMPLES}, {len(LEADS)})" +
                              (f" and '{EXAM_ID}' (N,)" if require_ids else ""))
    x = f[TRACINGS]
    ids = None
    if EXAM_ID in f:
        ids_ds = f[EXAM_ID]
        if not isinstance(ids_ds, h5py.Dataset) or ids_ds.ndim != 1:
            raise DataError(path, f"'{EXAM_ID}' has shape {getattr(ids_ds, 'shape', None)}, expected (N,)")
        if not np.issubdtype(ids_ds.dtype, np.integer):
            raise DataError(path, f"'{EXAM_ID}' has dtype {ids_ds.dtype}, expected integers")
        ids = ids_ds[()].astype(np.int64)
    elif require_ids:
        raise DataError(path, f"no '{EXAM_ID}' dataset (found: {sorted(f.keys())}); a CODE-15% shard holds "
                              f"'{TRACINGS}' (N, {N_SAMPLES}, {len(LEADS)}) and '{EXAM_ID}' (N,)")
    check_tracings_shape(path, x.shape, None if ids is None else len(ids))
    kind = x.dtype.kind
    if kind not in "fiu":
        raise DataError(path, f"'{TRACINGS}' has dtype {x.dtype}, expected floating point (1e-4 V)")
    return ExamFile(path, int(x.shape[0]), ids, kind in "iu")


def inspect_exam_file(path: str | Path, require_ids: bool = False) -> ExamFile:
    """Open ``path``, validate its layout (see the module docstring) and describe it."""
    path = Path(path)
    with open_h5(path) as f:
        try:
            return _inspect(f, path, require_ids)
        except (OSError, KeyError, RuntimeError) as e:  # corrupt metadata inside a valid HDF5 container
            raise DataError(path, f"cannot read the file's datasets ({e})") from None


def require_values(info: ExamFile, gain: float | None = None) -> None:
    """Refuse integer tracings (ADC counts) unless their gain (units per mV) is known."""
    if info.integer and gain is None:
        raise DataError(info.path, "'tracings' holds integers (ADC counts?), not values in 1e-4 V; give "
                                   "the gain in units per mV (e.g. gain_override) to convert them")


def to_units(block: np.ndarray, info: ExamFile, gain: float | None) -> np.ndarray:
    """Stored values -> float32 tracings in 1e-4 V. Integer ADC counts need ``gain`` (units per mV)."""
    require_values(info, gain)
    if info.integer:
        return (block.astype(np.float64) * (UNITS_PER_MV / gain)).astype(np.float32)
    return np.asarray(block, np.float32)


def row_flags(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(all_zero, non_finite) per row of a (n, 4096, 12) block."""
    # A row sum is NaN/inf exactly when the row holds NaN or inf (float64 avoids overflow).
    non_finite = ~np.isfinite(block.sum(axis=(1, 2), dtype=np.float64))
    all_zero = ~block.any(axis=(1, 2))
    return all_zero, non_finite


def read_rows(dataset: h5py.Dataset, path: Path, start: int, stop: int) -> np.ndarray:
    """``tracings[start:stop]``; a read error (truncated file, bad chunk) names the file and rows."""
    try:
        return dataset[start:stop]
    except (OSError, RuntimeError, ValueError) as e:
        raise DataError(path, f"cannot read rows {start}-{stop - 1} ({str(e).splitlines()[0] if str(e) else e})",
                        record=f"row {start}") from None


def iter_blocks(info: ExamFile, chunk_rows: int = READ_CHUNK_ROWS, gain: float | None = None
                ) -> Iterator[tuple[int, np.ndarray]]:
    """``(first_row, tracings)`` blocks of up to ``chunk_rows`` rows, in 1e-4 V, sentinel rows included."""
    with open_h5(info.path) as f:
        x = f[TRACINGS]
        for start in range(0, info.n_rows, chunk_rows):
            stop = min(start + chunk_rows, info.n_rows)
            yield start, to_units(read_rows(x, info.path, start, stop), info, gain)


def read_exam(info: ExamFile, row: int, gain: float | None = None) -> np.ndarray:
    """One exam (4096, 12) float32 in 1e-4 V."""
    if not 0 <= row < info.n_rows:
        raise DataError(info.path, f"row {row} out of range (the file has {info.n_rows} rows)")
    with open_h5(info.path) as f:
        return to_units(read_rows(f[TRACINGS], info.path, row, row + 1)[0], info, gain)


def duplicate_ids(files: list[ExamFile]) -> tuple[np.ndarray, str]:
    """Exam ids that occur more than once across ``files`` (sentinels excluded), and where the first one is."""
    ids = np.concatenate([fi.ids[fi.exam_rows] for fi in files]) if files else np.zeros(0, np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    dup = uniq[counts > 1]
    if len(dup) == 0:
        return dup, ""
    where = [f"{fi.path.name} row {int(r)}" for fi in files for r in fi.exam_rows[fi.ids[fi.exam_rows] == dup[0]]]
    return dup, f"exam_id {int(dup[0])} is at {' and '.join(where[:3])}"

"""A torch Dataset over rows of HDF5 files holding ``tracings`` (N, 4096, 12), read lazily per worker.

- Files are opened on first use in each process (DataLoader worker, spawn child, DDP rank) and the
  handles are dropped when the dataset is pickled (``__getstate__``), so ``num_workers > 0`` works with
  fork, spawn and ``ddp_spawn`` (h5py handles cannot be pickled; shared handles across fork corrupt reads).
- ``__getitems__`` (used by torch's DataLoader for a whole batch) reads a batch with one h5py slice per
  run of consecutive rows, sorted by file and row, and returns it already stacked; use
  :func:`collate_stacked` as the loader's collate_fn to skip the per-item re-stacking.
- Items follow the ecglit contract: ``x`` float32 (12, 4096) = stored tracing transposed times
  ``input_scale``; ``y`` float32 (6,) in CLASSES order.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from ecglit.constants import CLASSES, LEADS, N_SAMPLES
from ecglit.data.hdf5_exams import TRACINGS, open_h5
from ecglit.errors import DataError


class H5RowsDataset(Dataset):
    """Exams stored as rows of HDF5 files.

    Args:
        files: HDF5 paths; ``file_index`` points into this list.
        file_index: (N,) which file holds each exam.
        row: (N,) row of each exam within its file.
        labels: (N, 6) float32 labels in CLASSES order.
        exam_ids: (N,) ids reported with predictions (``dataset.exam_ids`` is in item order).
        input_scale: factor applied to every tracing value.
    """

    def __init__(self, files: Sequence[str | os.PathLike], file_index: np.ndarray, row: np.ndarray,
                 labels: np.ndarray, exam_ids: np.ndarray, input_scale: float = 1.0) -> None:
        self.files = [str(f) for f in files]
        self.file_index = np.asarray(file_index, np.int32)
        self.row = np.asarray(row, np.int64)
        self.labels = np.asarray(labels, np.float32).reshape(-1, len(CLASSES))
        self.exam_ids = np.asarray(exam_ids, np.int64)
        n = len(self.row)
        if not (len(self.file_index) == len(self.labels) == len(self.exam_ids) == n):
            raise ValueError("file_index, row, labels and exam_ids must have the same length")
        self.input_scale = float(input_scale)
        self._handles: dict[int, tuple[h5py.File, h5py.Dataset]] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return len(self.row)

    def subset(self, indices: np.ndarray | Sequence[int]) -> H5RowsDataset:
        """A dataset of the items ``indices`` (in that order), sharing no open handles."""
        idx = np.asarray(indices, np.int64)
        return type(self)._from_parts(self, idx)

    @classmethod
    def _from_parts(cls, other: H5RowsDataset, idx: np.ndarray) -> H5RowsDataset:
        new = cls.__new__(cls)
        H5RowsDataset.__init__(new, other.files, other.file_index[idx], other.row[idx], other.labels[idx],
                               other.exam_ids[idx], other.input_scale)
        return new

    # -- lazy HDF5 handles ------------------------------------------------------------------------
    def _tracings(self, k: int) -> h5py.Dataset:
        if self._pid != os.getpid():  # forked after opening: never share a handle across processes
            self._handles, self._pid = {}, os.getpid()
        handle = self._handles.get(k)
        if handle is None:
            f = open_h5(self.files[k])
            handle = self._handles[k] = (f, f[TRACINGS])
        return handle[1]

    def close(self) -> None:
        for f, _ in self._handles.values():
            with contextlib.suppress(Exception):  # already closed, or the interpreter is shutting down
                f.close()
        self._handles = {}

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handles"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def __del__(self) -> None:
        if getattr(self, "_pid", None) == os.getpid():
            self.close()

    # -- reading ----------------------------------------------------------------------------------
    def read_tracings(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Stored tracings (n, 4096, 12) float32 of items ``indices``, in that order (duplicates allowed)."""
        idx = np.asarray(indices, np.int64)
        out = np.empty((len(idx), N_SAMPLES, len(LEADS)), np.float32)
        files, rows = self.file_index[idx], self.row[idx]
        order = np.lexsort((rows, files))  # read in file/row order; ``out`` keeps the requested order
        i = 0
        while i < len(order):
            k, start = files[order[i]], rows[order[i]]
            j = i + 1  # extend the run while the next sorted row is the next stored row of the same file
            while j < len(order) and files[order[j]] == k and rows[order[j]] == start + (j - i):
                j += 1
            tracings = self._tracings(int(k))
            try:
                block = tracings[start:start + (j - i)]
            except OSError as err:  # a damaged file
                raise DataError(self.files[k], f"cannot read rows {start}..{start + j - i - 1} ({err})") from None
            out[order[i:j]] = block
            i = j
        return out

    def _to_item_arrays(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x.transpose(0, 2, 1))
        if self.input_scale != 1.0:
            x *= np.float32(self.input_scale)
        return x

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._to_item_arrays(self.read_tracings([index]))[0]
        return torch.from_numpy(x), torch.from_numpy(self.labels[index].copy())

    def __getitems__(self, indices: Sequence[int]) -> StackedBatch:
        x = torch.from_numpy(self._to_item_arrays(self.read_tracings(indices)))
        y = torch.from_numpy(self.labels[np.asarray(indices, np.int64)])
        return StackedBatch(x, y)


class StackedBatch(list):
    """The ``(x, y)`` items of a batch (so any collate_fn works) that also carry them already stacked,
    which :func:`collate_stacked` returns without copying (default_collate's stack is ~half the CPU
    cost of a batch)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__(zip(x, y))
        self.x, self.y = x, y


def collate_stacked(batch: list) -> Any:
    """DataLoader collate_fn: ``[x, y]`` straight from a :class:`StackedBatch`, else default_collate."""
    if isinstance(batch, StackedBatch):
        return [batch.x, batch.y]
    return default_collate(batch)

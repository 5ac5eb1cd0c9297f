"""Random draws made while loading a batch depend on the batch alone, not on worker, process or history.

:class:`BatchSeededDataset` wraps a dataset for a DataLoader: every fetch (a whole batch through
``__getitems__``, or one item) runs with torch's, NumPy's and Python's global generators seeded from
``(seed, the ordered indices fetched)``, and the generators are put back afterwards. A random transform
in ``__getitem__``/``__getitems__`` may therefore simply call ``torch.rand``, ``np.random.*`` or
``random.*``: its draws are the same with 0 or 2 workers, with persistent workers or not, and after a
resume, where a worker's own generators would otherwise have drawn a different history (persistent
workers keep theirs across epochs; a resumed run starts them afresh). Draws differ from epoch to epoch
because the training sampler orders each epoch differently; an unshuffled loader draws the same every
epoch. The main process's generators (dropout, anything in the LightningModule) are left as they were.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset


def batch_seed(seed: int, indices: Sequence[int]) -> int:
    """A 63-bit seed from ``seed`` and the ordered ``indices`` of a fetch."""
    data = np.asarray([seed, *indices], dtype=np.int64).tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") >> 1


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[None]:
    """Run the body with torch (CPU), NumPy and Python ``random`` seeded from ``seed``; restore them after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        try:
            yield
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)


class BatchSeededDataset(Dataset):
    """``dataset`` whose every fetch runs under :func:`seeded_global_rng` (``seed``, the indices fetched).

    Other attributes (``exam_ids``, ...) are those of ``dataset``.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        with seeded_global_rng(batch_seed(self.seed, [index])):
            return self.dataset[index]

    def __getitems__(self, indices: Sequence[int]) -> Any:
        with seeded_global_rng(batch_seed(self.seed, indices)):
            getitems = getattr(self.dataset, "__getitems__", None)
            return getitems(indices) if getitems else [self.dataset[i] for i in indices]

    def __getattr__(self, name: str) -> Any:
        if name == "dataset":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.dataset, name)

"""Which exams each loader draws: per-rank samplers under DDP, and the seeded training subset.

Under DDP every exam is seen once per epoch, on exactly one rank:

- train: a shuffling :class:`~torch.utils.data.DistributedSampler` with ``drop_last=True``. Ranks get
  disjoint, equally long shares of one seeded permutation (DDP needs the same number of training steps
  on every rank); the at most ``world_size - 1`` exams left over change from epoch to epoch. Lightning's
  own injected sampler instead pads with repeated exams.
- val/test/predict: Lightning's :class:`UnrepeatedDistributedSampler` (rank ``r`` reads items
  ``r, r + world_size, ...``): no padding, so the gathered epoch is exactly the split and the metrics
  equal single-process ones. Ranks may differ by one batch; that is safe because DDP syncs buffers only
  on the first forward after training, which every rank runs (each needs at least one exam).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, DistributedSampler, Subset

from ecglit.errors import ConfigError


def distributed_sampler(dataset: Dataset, world_size: int, rank: int, train: bool,
                        seed: int | None = None) -> DistributedSampler | None:
    """The sampler of ``rank`` out of ``world_size`` for a train or an evaluation split; None if not distributed.

    ``seed`` seeds the training permutation (the same on every rank); by default the global seed of
    ``lightning.seed_everything`` (``PL_GLOBAL_SEED``), as Lightning's own sampler does.
    """
    if world_size <= 1:
        return None
    n = len(dataset)  # type: ignore[arg-type]
    if n < world_size:
        raise ConfigError(f"a split of {n} exam(s) cannot give each of {world_size} DDP processes at least one "
                          "exam: use fewer devices or a larger split")
    if train:
        seed = int(os.environ.get("PL_GLOBAL_SEED", "0")) if seed is None else int(seed)
        return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed,
                                  drop_last=True)
    return UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)


def trainer_sampler(dataset: Dataset, trainer: Any, train: bool) -> DistributedSampler | None:
    """:func:`distributed_sampler` for the process ``trainer`` runs in (None without a trainer or DDP)."""
    world_size = int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1
    if world_size <= 1:
        return None
    return distributed_sampler(dataset, world_size, int(trainer.global_rank), train)


class _ExamSubset(Subset):
    """A torch Subset that keeps reporting the exam_ids of its items."""

    def __init__(self, dataset: Dataset, indices: np.ndarray) -> None:
        super().__init__(dataset, indices.tolist())
        base_ids = getattr(dataset, "exam_ids", None)
        if base_ids is not None:
            self.exam_ids = np.asarray(base_ids)[indices]


def train_subset(dataset: Dataset, fraction: float, seed: int) -> Dataset:
    """A seeded ``fraction`` of ``dataset`` (at least one exam), in the dataset's own order.

    The exams are the first ``round(fraction * n)`` of one seeded permutation, so with the same seed a
    smaller fraction is contained in a larger one (the points of a learning curve are nested).
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"train_fraction must be in (0, 1], got {fraction}")
    n = len(dataset)  # type: ignore[arg-type]
    if fraction == 1.0 or n == 0:
        return dataset
    k = max(1, round(fraction * n))
    keep = np.sort(np.random.default_rng(seed).permutation(n)[:k])
    if hasattr(dataset, "subset"):  # H5RowsDataset: keeps its batched reads
        return dataset.subset(keep)
    return _ExamSubset(dataset, keep)

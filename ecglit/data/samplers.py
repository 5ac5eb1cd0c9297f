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

The training order never comes from the global random generator: :class:`EpochSampler` draws epoch
``e``'s permutation from ``seed + e`` alone (single process or DDP), and can start part-way through an
epoch, so a run resumed from a checkpoint (:func:`train_position`, saved by ``ECGDataModule.state_dict``)
draws exactly the batches the uninterrupted run would have drawn next.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, DistributedSampler, Subset

from ecglit.errors import ConfigError


def global_seed() -> int:
    """The seed of ``lightning.seed_everything`` (``PL_GLOBAL_SEED``; 0 when it was not called)."""
    return int(os.environ.get("PL_GLOBAL_SEED", "0"))


class EpochSampler(DistributedSampler):
    """Shuffled training order of one rank: epoch ``e`` is a permutation drawn from ``seed + e`` alone.

    A :class:`~torch.utils.data.DistributedSampler` (Lightning keeps it as it is under DDP and calls
    ``set_epoch`` before every epoch); with ``num_replicas=1`` it is the single-process sampler.
    ``start_epoch`` and ``skip`` place it where a resumed run continues: its first iteration draws epoch
    ``start_epoch`` without its first ``skip`` items (the batches already trained on). Lightning builds the
    first iterator before its first ``set_epoch``, hence the epoch is given here and not left to it.
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 drop_last: bool = False, start_epoch: int = 0, skip: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
                         drop_last=drop_last)
        self.start_at(start_epoch, skip)

    def start_at(self, epoch: int, skip: int = 0) -> None:
        """Make the next iteration draw epoch ``epoch`` without its first ``skip`` items."""
        if skip < 0 or epoch < 0:
            raise ConfigError(f"a sampler's start epoch and skip must be >= 0, got {epoch} and {skip}")
        self.epoch, self._skip = int(epoch), int(skip)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:  # a new epoch starts from its first item
            self._skip = 0
        super().set_epoch(epoch)

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        skip, self._skip = self._skip, 0  # only the first pass over the resumed epoch is shortened
        return iter(indices[skip:])


def train_position(trainer: Any) -> tuple[int, int] | None:
    """``(epoch, batches of it trained on)`` where a run resumed from a checkpoint written now continues;
    None when ``trainer`` is not fitting.

    In the epoch-end hooks (where ModelCheckpoint writes end-of-epoch checkpoints) the epoch's batches are
    all done: the run continues with the next epoch's first batch. Otherwise (a checkpoint written after a
    training batch or during a mid-epoch validation) it continues with the next batch of this epoch.
    """
    fit_loop = getattr(trainer, "fit_loop", None)
    if fit_loop is None or getattr(trainer.state, "fn", None) != "fit":
        return None
    epochs = fit_loop.epoch_progress.current
    if epochs.processed > epochs.completed:
        return int(epochs.processed), 0
    return int(epochs.processed), int(fit_loop.epoch_loop.batch_progress.current.ready)


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
        return EpochSampler(dataset, num_replicas=world_size, rank=rank,
                            seed=global_seed() if seed is None else int(seed), drop_last=True)
    return UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)


def trainer_sampler(dataset: Dataset, trainer: Any, train: bool) -> DistributedSampler | None:
    """:func:`distributed_sampler` for the process ``trainer`` runs in (None without a trainer or DDP)."""
    world_size = int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1
    if world_size <= 1:
        return None
    return distributed_sampler(dataset, world_size, int(trainer.global_rank), train)


def train_sampler(dataset: Dataset, trainer: Any, start: tuple[int, int] | None = None,
                  batch_size: int = 1) -> EpochSampler:
    """The training sampler of this process (DDP or not), starting at ``start``: (epoch, batches done)."""
    sampler = trainer_sampler(dataset, trainer, train=True) or EpochSampler(dataset, seed=global_seed())
    assert isinstance(sampler, EpochSampler)
    if start is not None:
        sampler.start_at(start[0], start[1] * batch_size)
    return sampler


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

"""ECGDataModule: CODE-15%-layout shards split into train/val/test, plus an optional external test set.

Under DDP (../shared/design/lightning-hydra.md pitfall 11) the loaders bring their own samplers from
:mod:`ecglit.data.samplers`, so every exam is seen once per epoch on exactly one rank:
- train: a shuffling DistributedSampler with drop_last (disjoint equal shares; no repeated exams).
- val/test/predict: an unpadded sampler, so the gathered val/test epoch is exactly the split and the
  metrics (and thresholds chosen on validation) equal single-process ones.
``exam_ids(split)`` is in single-process loader order.

Resumable (``ecglit.callbacks.resume``): the training order comes from an :class:`EpochSampler` (epoch
``e`` from ``seed + e``, never from the global generator); ``state_dict`` records where training stands
(epoch, batches done) so a resumed run's loader continues with the very next batch; every loader has its
own generator, so creating an iterator draws nothing from the global one; and every fetch runs with
generators seeded by the batch (:mod:`ecglit.data.batch_rng`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ecglit.constants import UNITS_PER_MV
from ecglit.data.augment import AugmentConfig, BatchAugmenter
from ecglit.data.batch_rng import BatchSeededDataset
from ecglit.data.code15 import Code15Index, build_code15_index
from ecglit.data.code_test import CodeTestDataset
from ecglit.data.definitions import label_definitions as label_definitions_of
from ecglit.data.h5dataset import collate_stacked
from ecglit.data.samplers import global_seed, train_position, train_sampler, train_subset, trainer_sampler
from ecglit.data.scan import scan_shards
from ecglit.data.splits import SplitMethod, check_fractions, make_split, split_holdout, split_kfold
from ecglit.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


class ECGDataModule(pl.LightningDataModule):
    """Train/val/test loaders over CODE-15%-layout data (``exams_part*.hdf5`` + ``exams.csv``).

    Args:
        root: directory of the shards and exams.csv. May be None when only testing on ``test_root``.
        batch_size: exams per batch (the paper: 64).
        num_workers: DataLoader worker processes (0 reads in the main process).
        val_fraction, test_fraction: share of exams in val/test (whole patients). ``test_fraction`` is
            ignored when ``test_root`` gives an external test set.
        split: "patient" (seeded, by patient_id), "last_rows" (the paper: the last ``val_fraction``
            of rows validate, the ``test_fraction`` rows before them test), "random" (by exam), "kfold"
            (fold ``fold`` of ``folds`` tests: whole patients, stratified by class; cross-validation) or
            "holdout" (the exams whose exams.csv ``holdout_column`` equals ``holdout_value``, or lies
            under it as a path, test: e.g. leave one source out with ``source_file``).
        seed: seed of the patient split.
        input_scale: factor applied to every tracing value (CODE-15% may be stored at 2x mV).
        pin_memory, persistent_workers (default: ``num_workers > 0``), multiprocessing_context
            ("fork", "spawn", "forkserver" or None for the platform default), prefetch_factor: DataLoader
            options.
        test_root: external test set: a CODE-15%-layout directory or CODE-test data (see test_format).
        test_format: "code15" or "code_test" (``ecg_tracings.hdf5`` + ``gold_standard.csv``).
        test_labels: CODE-test label CSV (default: found next to the tracings).
        missing_labels, non_finite: "error" or "drop" policies of :func:`build_code15_index`.
        cache_dir: where the shard-scan cache goes if the data directory is read-only.
        predict_split: which split ``predict_dataloader`` serves.
        drop_last: drop the last incomplete training batch.
        train_fraction: train on a seeded subset of this share of the training split (``seed``; val and
            test unchanged; smaller fractions are nested in larger ones), e.g. for learning curves.
        label_definitions: what the labels mean (``ecglit.data.definitions``): "code" (CODE-15%, SB < 50
            bpm), "physionet" (SB < 60 bpm) or a mapping; recorded in the trained checkpoint.
        augment: settings of :class:`ecglit.data.augment.AugmentConfig` (None: no augmentation); applied
            to training batches on the device, seeded by (seed, epoch, batch, rank).
    """

    def __init__(
        self,
        root: str | Path | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split: SplitMethod = "patient",
        seed: int = 0,
        input_scale: float = 1.0,
        pin_memory: bool = False,
        persistent_workers: bool | None = None,
        test_root: str | Path | None = None,
        test_format: Literal["code15", "code_test"] = "code15",
        test_labels: str | Path | None = None,
        missing_labels: Literal["error", "drop"] = "error",
        non_finite: Literal["error", "drop"] = "error",
        cache_dir: str | Path | None = None,
        multiprocessing_context: str | None = None,
        prefetch_factor: int | None = None,
        predict_split: Literal["train", "val", "test"] = "test",
        drop_last: bool = False,
        train_fraction: float = 1.0,
        label_definitions: str | dict[str, Any] | None = "code",
        augment: dict[str, Any] | None = None,
        folds: int = 5,
        fold: int = 0,
        holdout_column: str | None = None,
        holdout_value: str | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {num_workers}")
        if test_format not in ("code15", "code_test"):
            raise ConfigError(f"test_format must be 'code15' or 'code_test', got {test_format!r}")
        if predict_split not in SPLITS:
            raise ConfigError(f"predict_split must be one of {SPLITS}, got {predict_split!r}")
        if split not in ("patient", "last_rows", "random", "kfold", "holdout"):
            raise ConfigError(f"split must be 'patient', 'last_rows', 'random', 'kfold' or 'holdout', got {split!r}")
        if split == "holdout" and not (holdout_column and holdout_value is not None):
            raise ConfigError("split=holdout needs holdout_column and holdout_value (e.g. source_file, torch_ecg)")
        check_fractions(val_fraction, 0.0 if test_root is not None else test_fraction)
        if not 0.0 < train_fraction <= 1.0:
            raise ConfigError(f"train_fraction must be in (0, 1], got {train_fraction}")
        self.root = None if root is None else Path(root)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.split, self.seed, self.input_scale = split, seed, input_scale
        self.pin_memory = pin_memory
        self.persistent_workers = num_workers > 0 if persistent_workers is None else persistent_workers
        self.multiprocessing_context, self.prefetch_factor = multiprocessing_context, prefetch_factor
        self.test_root = None if test_root is None else Path(test_root)
        self.test_format, self.test_labels = test_format, test_labels
        self.missing_labels, self.non_finite = missing_labels, non_finite
        self.cache_dir, self.predict_split, self.drop_last = cache_dir, predict_split, drop_last
        self.train_fraction = float(train_fraction)
        self.label_definitions = label_definitions_of(label_definitions)
        self.folds, self.fold = int(folds), int(fold)
        self.holdout_column, self.holdout_value = holdout_column, holdout_value
        self.augmenter = None if augment is None else BatchAugmenter(
            AugmentConfig.from_dict(augment), UNITS_PER_MV * float(input_scale))
        self.index: Code15Index | None = None
        self.datasets: dict[str, Dataset] = {}
        self._train_start: tuple[int, int] | None = None  # (epoch, batches done) of a resumed run

    # -- resume -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Where training stands (saved in checkpoints): the epoch and the batches of it trained on."""
        position = train_position(self.trainer)
        return {} if position is None else {"train_epoch": position[0], "train_batches_done": position[1]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "train_epoch" in state_dict:
            self._train_start = (int(state_dict["train_epoch"]), int(state_dict["train_batches_done"]))

    # -- building ---------------------------------------------------------------------------------
    def _build_index(self) -> Code15Index:
        assert self.root is not None
        extra = (self.holdout_column,) if self.split == "holdout" else ()
        return build_code15_index(self.root, missing_labels=self.missing_labels, non_finite=self.non_finite,
                                  cache_dir=self.cache_dir, extra_columns=extra)

    def prepare_data(self) -> None:
        # Runs once (rank 0): scans the shards and writes the index cache the other ranks then read.
        if self.root is not None:
            scan_shards(self.root, cache_dir=self.cache_dir)

    def _build_train_val_test(self) -> dict[str, Dataset]:
        """Datasets of the internal splits (test only when there is no external test set)."""
        if self.root is None:
            raise ConfigError("data.root is not set: point it at a directory of exams_part*.hdf5 shards "
                              "and exams.csv (e.g. `python train.py data=code15 data.root=DIR`)")
        self.index = index = self._build_index()
        test_fraction = 0.0 if self.test_root is not None else self.test_fraction
        if self.test_root is not None and self.test_fraction > 0:
            log.info("external test set %s given: no internal test split (test_fraction ignored)",
                     self.test_root)
        if self.split == "kfold":
            parts = split_kfold(index.patient_ids, index.labels, self.folds, self.fold, self.val_fraction, self.seed)
        elif self.split == "holdout":
            values = np.asarray(index.columns[self.holdout_column], str)
            wanted = str(self.holdout_value)
            parts = split_holdout(index.patient_ids, (values == wanted) | np.char.startswith(values, wanted + "/"),
                                  self.val_fraction, self.seed)
        else:
            parts = make_split(self.split, index.patient_ids, self.val_fraction, test_fraction, self.seed)
        out: dict[str, Dataset] = {name: index.dataset(idx, self.input_scale)
                                   for name, idx in zip(SPLITS, parts) if name in self._internal_splits()}
        log.info("%s split (seed %d): %s exams", self.split, self.seed,
                 ", ".join(f"{name} {len(ds)}" for name, ds in out.items()))
        return out

    def _internal_splits(self) -> tuple[str, ...]:
        """Splits cut from ``root``: no test split with an external test set or test_fraction 0."""
        if self.split in ("kfold", "holdout"):
            return SPLITS
        return SPLITS if self.test_root is None and self.test_fraction > 0 else SPLITS[:2]

    def _build_external_test(self) -> Dataset:
        assert self.test_root is not None
        if self.test_format == "code_test":
            return CodeTestDataset(self.test_root, self.test_labels, self.input_scale, require_labels=True)
        index = build_code15_index(self.test_root, csv=self.test_labels, missing_labels=self.missing_labels,
                                   non_finite=self.non_finite, cache_dir=self.cache_dir)
        return index.dataset(None, self.input_scale)

    def setup(self, stage: str | None = None) -> None:
        needs_train = stage in (None, "fit", "validate") or (stage == "predict" and self.predict_split != "test")
        needs_test = stage in (None, "test") or (stage == "predict" and self.predict_split == "test")
        if (needs_train or (needs_test and self.test_root is None)) and "train" not in self.datasets:
            self.datasets.update(self._build_train_val_test())
            if self.train_fraction < 1.0:  # learning curves: a seeded part of train, val/test unchanged
                full = len(self.datasets["train"])
                self.datasets["train"] = train_subset(self.datasets["train"], self.train_fraction, self.seed)
                log.info("training on %d of %d training exams (train_fraction %g)",
                         len(self.datasets["train"]), full, self.train_fraction)
        if needs_test and self.test_root is not None and "test" not in self.datasets:
            self.datasets["test"] = self._build_external_test()

    def teardown(self, stage: str | None = None) -> None:
        for ds in self.datasets.values():
            if hasattr(ds, "close"):
                ds.close()

    # -- loaders ----------------------------------------------------------------------------------
    def dataset(self, split: str) -> Dataset:
        """The Dataset of ``split`` ("train", "val" or "test"), after ``setup``."""
        if split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self.datasets:
            if split == "test" and self.test_root is None and self.test_fraction == 0:
                raise ConfigError("no test set: set data.test_fraction > 0 or data.test_root")
            raise RuntimeError(f"the {split} set is not built: call setup() first")
        return self.datasets[split]

    def exam_ids(self, split: str) -> np.ndarray:
        """exam_ids of ``split`` in the order of its non-shuffled loader (val/test/predict)."""
        return np.asarray(self.dataset(split).exam_ids)

    def _loader(self, dataset: Dataset, shuffle: bool) -> DataLoader:
        # Under DDP: a per-rank sampler (ecglit.data.samplers) that Lightning keeps as it is.
        if shuffle:
            sampler = train_sampler(dataset, self.trainer, self._train_start, self.batch_size)
        else:
            sampler = trainer_sampler(dataset, self.trainer, train=False)
        seed = global_seed()
        kwargs: dict[str, Any] = {"batch_size": self.batch_size, "sampler": sampler,
                                  "generator": torch.Generator().manual_seed(seed),  # worker base seeds
                                  "num_workers": self.num_workers, "pin_memory": self.pin_memory,
                                  "drop_last": self.drop_last and shuffle, "collate_fn": collate_stacked}
        if self.num_workers > 0:
            kwargs.update(persistent_workers=self.persistent_workers,
                          multiprocessing_context=self.multiprocessing_context)
            if self.prefetch_factor is not None:
                kwargs["prefetch_factor"] = self.prefetch_factor
        return DataLoader(BatchSeededDataset(dataset, seed), **kwargs)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        trainer = getattr(self, "trainer", None)
        if self.augmenter is None or trainer is None or not trainer.training:
            return batch
        x, y = batch
        step = trainer.fit_loop.epoch_loop.batch_progress.current.ready
        seed = hash((self.seed, trainer.current_epoch, step, trainer.global_rank)) & (2**62 - 1)
        return [self.augmenter(x, seed), y]

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("train"), shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("val"), shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.dataset("test"), shuffle=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.dataset(self.predict_split), shuffle=False)

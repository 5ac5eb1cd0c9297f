"""ExactResume: ``train.py ... ckpt_path=<run>/checkpoints/last.ckpt`` continues as if never interrupted."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ecglit.callbacks.rng_state import capture_rng_state, restore_rng_state

log = logging.getLogger(__name__)


class ExactResume(L.Callback):
    """Makes a run killed at any moment and resumed from its last checkpoint end bit-identical (same
    weights, same test metrics) to a run that was never interrupted, on the same hardware and settings.

    Lightning restores the weights, optimizer, LR schedulers, loop counters and the other callbacks
    (ModelCheckpoint's best score and top-k, EarlyStopping's counters). Three things it leaves out are
    kept here, in the checkpoint as tensors and plain numbers (``torch.load(weights_only=True)`` works):

    - **Random streams**: the global generators of torch (CPU, and CUDA when used), NumPy and Python
      ``random`` of every process (DDP rank), as they were when the checkpoint was written. The resumed
      run sets them back in ``on_train_start``, after everything it did to set itself up (building and
      initialising the model, creating the loaders), so its next draw (e.g. the next dropout mask) is the
      one the uninterrupted run made after writing the checkpoint.
    - **The pending ReduceLROnPlateau step**: Lightning steps plateau schedulers after the epoch-end
      checkpoint is written and skips that step when it resumes ("metrics are not saved"); the monitored
      values are saved here and the step is made before the next epoch, as in the uninterrupted run.
    - **Where it resumed from**: one log line with the file, the epoch and the global step.

    The data order is kept by the datamodule: ``ECGDataModule.state_dict`` saves the position (epoch,
    batches done) and its :class:`~ecglit.data.samplers.EpochSampler` draws epoch ``e`` from ``seed + e``.

    **Mid-epoch checkpoints** (``ModelCheckpoint(every_n_train_steps=N)``) resume exactly as well: the
    resumed run continues with the batch after the last one trained on (Lightning then warns that the
    "dataloader is not resumable": ECGDataModule is, through its ``state_dict``). Only the *logged* epoch
    aggregates of the interrupted epoch (``train/loss_epoch``, training metrics) cover the batches trained
    after the resume; weights, validation, checkpoints and test metrics are exact.

    **A new random source stays resumable** when it draws from one of the streams above: in the
    LightningModule or a callback, use ``torch``/``np.random``/``random`` (global generators, saved
    here) and draw the same way in every run; in a Dataset (``__getitem__``/``__getitems__``, e.g. batch
    augmentation), do the same: :class:`~ecglit.data.batch_rng.BatchSeededDataset` seeds those generators
    from the batch being fetched, whatever the worker. A source that keeps its own generator (a
    ``torch.Generator``, ``np.random.default_rng``) must either be seeded from what it is applied to
    (seed, epoch, batch: the loop counters are restored), as :mod:`ecglit.data.augment` is, or add its
    state to this callback's ``state_dict`` as tensors. Randomness in a ``collate_fn`` or
    ``worker_init_fn`` is not covered.
    """

    def __init__(self) -> None:
        self._trainer: L.Trainer | None = None
        self._loaded: dict[str, Any] | None = None
        self._resumed_at: tuple[int, int] | None = None  # (epoch, global_step) of the checkpoint loaded
        self._plateau_pending_epoch: int | None = None  # an epoch whose plateau step Lightning skipped

    # -- what a checkpoint holds ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        trainer = self._trainer
        if trainer is None:
            return {}
        fit_loop = trainer.fit_loop
        epochs = fit_loop.epoch_progress.current
        at_epoch_end = epochs.processed > epochs.completed  # in the epoch-end hooks, before the plateau step
        epoch_batches = trainer.num_training_batches
        epoch_batches = int(epoch_batches) if math.isfinite(epoch_batches) else -1  # -1: an iterable dataset
        state: dict[str, Any] = {
            "rng": _gather(capture_rng_state(), trainer),
            "epoch": int(trainer.current_epoch),
            "global_step": int(trainer.global_step),
            "batches_done": (epoch_batches if at_epoch_end
                             else int(fit_loop.epoch_loop.batch_progress.current.ready)),
            "epoch_batches": epoch_batches,
            "at_epoch_end": bool(at_epoch_end),
            "plateau_metrics": _plateau_metrics(trainer) if at_epoch_end else {},
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._loaded = dict(state_dict) if state_dict else None

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        self._resumed_at = (int(checkpoint.get("epoch", -1)), int(checkpoint.get("global_step", -1)))

    # -- hooks ------------------------------------------------------------------------------------
    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = trainer

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._trainer = None

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        state, self._loaded = self._loaded, None
        resumed_at, self._resumed_at = self._resumed_at, None
        if state is None:
            if resumed_at is not None:  # a checkpoint written without this callback
                log.warning("Resumed from %s: epoch %d, global step %d; it holds no random state (written "
                            "without ExactResume): the run continues, but not as the uninterrupted run would",
                            Path(str(trainer.ckpt_path)).resolve(), *resumed_at)
            return
        epoch = state["epoch"]
        where = (f"at the end of epoch {epoch}" if state["at_epoch_end"] else
                 f"after {state['batches_done']} of {state['epoch_batches']} batches of epoch {epoch}")
        then = f"epoch {epoch + 1}" if state["at_epoch_end"] else "its next batch"
        log.info("Resumed from %s: written %s (global step %d); continuing with %s",
                 Path(str(trainer.ckpt_path)).resolve(), where, state["global_step"], then)
        if state["at_epoch_end"]:
            _step_plateau_schedulers(trainer, state["epoch"], state["plateau_metrics"])
        ranks = state["rng"]
        if len(ranks) != trainer.world_size:
            log.warning("the checkpoint holds the random state of %d process(es), this run has %d: the "
                        "random streams cannot continue exactly", len(ranks), trainer.world_size)
        restore_rng_state(ranks[trainer.global_rank % len(ranks)])

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # In the first epoch after a mid-epoch resume Lightning is still "restarting" and skips the plateau
        # step at its end (fit_loop.on_advance_end): make it at the next epoch start instead, which is
        # after this epoch's checkpoints (that record it as pending) like the uninterrupted run's step.
        if trainer.fit_loop.restarting:
            self._plateau_pending_epoch = trainer.current_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._plateau_pending_epoch is not None:
            epoch, self._plateau_pending_epoch = self._plateau_pending_epoch, None
            _step_plateau_schedulers(trainer, epoch, _plateau_metrics(trainer))


def _gather(state: dict[str, Any], trainer: L.Trainer) -> list[dict[str, Any]]:
    """The random state of every rank, in rank order (only rank 0's checkpoint is written)."""
    if trainer.world_size <= 1 or not torch.distributed.is_initialized():
        return [state]
    out: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(out, state)
    return out


def _plateau_configs(trainer: L.Trainer) -> list[Any]:
    return [c for c in trainer.lr_scheduler_configs if c.reduce_on_plateau and c.interval == "epoch"]


def _plateau_metrics(trainer: L.Trainer) -> dict[str, torch.Tensor]:
    """The values the epoch-interval plateau schedulers monitor, as Lightning would read them now."""
    metrics = trainer.callback_metrics
    return {c.monitor: metrics[c.monitor].detach().cpu().clone() for c in _plateau_configs(trainer)
            if c.monitor in metrics}


def _step_plateau_schedulers(trainer: L.Trainer, epoch: int, metrics: dict[str, torch.Tensor]) -> None:
    """The plateau step Lightning makes at the end of ``epoch`` (its frequency rule; no value: no step)."""
    for config in _plateau_configs(trainer):
        if (epoch + 1) % config.frequency == 0 and config.monitor in metrics:
            trainer.lightning_module.lr_scheduler_step(config.scheduler, metrics[config.monitor])

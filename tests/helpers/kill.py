"""A Lightning callback that SIGKILLs its own training process at a chosen point (resume tests only).

Configured from the command line of the run to interrupt, e.g.
``+callbacks.kill._target_=helpers.kill.KillAt +callbacks.kill.step=5`` (with ``tests/`` on PYTHONPATH).
SIGKILL gives the process no chance to clean up, like a power cut or the OOM killer.
"""

from __future__ import annotations

import io
import os
import signal
from typing import Any

import lightning as L
import torch


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillAt(L.Callback):
    """Kill the process at the first point reached among those given.

    Args:
        step: after optimizer step ``step`` (global_step), before any checkpoint of that step is written.
        val_epoch, val_batch: after validation batch ``val_batch`` of epoch ``val_epoch``.
        after_epoch: when epoch ``after_epoch + 1`` starts: after everything of epoch ``after_epoch``
            (its checkpoints, early-stopping check and LR scheduler step) and before its first batch.
        write: halfway through writing the ``write``-th checkpoint file (1-based): half of its bytes are
            on disk when the process dies.
    """

    def __init__(self, step: int | None = None, val_epoch: int | None = None, val_batch: int | None = None,
                 after_epoch: int | None = None, write: int | None = None) -> None:
        self.step, self.val_epoch, self.val_batch = step, val_epoch, val_batch
        self.after_epoch, self.write = after_epoch, write
        if write is not None:
            self._patch_torch_save()

    def _patch_torch_save(self) -> None:
        real_save = torch.save
        count = {"n": 0}

        def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
            if not hasattr(f, "write"):  # a path: only file objects are counted (checkpoints use them)
                return real_save(obj, f, *args, **kwargs)
            count["n"] += 1
            if count["n"] != self.write:
                return real_save(obj, f, *args, **kwargs)
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            _die()

        torch.save = save

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        if self.step is not None and trainer.global_step == self.step:
            _die()

    def on_validation_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if (not trainer.sanity_checking and trainer.current_epoch == self.val_epoch
                and batch_idx == self.val_batch):
            _die()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        if self.after_epoch is not None and trainer.current_epoch == self.after_epoch + 1:
            _die()

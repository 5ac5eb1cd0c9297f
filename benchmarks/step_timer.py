"""A Lightning callback the training benchmark adds to train.py: the time at the end of every step."""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path

import lightning as L
import torch


class StepTimer(L.Callback):
    """Writes ``{"stamps": [start, end of step 1, ...], "faults": [...], ...}`` to ``out`` at the end."""

    def __init__(self, out: str) -> None:
        self.out = Path(out)
        self.stamps: list[float] = []
        self.faults: list[int] = []  # minor page faults so far, at the same moments

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.stamps, self.faults = [time.perf_counter()], [resource.getrusage(resource.RUSAGE_SELF).ru_minflt]

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.stamps.append(time.perf_counter())
        self.faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.out.write_text(json.dumps({
                "stamps": self.stamps, "faults": self.faults, "precision": str(trainer.precision), "world_size": trainer.world_size,
                "torch_threads": torch.get_num_threads()}))

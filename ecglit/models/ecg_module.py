"""The LightningModule: wraps a plain network and owns loss, metrics, thresholds and optimisation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
from omegaconf import DictConfig, ListConfig, OmegaConf
from torch import nn
from torchmetrics import CatMetric, MeanMetric

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError
from ecglit.metrics.classification import (
    IGNORE_INDEX,
    classification_metrics,
    flatten_metrics,
    threshold_metric_collection,
)
from ecglit.metrics.thresholds import select_thresholds
from ecglit.models.heads import head_modules, in_head
from ecglit.models.registry import build_network, build_optimizer, build_scheduler, check_buildable


def _plain(cfg: Any) -> Any:
    """Config -> plain Python containers, so hparams stay loadable with torch.load(weights_only=True)."""
    if isinstance(cfg, DictConfig | ListConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    if isinstance(cfg, Mapping):
        return {k: _plain(v) for k, v in cfg.items()}
    if isinstance(cfg, list | tuple):
        return [_plain(v) for v in cfg]
    return cfg


class ECGClassifier(L.LightningModule):
    """Multilabel ECG classifier.

    Args:
        net: config of the network (``_target_`` + kwargs), built here from the allowlist of
            :mod:`ecglit.models.registry`, so checkpoints hold only plain values, rebuild the network on
            load and cannot make ecglit import anything else.
        optimizer: ``torch.optim`` optimizer config, e.g. ``{"_target_": "torch.optim.Adam", "lr": 1e-3}``.
        scheduler: optional ``torch.optim.lr_scheduler`` config; ReduceLROnPlateau is stepped on ``monitor``.
        monitor: metric the scheduler watches.
        class_names: output classes, in order.
        input_scale: the data's amplitude scale at training time (kept so prediction can check it).
        select_thresholds_on_val: choose per-class thresholds maximising F1 at every validation epoch;
            the thresholds travel in the checkpoint (buffer ``thresholds``) and are used at test time.
        label_definitions: the label definitions the model was trained with (``{"name": "code",
            "sb_max_bpm": 50, ...}``, see ``ecglit.data.definitions``); None when unknown.
        threshold_source: where the thresholds come from (validation of a training run, the paper,
            a recalibration); recorded so that a checkpoint says what its labels mean.
        freeze_backbone: fine-tuning: train the network's ``head`` only (the rest keeps its weights and
            BatchNorm statistics).
        backbone_lr_scale: fine-tuning: learning rate of everything but the head, as a fraction of the
            optimizer's (e.g. 0.1: the pretrained features move ten times slower than the new head).
    """

    def __init__(
        self,
        net: Mapping[str, Any],
        optimizer: Mapping[str, Any] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        monitor: str = "val/loss",
        class_names: Sequence[str] = CLASSES,
        input_scale: float = 1.0,
        select_thresholds_on_val: bool = True,
        label_definitions: Mapping[str, Any] | None = None,
        threshold_source: str = "validation",
        freeze_backbone: bool = False,
        backbone_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        net, optimizer, scheduler = _plain(net), _plain(optimizer), _plain(scheduler)
        class_names = list(_plain(class_names))
        check_buildable(net, optimizer, scheduler)
        self.save_hyperparameters(
            {"net": net, "optimizer": optimizer, "scheduler": scheduler, "monitor": monitor,
             "class_names": class_names, "input_scale": float(input_scale),
             "select_thresholds_on_val": select_thresholds_on_val,
             "label_definitions": _plain(label_definitions), "threshold_source": str(threshold_source),
             "freeze_backbone": bool(freeze_backbone), "backbone_lr_scale": float(backbone_lr_scale)}
        )
        if not 0.0 <= float(backbone_lr_scale):
            raise ConfigError(f"backbone_lr_scale must be >= 0, got {backbone_lr_scale}")
        self.net: nn.Module = build_network(net, n_classes=len(class_names))
        if (freeze_backbone or backbone_lr_scale != 1.0) and not head_modules(self.net):
            raise ConfigError(f"freeze_backbone/backbone_lr_scale need a network with a `head` module; "
                              f"{type(self.net).__name__} has none")
        if freeze_backbone:
            heads = head_modules(self.net)
            for name, param in self.net.named_parameters():
                param.requires_grad_(in_head(name, heads))
        self.loss_fn = nn.BCEWithLogitsLoss()
        self.register_buffer("thresholds", torch.full((len(class_names),), 0.5))
        n = len(class_names)
        self.train_metrics = threshold_metric_collection(n).clone(prefix="train/")
        # Probabilities and targets of a whole val/test epoch (synced across DDP ranks on compute).
        # keep NaN (not annotated) cells: the default strategy drops them and flattens the epoch
        self._probs = CatMetric(nan_strategy="disable")
        self._targets = CatMetric(nan_strategy="disable")
        # Epoch loss as one mean over all ranks' exams (sync_dist would average per-rank means, which
        # differs from the single-process value when ranks hold different numbers of exams).
        self._eval_loss = nn.ModuleDict({"val": MeanMetric(), "test": MeanMetric()})
        self.last_report: dict | None = None
        self.last_test_outputs: tuple | None = None

    @property
    def class_names(self) -> list[str]:
        return list(self.hparams.class_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self(x))

    # --- steps ---------------------------------------------------------------------------
    def masked_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """BCE over the annotated cells only (NaN targets: not annotated by the source)."""
        annotated = ~torch.isnan(y)
        if bool(annotated.all()):
            return self.loss_fn(logits, y)
        per_cell = nn.functional.binary_cross_entropy_with_logits(logits, torch.nan_to_num(y), reduction="none")
        return (per_cell * annotated).sum() / annotated.sum().clamp(min=1)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = self.masked_loss(logits, y)
        self.train_metrics.update(logits.detach().sigmoid(), torch.nan_to_num(y, nan=IGNORE_INDEX).long())
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=len(x))
        return loss

    def on_train_epoch_end(self) -> None:
        # compute() already syncs across DDP ranks: all hold the same values, "max" keeps them exactly
        self.log_dict(self.train_metrics.compute(), sync_dist=True, reduce_fx="max")
        self.train_metrics.reset()

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        logits = self(x)
        self._eval_loss[stage].update(self.masked_loss(logits, y), len(x))
        self.log(f"{stage}/loss", self._eval_loss[stage], on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=len(x))
        self._probs.update(logits.sigmoid().float())
        self._targets.update(y.float())

    def validation_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, list | tuple) else batch
        return self.predict_proba(x)

    def _epoch_report(self, stage: str) -> dict | None:
        if self._probs.update_count == 0:
            return None
        probs, targets = self._probs.compute(), self._targets.compute()
        self._probs.reset()
        self._targets.reset()
        if stage == "test":  # kept for the test dashboard (curves, confusion, worst errors)
            self.last_test_outputs = (probs.cpu().numpy(), targets.cpu().numpy())
        if stage == "val" and self.hparams.select_thresholds_on_val and not self.trainer.sanity_checking:
            # a class without positives in this validation epoch keeps the threshold it had
            chosen = select_thresholds(probs.cpu(), targets.cpu(), default=self.thresholds.cpu())
            self.thresholds.copy_(chosen.to(self.thresholds))
        report = classification_metrics(probs.cpu(), targets.cpu(), self.thresholds.cpu(), self.class_names)
        report["thresholds"] = dict(zip(self.class_names, self.thresholds.cpu().tolist(), strict=True))
        report["n_exams"] = int(len(probs))
        # every rank holds the gathered epoch and the same values: "max" over ranks is exact and keeps
        # Lightning from warning about unsynced epoch metrics under DDP
        self.log_dict(flatten_metrics(report, stage), sync_dist=True, reduce_fx="max")
        return report

    def on_validation_epoch_end(self) -> None:
        self.last_report = self._epoch_report("val")

    def on_test_epoch_end(self) -> None:
        self.last_report = self._epoch_report("test")

    # --- optimisation --------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        if self.hparams.get("freeze_backbone"):  # frozen features keep their BatchNorm statistics too
            for module in self.net.children():
                module.eval()
            for head in head_modules(self.net).values():
                head.train()

    def _param_groups(self, lr: float) -> list[dict[str, Any]]:
        heads = head_modules(self.net)
        head = [p for n, p in self.net.named_parameters() if in_head(n, heads) and p.requires_grad]
        body = [p for n, p in self.net.named_parameters() if not in_head(n, heads) and p.requires_grad]
        groups = [{"params": head}]
        if body:
            groups.append({"params": body, "lr": lr * float(self.hparams.get("backbone_lr_scale", 1.0))})
        return groups

    def configure_optimizers(self) -> Any:
        opt_cfg = self.hparams.optimizer or {"_target_": "torch.optim.Adam", "lr": 1e-3}
        if self.hparams.get("freeze_backbone") or self.hparams.get("backbone_lr_scale", 1.0) != 1.0:
            params: Any = self._param_groups(float(opt_cfg.get("lr", 1e-3)))
        else:
            params = self.parameters()
        optimizer = build_optimizer(opt_cfg, params)
        if not self.hparams.scheduler:
            return optimizer
        scheduler = build_scheduler(self.hparams.scheduler, optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.monitor, "interval": "epoch"}}

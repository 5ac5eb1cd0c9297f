"""Fine-tuning: start a training run from a pretrained model's weights (not its optimizer state).

    python train.py experiment=finetune init_from=CKPT_OR_KERAS_HDF5 data=code15 data.root=DIR

``init_from`` is anything :func:`ecglit.models.checkpoint.load_classifier` reads (a checkpoint, the paper's
Keras file, the name of a shipped model). The run takes the network architecture and the input scale from
it (the weights only make sense with both), the label definitions from the data, and the options of
``conf/experiment/finetune.yaml``: freeze the backbone or lower its learning rate
(``module.freeze_backbone``, ``module.backbone_lr_scale``), re-initialise the head (``reset_head``), early
stopping on a small validation split, final thresholds re-chosen on every fitted exam (``thresholds_on=train_val``,
:func:`ecglit.calibrate.calibrate_on_fit_data`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from ecglit.constants import CLASSES
from ecglit.data.definitions import mismatches
from ecglit.errors import ConfigError, DataError
from ecglit.models.checkpoint import load_classifier
from ecglit.models.heads import head_modules

log = logging.getLogger(__name__)


def load_pretrained(cfg: DictConfig) -> Any | None:
    """The model named by ``cfg.init_from`` (None without one); adapts ``cfg.model`` and the data's
    ``input_scale`` to it, saying what changed."""
    source_path = cfg.get("init_from")
    if not source_path:
        return None
    if cfg.get("ckpt_path"):
        raise ConfigError("init_from starts a new run from pretrained weights; ckpt_path resumes a run: give one")
    source = load_classifier(str(source_path), input_scale=cfg.get("init_input_scale"))
    if list(source.class_names) != list(CLASSES):
        raise DataError(source_path, f"predicts the classes {list(source.class_names)}; ecglit's data sets carry "
                                     f"{list(CLASSES)}, so the outputs cannot be matched")
    net = dict(source.hparams.net)
    with open_dict(cfg):
        requested = OmegaConf.to_container(cfg.model, resolve=True)
        if requested != net:
            log.info("init_from: the network is the pretrained one (%s), not model=%s", net.get("_target_"),
                     requested.get("_target_") if isinstance(requested, dict) else requested)
        cfg.model = OmegaConf.create(net)
        scale = float(source.hparams.get("input_scale", 1.0))
        if float(cfg.data.get("input_scale", 1.0)) != scale:
            log.info("init_from: data.input_scale=%s (the pretrained model's), not %s", scale,
                     cfg.data.get("input_scale", 1.0))
        cfg.data.input_scale = scale
    return source


def initialise_from(module: nn.Module, source: nn.Module, reset_head: bool = False) -> None:
    """Copy the pretrained network's weights (and thresholds) into ``module``; optionally re-initialise the head."""
    module.net.load_state_dict(source.net.state_dict())
    module.thresholds.copy_(source.thresholds)
    if reset_head:
        heads = list(head_modules(module.net).values())
        if not heads or not all(isinstance(head, nn.Linear) for head in heads):
            raise ConfigError(f"reset_head needs a network with a linear `head`; {type(module.net).__name__} has none")
        for head in heads:
            nn.init.xavier_uniform_(head.weight)
            nn.init.zeros_(head.bias)
    differences = mismatches(source.hparams.get("label_definitions"), module.hparams.get("label_definitions"))
    for line in differences:
        log.warning("init_from: LABEL DEFINITIONS CHANGE: %s; the fine-tuned model follows the data's", line)
    log.info("initialised from the pretrained weights (%s)%s", source.hparams.get("threshold_source", "?"),
             "; head re-initialised" if reset_head else "")


def check_training_labels(datamodule: Any, allow_missing_positives: bool = False) -> None:
    """Refuse a training split without labels, or (unless allowed) with a class that has no positives:
    fine-tuning would then train that output towards 0 whatever the pretrained model knew."""
    dataset = datamodule.dataset("train")
    labels = getattr(dataset, "labels", None)
    if labels is None:
        return
    labels = np.asarray(labels)
    where = getattr(datamodule, "root", None)
    if np.isnan(labels).all():
        raise DataError(where, "the training split has no labels (every cell is empty)")
    positives = np.nansum(labels, axis=0)
    missing = [c for c, n, annotated in zip(CLASSES, positives, (~np.isnan(labels)).any(axis=0))
               if annotated and n == 0]
    if missing and not allow_missing_positives:
        raise DataError(where, f"class(es) {missing} have no positive exam in the training split, so fine-tuning "
                               "would teach the model never to predict them; leave their cells empty (not "
                               "annotated) in the label table, or pass allow_missing_positives=true")
    for c in missing:
        log.warning("class %s has no positive exam in the training split", c)


def param_summary(module: nn.Module) -> str:
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    total = sum(p.numel() for p in module.parameters())
    return f"{trainable:,} of {total:,} parameters trainable"


"""The training task behind train.py: build data, model, callbacks, loggers and trainer from the config,
fit, test the best checkpoint, report, and return the metric to optimise."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from omegaconf import DictConfig, OmegaConf

from ecglit.calibrate import calibrate_on_fit_data, fit_datasets
from ecglit.callbacks.atomic_checkpoint import check_checkpoint
from ecglit.errors import ConfigError
from ecglit.evaluation.dashboard import log_dashboard, write_dashboard
from ecglit.evaluation.test_report import print_report, write_test_metrics
from ecglit.evaluation.test_sets import flat_scalars, run_test_sets
from ecglit.finetuning import check_training_labels, initialise_from, load_pretrained, param_summary
from ecglit.inference.predictor import Predictor
from ecglit.sweeps.wandb_group import apply_sweep_wandb_group
from ecglit.utils.hardware import retain_freed_memory, training_precision
from ecglit.utils.instantiators import instantiate_group
from ecglit.utils.io import ensure_dir, refuse_existing

log = logging.getLogger(__name__)


def build_module(cfg: DictConfig, datamodule: L.LightningDataModule | None = None) -> L.LightningModule:
    """The LightningModule from ``cfg.module`` with the network config ``cfg.model`` (kept as plain data)
    and what the checkpoint must know about the data: its input scale and label definitions."""
    return hydra.utils.instantiate(
        cfg.module,
        net=OmegaConf.to_container(cfg.model, resolve=True),
        input_scale=float(cfg.data.get("input_scale", 1.0)),
        label_definitions=getattr(datamodule, "label_definitions", None),
        _recursive_=False,
    )


def _finish_wandb(failed: bool) -> None:
    # One W&B run per job: without finish() the next multirun job reuses this run.
    try:
        import wandb
    except ImportError:  # pragma: no cover - wandb is a dependency
        return
    if wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Run one training job; returns metrics, the test report, the best checkpoint path and the module."""
    failed = True
    try:
        result = _train(cfg)
        failed = False
        return result
    finally:
        _finish_wandb(failed)


class _TestReportWriter(L.Callback):
    """Writes test_metrics.json on global rank 0 of the processes that ran the test. Under ddp_spawn
    those are workers, whose module (and its ``last_report``) the main process never gets back."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        report = getattr(pl_module, "last_report", None)
        if report is not None and trainer.is_global_zero:
            write_test_metrics(report, trainer.ckpt_path, self.path)


def _secondary_rank() -> bool:
    """A process that DDP (strategy ddp: Lightning re-runs the command) or srun started beside rank 0."""
    return any(int(os.environ.get(var, "0") or 0) > 0 for var in ("LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


def check_run_dir(output_dir: Path, overwrite: bool, ckpt_path: str | None = None) -> None:
    """Refuse a run folder that holds a finished or checkpointed run (test_metrics.json, checkpoints/*.ckpt),
    e.g. ``hydra.run.dir=runs/my_run`` given twice, unless ``overwrite`` or the run resumes from a
    checkpoint inside that folder (``ckpt_path``)."""
    resuming_here = ckpt_path is not None and Path(output_dir).resolve() in Path(ckpt_path).resolve().parents
    if not _secondary_rank() and not resuming_here:
        earlier = sorted((output_dir / "checkpoints").glob("*.ckpt"))[:1]
        refuse_existing([output_dir / "test_metrics.json", *earlier], overwrite)


def _train(cfg: DictConfig) -> dict[str, Any]:
    if cfg.get("train", True) and cfg.get("ckpt_path"):
        check_checkpoint(cfg.ckpt_path)  # a truncated file: one clear error before anything starts
    thresholds_on = str(cfg.get("thresholds_on", "val"))
    if thresholds_on not in ("val", "train_val"):
        raise ConfigError(f"thresholds_on must be val or train_val, got {thresholds_on!r}")
    output_dir = Path(cfg.paths.output_dir)
    check_run_dir(output_dir, bool(cfg.get("overwrite", False)), cfg.get("ckpt_path"))
    ensure_dir(output_dir)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)  # logged here, not on stderr
        log.info("seed %s", cfg.seed)

    pretrained = load_pretrained(cfg)  # fine-tuning: adapts cfg.model and data.input_scale to it
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)
    module = build_module(cfg, datamodule)
    if pretrained is not None:
        initialise_from(module, pretrained, bool(cfg.get("reset_head", False)))
        datamodule.setup("fit")
        check_training_labels(datamodule, bool(cfg.get("allow_missing_positives", False)))
        log.info("fine-tuning: %s", param_summary(module))
    callbacks = instantiate_group(cfg.get("callbacks"))
    apply_sweep_wandb_group(cfg)  # multirun: one W&B group per sweep
    loggers = instantiate_group(cfg.get("logger"))
    if not loggers:  # LearningRateMonitor refuses to run without a logger
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    report_writer = _TestReportWriter(output_dir / "test_metrics.json")
    if str(cfg.trainer.get("precision")) == "auto":  # resolved before the loggers record the config
        cfg.trainer.precision = training_precision("auto", cfg.trainer.get("accelerator", "auto"))
        log.info("trainer.precision=auto -> %s", cfg.trainer.precision)
    trainer: L.Trainer = hydra.utils.instantiate(cfg.trainer, callbacks=[*callbacks, report_writer],
                                                 logger=loggers or False)
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    if thresholds_on == "train_val" and trainer.world_size > 1:  # one process re-chooses and writes them
        raise ConfigError("thresholds_on=train_val runs on one device; with several, recalibrate the best "
                          "checkpoint afterwards (python -m ecglit.calibrate)")
    if thresholds_on == "train_val" and cfg.get("train", True):
        datamodule.setup("fit")
        fit_datasets(datamodule)  # refused now, not after training
    if trainer.strategy.root_device.type == "cpu":
        # Keep freed activation memory for reuse instead of unmapping and re-faulting it every step
        # (15% of a CPU training step on the paper's network; what made batch 64 slow: BENCHMARKS.md).
        retain_freed_memory()
    if cfg.get("train", True):
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    metrics = dict(trainer.callback_metrics)

    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    if cfg.get("train", True) and best and thresholds_on == "train_val":
        best = str(calibrate_on_fit_data(module, datamodule, Path(best), int(cfg.data.get("batch_size", 64)),
                                         trainer.strategy.root_device))
        log.info("thresholds re-chosen on the train and val splits: %s", best)
    if cfg.get("train", True) and best and str(cfg.get("optimized_metric", "")).startswith("val/"):
        # validation metrics of the checkpoint that will be used, not of the last epoch
        trainer.validate(module, datamodule=datamodule, ckpt_path=best, weights_only=True, verbose=False)
        metrics.update(trainer.callback_metrics)

    report = None
    if cfg.get("test", True):
        trainer.test(module, datamodule=datamodule, ckpt_path=best, weights_only=True if best else None,
                     verbose=False)  # our own per-class table follows
        metrics.update(trainer.callback_metrics)
        report = module.last_report
        if report is None and report_writer.path.is_file():  # ddp_spawn: the test ran in worker processes
            report = json.loads(report_writer.path.read_text())
        if report is not None and trainer.is_global_zero:
            print_report(report, best)
            if module.last_test_outputs is not None:
                _dashboard(output_dir, report, module, datamodule, loggers)
    if cfg.get("extra_tests") and trainer.is_global_zero:
        # the module holds the tested (best) weights; scored through the Predictor, as predict.py does
        predictor = Predictor.from_module(module, batch_size=int(cfg.data.get("batch_size", 64)),
                                          device=trainer.strategy.root_device, precision="32", backend="eager")
        test_sets = run_test_sets(predictor, OmegaConf.to_container(cfg.extra_tests, resolve=True), output_dir,
                                  loggers)
        metrics.update({k: v for name in test_sets for k, v in flat_scalars(test_sets[name]).items()})
    metrics = {k: float(v) for k, v in metrics.items()}
    return {"metrics": metrics, "test_report": report, "checkpoint": best, "module": module}


def _dashboard(output_dir: Path, report: dict, module: Any, datamodule: Any, loggers: list) -> None:
    """Curves, confusion matrices and the worst errors of the test set, as files and in W&B."""
    probs, targets = module.last_test_outputs
    try:
        dataset = datamodule.dataset("test")
    except (AttributeError, RuntimeError, ConfigError):
        dataset = None
    files = write_dashboard(output_dir, report, probs, targets, module.thresholds.cpu().numpy(), module.class_names,
                            dataset, float(module.hparams.get("input_scale", 1.0)))
    log_dashboard(loggers, files)


def run_training(cfg: DictConfig) -> float | None:
    """The job of ecglit-train / train.py: :func:`train`, returning ``optimized_metric`` for sweepers."""
    result = train(cfg)
    return metric_value(result["metrics"], cfg.get("optimized_metric"))


def metric_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value Hydra sweepers optimise; a clear error when it was never logged."""
    if not name:
        return None
    if name not in metrics:
        raise KeyError(f"optimized_metric {name!r} was not logged; available: {sorted(metrics)}")
    return metrics[name]

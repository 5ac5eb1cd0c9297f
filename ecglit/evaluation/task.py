"""The evaluation task behind evaluate.py: config -> inputs (checkpoint or prediction files) -> report."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import hydra
import numpy as np
import pandas as pd
from omegaconf import DictConfig, OmegaConf

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.io import load_labels, load_probabilities
from ecglit.evaluation.logging_report import finish_wandb, log_report
from ecglit.evaluation.pipeline import REPORT_FILES, ReportInputs, ReportOptions, ReportResult, run_report
from ecglit.evaluation.test_sets import run_test_sets, extra_test_files
from ecglit.inference.predictor import Predictor
from ecglit.metrics.thresholds import select_thresholds
from ecglit.utils.instantiators import instantiate_group
from ecglit.utils.io import atomic_path, ensure_dir, refuse_existing

log = logging.getLogger(__name__)
PREDICTION_FILES = ("predictions.npy", "labels.csv")  # mode (a) with predict.save


def named_paths(spec: Any, what: str) -> dict[str, Path]:
    """{name: path} from a mapping, a list (names from the file stems) or a single path; {} for None."""
    if spec is None:
        return {}
    if isinstance(spec, DictConfig | Mapping):
        return {str(k): Path(str(v)) for k, v in spec.items()}
    if isinstance(spec, str | Path):
        spec = [spec]
    if not isinstance(spec, Sequence) and not OmegaConf.is_list(spec):
        raise ConfigError(f"{what} must be a path, a list of paths or a mapping name: path, got {spec!r}")
    paths = [Path(str(p)) for p in spec]
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):  # same file names in different folders: keep them apart
        names = [f"{p.parent.name}/{p.stem}" for p in paths]
    return dict(zip(names, paths, strict=True))


def _thresholds(value: Any, n_classes: int) -> np.ndarray:
    try:
        thresholds = np.asarray(OmegaConf.to_object(value) if OmegaConf.is_config(value) else value, dtype=float)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"report.thresholds must be {n_classes} numbers in [0, 1], got {value!r}") from err
    if thresholds.shape != (n_classes,) or not np.all((thresholds >= 0) & (thresholds <= 1)):
        raise ConfigError(f"report.thresholds must be {n_classes} numbers in [0, 1], got {thresholds.tolist()}")
    return thresholds


def _labels_by_name(spec: Any, what: str, classes: Sequence[str], n_rows: int) -> dict[str, np.ndarray]:
    return {name: load_labels(path, classes, n_rows) for name, path in named_paths(spec, what).items()}


def inputs_from_files(rep: DictConfig, classes: tuple[str, ...]) -> ReportInputs:
    """Mode (b): prediction files, a reference CSV and annotator CSVs, as named in `report`."""
    if not rep.get("labels"):
        raise ConfigError("report.labels (the reference/gold-standard CSV) is required without ckpt_path")
    target = load_labels(rep.labels, classes)
    n_rows = len(target)
    probs = {name: load_probabilities(path, classes, n_rows)
             for name, path in named_paths(rep.get("predictions"), "report.predictions").items()}
    thresholds = None
    if rep.get("thresholds") is not None:
        thresholds = _thresholds(rep.thresholds, len(classes))
    elif probs and rep.get("threshold_selection") and rep.threshold_selection.get("predictions"):
        sel = rep.threshold_selection
        if not sel.get("labels"):
            raise ConfigError("report.threshold_selection.labels is required with its predictions")
        val_labels = load_labels(sel.labels, classes)
        val_probs = load_probabilities(sel.predictions, classes, len(val_labels))
        thresholds = select_thresholds(val_probs, val_labels).double().numpy()
        log.info("thresholds chosen on %s: %s", sel.predictions, np.round(thresholds, 4).tolist())
    elif probs:
        raise ConfigError("give report.thresholds=[...] or report.threshold_selection.{predictions,labels} "
                          "(a validation set) to turn probabilities into labels")
    return ReportInputs(
        target=target, model_probs=probs, thresholds=thresholds,
        annotators=_labels_by_name(rep.get("annotators"), "report.annotators", classes, n_rows),
        extra_raters=_labels_by_name(rep.get("extra_raters"), "report.extra_raters", classes, n_rows),
        class_names=classes, model_name=str(rep.model_name), select=rep.select,
    )


def labels_to_int(labels: np.ndarray, source: str) -> np.ndarray:
    """The dataset's float labels as int 0/1; a clear error if any are missing or not 0/1."""
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(source, f"labels {labels[row].tolist()} are missing or not 0/1 (give report.labels=CSV "
                                "for a test set without labels)", record=f"exam {row}")
    return labels.astype(np.int64)


def predict_split(datamodule: Any, predictor: Predictor, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels of a datamodule split, through the same Predictor as predict.py.

    The datamodule is built with input_scale 1: its items are the stored tracings (transposed), and the
    Predictor applies the checkpoint's scale, as it does for predict.py.
    """
    datamodule.setup("test" if split == "test" else "validate")
    probs, labels = [], []
    for x, y in getattr(datamodule, f"{split}_dataloader")():
        probs.append(predictor.predict_batch(x.transpose(1, 2)))
        labels.append(np.asarray(y, np.float32))
    if not probs:
        raise DataError(None, f"the {split} set to evaluate is empty")
    probs_all = np.concatenate(probs)
    bad = np.flatnonzero(~np.isfinite(probs_all).all(axis=1))
    if len(bad):  # metrics over NaN would be silently wrong: name the exams instead
        exam_ids = getattr(datamodule.dataset(split), "exam_ids", None)
        shown = [int(exam_ids[i]) if exam_ids is not None else int(i) for i in bad[:5]]
        raise DataError(None, f"the model's output is NaN or infinite for {len(bad)} exam(s) of the {split} set "
                              f"({'exam_ids' if exam_ids is not None else 'positions'} {shown}); their tracings "
                              "hold values too large for float32?")
    return probs_all, np.concatenate(labels)


def data_config_of_run(ckpt_path: str | Path) -> DictConfig | None:
    """The `data` config of the train.py run that wrote `ckpt_path` (<run>/checkpoints/*.ckpt next to
    <run>/.hydra/config.yaml), resolved against that run's config; None when there is none."""
    saved_path = Path(ckpt_path).resolve().parent.parent / ".hydra" / "config.yaml"
    if not saved_path.is_file():
        return None
    saved = OmegaConf.load(saved_path)
    if saved.get("data") is None:
        return None
    log.info("data config taken from the training run: %s", saved_path)
    return OmegaConf.create(OmegaConf.to_container(saved.data, resolve=True))


def make_predictor(cfg: DictConfig) -> Predictor:
    """The Predictor of ``cfg.ckpt_path`` with the ``predict`` options (the same defaults as predict.py)."""
    pred = cfg.predict
    options = {"input_scale": float(pred.input_scale)} if pred.get("input_scale") is not None else {}
    return Predictor.from_checkpoint(cfg.ckpt_path, batch_size=int(pred.get("batch_size", 64)),
                                     device=pred.get("device", "auto"), precision=str(pred.get("precision", "auto")),
                                     backend=str(pred.get("backend", "auto")), **options)


def inputs_from_checkpoint(cfg: DictConfig, output_dir: Path) -> ReportInputs:
    """Mode (a): predict with the checkpoint on the datamodule's split, then report.

    Without `data=...` the training run's own data config is used (found beside the checkpoint).
    """
    rep, pred = cfg.report, cfg.predict
    if pred.split not in ("train", "val", "test"):
        raise ConfigError(f"predict.split must be train, val or test, got {pred.split!r}")
    data_cfg = cfg.get("data") or data_config_of_run(cfg.ckpt_path)
    if data_cfg is None:
        raise ConfigError("ckpt_path needs a dataset: pass data=<config> (the one used for training, or "
                          "data=code_test data.test_root=DIR for the CODE test set)")
    predictor = make_predictor(cfg)
    classes = tuple(predictor.class_names)
    data_cfg = OmegaConf.create(OmegaConf.to_container(data_cfg, resolve=True))
    data_scale = float(data_cfg.get("input_scale", 1.0))
    if abs(data_scale - predictor.input_scale) > 1e-12:
        log.warning("data.input_scale=%s is ignored: the checkpoint's input_scale=%s is applied, as predict.py "
                    "does", data_scale, predictor.input_scale)
    if "input_scale" in data_cfg:
        data_cfg.input_scale = 1.0
    datamodule = hydra.utils.instantiate(data_cfg)
    probs, dataset_labels = predict_split(datamodule, predictor, pred.split)
    n_rows = len(probs)
    if rep.get("labels"):
        target = load_labels(rep.labels, classes, n_rows)
    else:
        target = labels_to_int(dataset_labels, f"{pred.split} set of {data_cfg.get('_target_')}")
    if rep.get("thresholds") is not None:
        thresholds = _thresholds(rep.thresholds, len(classes))
    elif pred.thresholds == "checkpoint":
        thresholds = predictor.thresholds.astype(np.float64)
    elif pred.thresholds == "val":
        val_probs, val_labels = predict_split(datamodule, predictor, "val")
        thresholds = select_thresholds(val_probs, labels_to_int(val_labels, "val set")).double().numpy()
    else:
        raise ConfigError(f"predict.thresholds must be checkpoint or val, got {pred.thresholds!r}")
    if pred.get("save", True):  # _evaluate refused existing files first (or overwrite=true)
        with atomic_path(output_dir / "predictions.npy", overwrite=True) as tmp:
            np.save(tmp, probs.astype(np.float32))
        with atomic_path(output_dir / "labels.csv", overwrite=True) as tmp:
            pd.DataFrame(target, columns=list(classes)).to_csv(tmp, index=False)
    name = Path(str(cfg.ckpt_path)).stem
    return ReportInputs(
        target=target, model_probs={name: probs}, thresholds=thresholds,
        annotators=_labels_by_name(rep.get("annotators"), "report.annotators", classes, n_rows),
        extra_raters=_labels_by_name(rep.get("extra_raters"), "report.extra_raters", classes, n_rows),
        class_names=classes, model_name=str(rep.model_name), select=name,
    )


def evaluate(cfg: DictConfig) -> ReportResult | dict[str, dict]:
    """Run one evaluation job from its Hydra config (the job of ecglit-evaluate / evaluate.py); returns the
    report (tables and file paths), or the extra test sets' reports when only those were asked for
    (``ckpt_path`` + ``extra_tests``, no ``data``). Report files already in the output folder are refused,
    before anything is computed, unless ``overwrite=true``."""
    failed = True
    try:
        result = _evaluate(cfg)
        failed = False
        return result
    finally:
        finish_wandb(failed)


def _evaluate(cfg: DictConfig) -> ReportResult | dict[str, dict]:
    output_dir = Path(cfg.paths.output_dir)
    overwrite = bool(cfg.get("overwrite", False))
    extra = [path for name in (cfg.get("extra_tests") or {}) for path in extra_test_files(str(name), output_dir)]
    refuse_existing([*(output_dir / name for name in (*REPORT_FILES, *PREDICTION_FILES)), *extra], overwrite)
    ensure_dir(output_dir)
    rep = cfg.report
    loggers = instantiate_group(cfg.get("logger"))
    test_sets: dict[str, dict] = {}
    if cfg.get("ckpt_path") and cfg.get("extra_tests"):
        test_sets = run_test_sets(make_predictor(cfg), OmegaConf.to_container(cfg.extra_tests, resolve=True),
                                  output_dir, loggers)
        if cfg.get("data") is None:  # only the extra test sets were asked for
            return test_sets
    if cfg.get("ckpt_path"):
        inputs = inputs_from_checkpoint(cfg, output_dir)
    else:
        inputs = inputs_from_files(rep, tuple(rep.get("class_names") or CLASSES))
    boot = rep.bootstrap
    options = ReportOptions(n_resamples=int(boot.n_resamples), seed=int(boot.seed), level=float(boot.level),
                            ci_method=str(boot.ci_method), figures=bool(rep.figures), title=str(rep.title))
    result = run_report(inputs, output_dir, options, overwrite=overwrite)
    log.info("report written to %s (%s)", output_dir, ", ".join(sorted(p.name for p in result.files.values())))
    # the job's own config (compose(..., return_hydra_config=True) in tests also holds a `hydra` node)
    hparams = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
               for key in cfg if key != "hydra"}
    log_report(loggers, result, hparams)
    return result

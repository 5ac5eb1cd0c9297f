"""Re-choose a model's per-class thresholds on a labelled set from the population it will be used on.

    python -m ecglit.calibrate ckpt=CKPT input=DIR out=NEW.ckpt [rule=max_f1|sensitivity:0.9|specificity:0.99]
    python -m ecglit.calibrate ckpt=CKPT test_sets=realdata input=realdata out=NEW.ckpt  # a configured set
    ecglit-calibrate ckpt=CKPT input=DIR out=NEW.ckpt          (the same, installed: ecglit/cli.py)

Thresholds chosen on one source rarely hold on another. The set (a shard folder, an HDF5 file or a folder of
records, read as the extra test sets are) is predicted through the checkpoint's Predictor; per class the
``rule`` picks a new threshold on the annotated exams. Classes the set does not annotate, or in which it
has no positives, keep their thresholds (said per class). The new checkpoint records where its thresholds
came from (``threshold_source`` and a ``calibration`` entry) and is written atomically. With
``adapt_batchnorm=true`` the network's BatchNorm statistics are first re-estimated on every exam of the set
(labels unused; :mod:`ecglit.inference.adaptation`), and the new checkpoint carries them too. Before/after
metrics with bootstrap intervals are printed (on the calibration set itself: optimistic by construction,
report held-out numbers for anything else).
"""

from __future__ import annotations

if __name__ == "__main__":  # `python -m ecglit.calibrate`: overrides are checked before the heavy imports below
    from ecglit.utils.cli import register_open_mapping, run_hydra_program

    run_hydra_program("ecglit.calibrate", "calibrate", "ecglit.calibrate:calibrate", register=register_open_mapping)
    raise SystemExit(0)

import copy
import datetime as dt
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.bootstrap import bootstrap_probability_scores, percentile_interval, probability_scores
from ecglit.evaluation.test_sets import TestSetSpec, evaluate_test_set, open_test_set
from ecglit.inference.adaptation import adapt_to_exams
from ecglit.inference.predictor import Predictor
from ecglit.metrics.thresholds import parse_rule, threshold_for_rule
from ecglit.models.checkpoint import KERAS_SUFFIXES, load_classifier, resolve_checkpoint
from ecglit.utils.io import atomic_path, check_creatable, refuse_existing

log = logging.getLogger(__name__)
_F1, _SENS, _SPEC = 3, 1, 2  # columns of probability_scores: precision, recall, specificity, f1, auroc, ap


def choose_thresholds(probs: np.ndarray, labels: np.ndarray, current: np.ndarray, rule: str,
                      classes: list[str]) -> tuple[np.ndarray, dict[str, str]]:
    """New thresholds (C,) and, per class, how each was set ("rule", or why it was kept)."""
    new = current.astype(np.float64).copy()
    how: dict[str, str] = {}
    for i, c in enumerate(classes):
        annotated = ~np.isnan(labels[:, i])
        if not annotated.any():
            how[c] = "kept: not annotated in the set"
            continue
        threshold = threshold_for_rule(probs[:, i], labels[:, i], rule)
        if threshold is None:
            n_pos = int(np.nansum(labels[:, i]))
            how[c] = "kept: no positives in the set" if n_pos == 0 else "kept: no negatives in the set"
            continue
        new[i] = _float32_at_least(threshold)
        how[c] = rule
    return new, how


def _float32_at_least(threshold: float) -> float:
    """The smallest float32 >= ``threshold``. Checkpoints store thresholds as float32 and the Predictor's
    probabilities are float32, so a probability is >= the stored value exactly when it is >= ``threshold``
    (rounding to nearest could fall back onto a score, e.g. the one just above every score that
    ``specificity:1.0`` may pick, and label that exam positive)."""
    t32 = np.float32(threshold)
    if float(t32) < threshold:
        t32 = np.nextafter(t32, np.float32(np.inf))
    return float(t32)


def _checkpoint_dict(path: Path, module: Any) -> dict[str, Any]:
    """The original checkpoint's contents (weights_only), or a fresh one for a Keras file."""
    if path.suffix.lower() not in KERAS_SUFFIXES and zipfile.is_zipfile(path):
        return torch.load(path, map_location="cpu", weights_only=True)
    import lightning

    return {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": lightning.__version__}


def write_calibrated(ckpt: Path, module: Any, thresholds: np.ndarray, calibration: dict[str, Any], out: Path,
                     overwrite: bool = False) -> Path:
    """``ckpt`` with new thresholds and provenance, written atomically to ``out``."""
    refuse_existing([out], overwrite)
    payload = _checkpoint_dict(ckpt, module)
    state = payload.get("state_dict")
    if not isinstance(state, dict) or "thresholds" not in state:
        raise DataError(ckpt, "has no thresholds buffer in its state_dict; not an ECGClassifier checkpoint")
    state["thresholds"] = torch.tensor(thresholds, dtype=state["thresholds"].dtype)
    if calibration.get("batchnorm"):  # statistics re-estimated on the set: stored at the file's precision
        for key, value in _batchnorm_buffers(module).items():
            state[key] = value.to(state[key].dtype if key in state else value.dtype)
    hparams = dict(payload.get("hyper_parameters") or {})
    hparams["threshold_source"] = calibration["source"]
    payload["hyper_parameters"] = hparams
    payload["calibration"] = calibration
    for key in ("optimizer_states", "lr_schedulers", "loops", "callbacks"):  # nothing to resume from here
        payload.pop(key, None)
    try:
        with atomic_path(out, overwrite) as tmp:
            torch.save(payload, tmp)
    except OSError as err:
        raise DataError(out, f"cannot write the checkpoint ({err.strerror or err})") from None
    return out


def fit_datasets(datamodule: Any) -> list[Any]:
    """The train and val datasets of a set-up DataModule, refused unless their exams and labels can be read
    back (shards on disk; not exams generated on the fly)."""
    splits = [datamodule.dataset(s) for s in ("train", "val")]
    if not all(hasattr(d, "read_tracings") and hasattr(d, "labels") for d in splits):
        raise ConfigError("thresholds_on=train_val needs labelled exams on disk (data=code15 or another shard "
                          f"folder); {type(datamodule).__name__} does not keep them")
    return splits


def fit_data_thresholds(predictor: Predictor, datamodule: Any) -> tuple[np.ndarray, dict[str, str], int]:
    """Max-F1 thresholds of ``predictor`` on every exam of the datamodule's train and val splits (read without
    augmentation, in the predictor's batches): ``(thresholds, how each was set, number of exams)``."""
    probs, labels = [], []
    for dataset in fit_datasets(datamodule):
        for start in range(0, len(dataset), predictor.batch_size):
            rows = np.arange(start, min(start + predictor.batch_size, len(dataset)))
            probs.append(predictor.predict_batch(dataset.read_tracings(rows)))
            labels.append(np.asarray(dataset.labels, np.float32)[rows])
    new, how = choose_thresholds(np.concatenate(probs), np.concatenate(labels),
                                 np.asarray(predictor.thresholds, np.float64), "max_f1", list(predictor.class_names))
    return new, how, sum(len(p) for p in probs)


def calibrate_on_fit_data(module: Any, datamodule: Any, best: Path, batch_size: int,
                          device: str | torch.device = "cpu") -> Path:
    """Thresholds of a finished run re-chosen (max F1) on every exam it was fitted with
    (:func:`fit_data_thresholds`), for ``train.py thresholds_on=train_val``: a validation split of a few
    hundred exams holds a handful of positives per class. ``module`` is given the weights of ``best``; the
    result is written beside it (``<best>-train_val.ckpt``) and its path returned."""
    payload = torch.load(best, map_location="cpu", weights_only=True)
    module.load_state_dict(payload["state_dict"])
    predictor = Predictor.from_module(module, batch_size=batch_size, device=device, precision="32", backend="eager")
    old = np.asarray(predictor.thresholds, np.float64)
    new, how, n = fit_data_thresholds(predictor, datamodule)
    for c, h in how.items():
        log.info("thresholds_on=train_val: %s %s", c, h)
    record = {"source": f"max F1 on the {n} exams of the run's train and val splits "
                        f"({dt.date.today().isoformat()}); before: {predictor.threshold_source or 'unknown'}",
              "rule": "max_f1", "data": "train+val", "n_exams": n,
              "per_class": {c: {"before": float(old[i]), "after": float(new[i]), "how": how[c]}
                            for i, c in enumerate(predictor.class_names)}}
    out = best.with_name(f"{best.stem}-train_val.ckpt")
    write_calibrated(best, module, new, record, out, overwrite=True)
    module.thresholds.copy_(torch.as_tensor(new, dtype=module.thresholds.dtype))
    return out


def _cells(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray, n_resamples: int, seed: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    point = probability_scores(probs, labels, thresholds)
    low, high = percentile_interval(bootstrap_probability_scores(probs, labels, thresholds, n_resamples, seed))
    return point, low, high


def _fmt(point: np.ndarray, low: np.ndarray, high: np.ndarray, i: int, k: int) -> str:
    if np.isnan(point[i, k]):
        return "n/a"
    return f"{point[i, k]:.2f} [{low[i, k]:.2f}-{high[i, k]:.2f}]"


def before_after_table(classes: list[str], old: np.ndarray, new: np.ndarray, how: dict[str, str],
                       before: tuple, after: tuple, title: str) -> Table:
    table = Table(title=title)
    for column in ("class", "threshold", "F1 before", "F1 after", "sens before", "sens after", "spec before",
                   "spec after", "how"):
        table.add_column(column, justify="left" if column in ("class", "how") else "right")
    for i, c in enumerate(classes):
        table.add_row(c, f"{old[i]:.3g} -> {new[i]:.3g}", _fmt(*before, i, _F1), _fmt(*after, i, _F1),
                      _fmt(*before, i, _SENS), _fmt(*after, i, _SENS), _fmt(*before, i, _SPEC),
                      _fmt(*after, i, _SPEC), how[c])
    return table


def _batchnorm_buffers(module: Any) -> dict[str, torch.Tensor]:
    """The BatchNorm statistics of ``module``'s network, under their state_dict keys."""
    return {f"net.{name}.{key}": value for name, layer in module.net.named_modules()
            if isinstance(layer, nn.modules.batchnorm._BatchNorm) for key, value in layer.state_dict().items()}


def adapt_to_set(module: Any, spec: TestSetSpec, input_scale: float, batch_size: int,
                 stored_dtypes: dict[str, torch.dtype]) -> int:
    """Re-estimate ``module``'s BatchNorm statistics on every readable exam of ``spec`` (labels unused), in
    batches of ``batch_size``; rounded to the precision the checkpoint stores them at, so the written file
    is exactly the model that is scored. Returns the number of exams used."""
    n = adapt_to_exams(module.net, lambda: (batch.x for batch in open_test_set(spec).batches()), input_scale,
                       batch_size, spec.root)
    with torch.no_grad():
        for key, value in _batchnorm_buffers(module).items():
            if stored_dtypes.get(key, value.dtype) != value.dtype:
                value.copy_(value.to(stored_dtypes[key]).to(value.dtype))
    return n


def _predictor(module: Any, cfg: DictConfig, options: dict[str, float]) -> Predictor:
    return Predictor.from_module(module, batch_size=int(cfg.batch_size), device=cfg.device, precision="32",
                                 backend="eager", **options)


def calibrate(cfg: DictConfig) -> dict[str, Any]:
    """Run one calibration from its config; returns the calibration record written into the checkpoint."""
    for key in ("ckpt", "input", "out"):
        if not cfg.get(key):
            raise ConfigError(f"{key}=... is required (python -m ecglit.calibrate ckpt=CKPT input=DIR out=NEW.ckpt)")
    parse_rule(cfg.rule)
    out = Path(str(cfg.out))
    refuse_existing([out], bool(cfg.overwrite))  # before the slow part
    check_creatable(out.parent)
    ckpt = resolve_checkpoint(str(cfg.ckpt))
    scale = None if cfg.get("input_scale") is None else float(cfg.input_scale)
    module = load_classifier(ckpt, input_scale=scale)
    named = OmegaConf.to_container(cfg.extra_tests, resolve=True) if cfg.get("extra_tests") else {}
    if str(cfg.input) in named:  # a test set defined in the config (e.g. test_sets=realdata input=realdata)
        spec = TestSetSpec.from_config(str(cfg.input), {**named[str(cfg.input)], "n_resamples": int(cfg.n_resamples),
                                                         "seed": int(cfg.seed)})
    else:
        spec = TestSetSpec.from_config("calibration", {
            "root": str(cfg.input), "format": cfg.format, "label_definitions": cfg.get("label_definitions"),
            "records": OmegaConf.to_container(cfg.records, resolve=True) if cfg.get("records") else {},
            "n_resamples": int(cfg.n_resamples), "seed": int(cfg.seed)})
    if list(module.class_names) != list(CLASSES):
        raise DataError(ckpt, f"predicts the classes {list(module.class_names)}; labelled sets carry "
                              f"{list(CLASSES)}, so the two cannot be matched")
    options = {} if scale is None else {"input_scale": scale}
    adapted, original = 0, None
    if cfg.get("adapt_batchnorm"):  # "before" is the model as it was: predicted before adapting a copy
        original = evaluate_test_set(_predictor(copy.deepcopy(module), cfg, options), spec)
        stored = {k: v.dtype for k, v in _checkpoint_dict(ckpt, module)["state_dict"].items()}
        input_scale = scale if scale is not None else float(module.hparams.get("input_scale", 1.0))
        adapted = adapt_to_set(module, spec, input_scale, int(cfg.batch_size), stored)
        log.info("BatchNorm statistics re-estimated on %d exams of %s", adapted, spec.root)
    predictor = _predictor(module, cfg, options)
    classes = list(predictor.class_names)
    result = evaluate_test_set(predictor, spec)  # raises when the set holds no label at all
    labelled = ~np.isnan(result.labels).all(axis=1)
    probs, labels = result.probs[labelled], result.labels[labelled]
    old = np.asarray(predictor.thresholds, np.float64)
    new, how = choose_thresholds(probs, labels, old, str(cfg.rule), classes)
    if all(h.startswith("kept") for h in how.values()):
        raise DataError(spec.root, "no class could be calibrated: " + "; ".join(f"{c} {h}" for c, h in how.items()))
    for c, h in how.items():
        if h.startswith("kept: no"):
            log.warning("%s: %s; its threshold is unchanged", c, h.removeprefix("kept: "))
    probs_before = probs
    if original is not None:
        if list(original.ids) != list(result.ids):
            raise DataError(spec.root, "the adapted model scored other exams than the original one "
                                       "(non-finite outputs); adapt_batchnorm=false, or remove those exams")
        probs_before = original.probs[labelled]
    before = _cells(probs_before, labels, old, int(cfg.n_resamples), int(cfg.seed))
    after = _cells(probs, labels, new, int(cfg.n_resamples), int(cfg.seed))
    record = {
        "source": f"calibrated on {spec.root} ({cfg.rule}, {int(labelled.sum())} labelled exams, "
                  + (f"BatchNorm statistics from {adapted} exams, " if adapted else "")
                  + f"{dt.date.today().isoformat()}); before: {predictor.threshold_source or 'unknown'}",
        "batchnorm": {"adapted_on": str(spec.root), "n_exams": adapted} if adapted else None,
        "rule": str(cfg.rule), "data": str(spec.root), "n_exams": int(labelled.sum()),
        "label_definitions": spec.label_definitions, "mismatches": result.report["label_definitions"]["mismatches"],
        "per_class": {c: {"before": float(old[i]), "after": float(new[i]), "how": how[c],
                          "positives": int((labels[:, i] == 1).sum()), "negatives": int((labels[:, i] == 0).sum())}
                      for i, c in enumerate(classes)},
    }
    console = Console(width=max(Console().width, 150))
    console.print(before_after_table(classes, old, new, how, before, after,
                                     f"Calibration on {spec.root} ({cfg.rule}, {int(labelled.sum())} exams; "
                                     + ("after: BatchNorm statistics adapted to the set; " if adapted else "")
                                     + "measured on the same exams)"))
    for line in record["mismatches"]:
        console.print(f"[bold red]LABEL DEFINITIONS DIFFER[/]: {line}")
    write_calibrated(ckpt, module, new, record, out, bool(cfg.overwrite))
    console.print(f"wrote {out}")
    return record


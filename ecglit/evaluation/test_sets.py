"""Extra labelled test sets: any number of shard folders, HDF5 files or record folders, each scored apart.

    extra_tests:
      realdata: {root: ../shared/realdata, format: records, label_definitions: physionet,
                 records: {gain_override: {HR*: 1000}}}

``train.py`` scores the best checkpoint on each set after its own test; ``evaluate.py ckpt_path=...``
does it for any checkpoint. Per set: per-class and macro AUROC, AP, F1, sensitivity, specificity and
precision with bootstrap 95% intervals, overall and per source (the public database when the record
names say it, e.g. CPSC 2018, PTB-XL, Georgia; else the first folder under ``root``), written to
``test_<name>_metrics.json`` and ``test_<name>_predictions.csv`` beside test_metrics.json, printed, and
logged under ``test/<name>/...``. Cells a source did not annotate (empty) never count as negatives. Each set
declares its label definitions; a mismatch with the model's is stated loudly. With ``adapt_batchnorm: true`` a
set is scored by a copy of the model whose BatchNorm statistics are re-estimated on the set's own exams
(labels unused; ecglit/inference/adaptation.py).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from ecglit.constants import CLASSES
from ecglit.data.definitions import label_definitions, mismatches
from ecglit.data.importers.cli import options_from_config
from ecglit.data.sources import PredictionSource, hdf5_source, open_source, record_source, shard_source
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.bootstrap import (
    bootstrap_probability_scores,
    macro_replicates,
    percentile_interval,
    probability_scores,
)
from ecglit.inference.adaptation import adapted_predictor
from ecglit.inference.predictor import NON_FINITE_OUTPUT, Predictor
from ecglit.metrics.classification import METRICS
from ecglit.utils.io import atomic_open, ensure_dir, write_text

log = logging.getLogger(__name__)
FORMATS = ("auto", "records", "shards", "hdf5")
SHORT = {"precision": "prec", "recall": "sens", "specificity": "spec", "f1": "F1", "auroc": "AUROC", "ap": "AP"}
_KEYS = {"root", "format", "label_definitions", "records", "long_records", "batch_size", "n_resamples", "seed",
         "adapt_batchnorm"}


@dataclass
class TestSetSpec:
    """One extra test set (see the module docstring)."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    root: Path
    format: str = "auto"
    label_definitions: dict[str, Any] | None = None
    records: dict[str, Any] = field(default_factory=dict)  # importer options (conf/convert.yaml keys)
    long_records: str = "crop"
    batch_size: int = 64
    n_resamples: int = 1000
    seed: int = 123
    adapt_batchnorm: bool = False  # score a copy of the model adapted to the set's own exams (labels unused)

    @classmethod
    def from_config(cls, name: str, cfg: Mapping[str, Any]) -> TestSetSpec:
        if not isinstance(cfg, Mapping) or not cfg.get("root"):
            raise ConfigError(f"extra_tests.{name} needs a root (a shard folder, an HDF5 file or a record folder)")
        unknown = sorted(set(cfg) - _KEYS)
        if unknown:
            raise ConfigError(f"extra_tests.{name} has unknown keys {unknown}; valid: {sorted(_KEYS)}")
        fmt = str(cfg.get("format", "auto"))
        if fmt not in FORMATS:
            raise ConfigError(f"extra_tests.{name}.format must be one of {FORMATS}, got {fmt!r}")
        try:
            definitions = label_definitions(cfg.get("label_definitions"))
        except ConfigError as err:
            raise ConfigError(f"extra_tests.{name}.label_definitions: {err}") from None
        return cls(name, Path(str(cfg["root"])), fmt, definitions, dict(cfg.get("records") or {}),
                   str(cfg.get("long_records", "crop")), int(cfg.get("batch_size", 64)),
                   int(cfg.get("n_resamples", 1000)), int(cfg.get("seed", 123)), bool(cfg.get("adapt_batchnorm")))


def specs_from_config(extra_tests: Mapping[str, Any] | None) -> list[TestSetSpec]:
    """The sets of an ``extra_tests`` mapping, in name order."""
    if not extra_tests:
        return []
    if not isinstance(extra_tests, Mapping):
        raise ConfigError(f"extra_tests must map a name to a test set, got {extra_tests!r}")
    return [TestSetSpec.from_config(str(k), v) for k, v in sorted(extra_tests.items())]


def open_test_set(spec: TestSetSpec) -> PredictionSource:
    if not spec.root.exists():
        raise DataError(spec.root, f"test set {spec.name!r} not found")
    options = options_from_config(spec.records)
    if spec.format == "records":
        return record_source(spec.root, spec.batch_size, options, spec.long_records)
    if spec.format == "shards":
        return shard_source(spec.root, spec.batch_size)
    if spec.format == "hdf5":
        return hdf5_source(spec.root, spec.batch_size)
    return open_source(spec.root, spec.batch_size, options, spec.long_records)


@dataclass
class TestSetResult:
    __test__ = False
    spec: TestSetSpec
    ids: list[Any]
    sources: list[str]
    probs: np.ndarray  # (N, C)
    labels: np.ndarray  # (N, C), NaN = not annotated
    report: dict[str, Any]


def _scores_with_intervals(probs: np.ndarray, labels: np.ndarray, thresholds: np.ndarray,
                           classes: list[str], spec: TestSetSpec) -> dict[str, Any]:
    point = probability_scores(probs, labels, thresholds)  # (C, 6)
    reps = bootstrap_probability_scores(probs, labels, thresholds, spec.n_resamples, spec.seed)
    low, high = percentile_interval(reps)
    macro_reps = macro_replicates(reps[:, None])[:, 0]  # (B, 6): mean over the defined classes
    macro_point = macro_replicates(point[None, None])[0, 0]
    m_low, m_high = percentile_interval(macro_reps)

    def cell(v: float, lo: float, hi: float) -> dict[str, float | None]:
        return {"value": _num(v), "ci_low": _num(lo), "ci_high": _num(hi)}

    per_class = {c: {m: cell(point[i, k], low[i, k], high[i, k]) for k, m in enumerate(METRICS)}
                 for i, c in enumerate(classes)}
    annotated = ~np.isnan(labels)
    support = {c: {"positives": int((labels[:, i] == 1).sum()), "negatives": int((labels[:, i] == 0).sum()),
                   "not_annotated": int((~annotated[:, i]).sum())} for i, c in enumerate(classes)}
    macro = {m: cell(macro_point[k], m_low[k], m_high[k]) for k, m in enumerate(METRICS)}
    return {"n_exams": int(len(probs)), "macro": macro, "per_class": per_class, "support": support}


def _num(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or np.isnan(v) else float(v)


def evaluate_test_set(predictor: Predictor, spec: TestSetSpec) -> TestSetResult:
    """Predict every exam of the set with ``predictor`` and score it (overall and per source)."""
    source = open_test_set(spec)
    ids: list[Any] = []
    sources: list[str] = []
    probs: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for batch in source.batches():
        p, scored = predictor.predict_finite(batch.x)
        keep = np.flatnonzero(scored)
        source.skipped.extend((str(batch.ids[i]), NON_FINITE_OUTPUT) for i in np.flatnonzero(~scored))
        ids.extend(batch.ids[i] for i in keep)
        extra = batch.extra or [{}] * len(batch.ids)
        sources.extend(str(extra[i].get("source", "")) for i in keep)
        probs.append(p[keep])
        labels.append(batch.labels[keep] if batch.labels is not None
                      else np.full((len(keep), len(CLASSES)), np.nan, np.float32))
    if not ids:
        raise DataError(spec.root, f"test set {spec.name!r}: no exam could be read and scored "
                                   f"({len(source.skipped)} skipped)")
    p, y = np.concatenate(probs), np.concatenate(labels).astype(np.float64)
    classes = list(predictor.class_names)
    thresholds = np.asarray(predictor.thresholds, np.float64)
    labelled = ~np.isnan(y).all(axis=1)
    if not labelled.any():
        raise DataError(spec.root, f"test set {spec.name!r} has no labels (not one annotated class in "
                                   f"{len(ids)} exams)")
    differences = mismatches(predictor.label_definitions, spec.label_definitions)
    for line in differences:
        log.warning("LABEL DEFINITIONS DIFFER on test set %r: %s", spec.name, line)
    report: dict[str, Any] = {
        "name": spec.name, "root": str(spec.root), "thresholds": dict(zip(classes, thresholds.tolist())),
        "label_definitions": {"model": predictor.label_definitions, "data": spec.label_definitions,
                              "mismatches": differences},
        "n_exams": len(ids), "n_labelled": int(labelled.sum()),
        "skipped": [{"input": a, "why": b} for a, b in source.skipped],
        "bootstrap": {"n_resamples": spec.n_resamples, "seed": spec.seed, "level": 0.95},
        "overall": _scores_with_intervals(p[labelled], y[labelled], thresholds, classes, spec),
        "per_source": {},
    }
    src = np.array(sources)
    for name in sorted(set(sources) - {""}):
        keep = labelled & (src == name)
        if keep.any():
            report["per_source"][name] = _scores_with_intervals(p[keep], y[keep], thresholds, classes, spec)
    return TestSetResult(spec, ids, sources, p, y, report)


def write_test_set(result: TestSetResult, output_dir: Path) -> dict[str, Path]:
    """``test_<name>_metrics.json`` and ``test_<name>_predictions.csv`` (atomically; the run's own files:
    callers refuse a folder that held them, see :func:`extra_test_files`)."""
    ensure_dir(output_dir)
    metrics_path, pred_path = extra_test_files(result.spec.name, output_dir)
    write_text(metrics_path, json.dumps(result.report, indent=2), overwrite=True)
    classes = list(result.report["thresholds"])
    thresholds = np.array(list(result.report["thresholds"].values()))
    with atomic_open(pred_path, "w", overwrite=True, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "source", *(f"prob_{c}" for c in classes), *(f"label_{c}" for c in classes),
                         *(f"true_{c}" for c in classes)])
        for i, exam_id in enumerate(result.ids):
            truth = ["" if np.isnan(v) else int(v) for v in result.labels[i]]
            writer.writerow([exam_id, result.sources[i], *(f"{v:.6g}" for v in result.probs[i]),
                             *(result.probs[i] >= thresholds).astype(int).tolist(), *truth])
    return {"metrics": metrics_path, "predictions": pred_path}


def extra_test_files(name: str, output_dir: Path) -> tuple[Path, Path]:
    """The files :func:`write_test_set` writes for the test set ``name``."""
    return output_dir / f"test_{name}_metrics.json", output_dir / f"test_{name}_predictions.csv"


def flat_scalars(report: dict[str, Any], prefix: str = "test") -> dict[str, float]:
    """``{prefix}/{name}/{metric}/{class}`` and ``{prefix}/{name}/{metric}_macro`` (defined values only)."""
    name, overall = report["name"], report["overall"]
    out = {f"{prefix}/{name}/{m}_macro": v["value"] for m, v in overall["macro"].items()}
    for c, vals in overall["per_class"].items():
        out.update({f"{prefix}/{name}/{m}/{c}": v["value"] for m, v in vals.items()})
    return {k: float(v) for k, v in out.items() if v is not None}


def _fmt(cell: Mapping[str, float | None]) -> str:
    if cell["value"] is None:
        return "n/a"
    if cell["ci_low"] is None:
        return f"{cell['value']:.3f}"
    return f"{cell['value']:.3f} [{cell['ci_low']:.2f}-{cell['ci_high']:.2f}]"


def results_table(report: dict[str, Any]) -> Table:
    overall = report["overall"]
    title = (f"Test set {report['name']}: {report['n_labelled']} labelled of {report['n_exams']} exams "
             f"({report['root']})")
    table = Table(title=title)
    table.add_column("class")
    for m in ("auroc", "ap", "f1", "recall", "specificity"):
        table.add_column(SHORT[m], justify="right")
    table.add_column("n+/n-", justify="right")
    for c, vals in overall["per_class"].items():
        s = overall["support"][c]
        table.add_row(c, *(_fmt(vals[m]) for m in ("auroc", "ap", "f1", "recall", "specificity")),
                      f"{s['positives']}/{s['negatives']}")
    table.add_row("macro", *(_fmt(overall["macro"][m]) for m in ("auroc", "ap", "f1", "recall", "specificity")),
                  "", style="bold")
    return table


def print_test_set(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console(width=max(Console().width, 130))  # intervals need the room
    console.print(results_table(report))
    if report.get("batchnorm_adapted_on"):
        console.print(f"BatchNorm statistics adapted to the set's own {report['batchnorm_adapted_on']} exams "
                      "(adapt_batchnorm: true; labels unused)")
    for line in report["label_definitions"]["mismatches"]:
        console.print(f"[bold red]LABEL DEFINITIONS DIFFER[/]: {line}")
    if report["skipped"]:
        console.print(f"{len(report['skipped'])} input(s) could not be scored (see the JSON)")


def run_test_sets(predictor: Predictor, extra_tests: Mapping[str, Any] | None, output_dir: Path,
                  loggers: list[Any] | None = None, console: Console | None = None) -> dict[str, dict[str, Any]]:
    """Score every set of ``extra_tests``; write, print and log each; returns {name: report}."""
    reports = {}
    for spec in specs_from_config(extra_tests):
        log.info("scoring test set %r (%s)", spec.name, spec.root)
        scorer, adapted = predictor, 0
        if spec.adapt_batchnorm:
            scorer, adapted = adapted_predictor(predictor, lambda: (b.x for b in open_test_set(spec).batches()),
                                                spec.root)
        result = evaluate_test_set(scorer, spec)
        result.report["batchnorm_adapted_on"] = adapted or None  # exams of the set the statistics came from
        write_test_set(result, output_dir)
        print_test_set(result.report, console)
        scalars = flat_scalars(result.report)
        for logger in loggers or []:
            logger.log_metrics(scalars)
        reports[spec.name] = result.report
    return reports

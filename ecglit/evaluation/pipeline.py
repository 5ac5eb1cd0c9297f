"""From predictions and labels to every output of an evaluation: tables, figures and report.md."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.agreement import agreement_table
from ecglit.evaluation.binary_stats import METRICS, apply_thresholds
from ecglit.evaluation.bootstrap import bootstrap_scores
from ecglit.evaluation.figures import plot_bootstrap_boxes, plot_precision_recall
from ecglit.evaluation.io import check_probabilities
from ecglit.evaluation.pr_curves import precision_recall_curves
from ecglit.evaluation.report import write_markdown
from ecglit.evaluation.seeds import (
    ENSEMBLE,
    ensemble_probabilities,
    micro_average_precision,
    seed_table,
    select_model,
)
from ecglit.evaluation.tables import confusion_table, operating_points, score_table
from ecglit.utils.io import atomic_path, refuse_existing

# Every file run_report may write (figures only with ReportOptions.figures, the seed/threshold tables only
# with model probabilities).
REPORT_FILES = ("table2.csv", "agreement.csv", "confusion_matrices.csv", "seeds.csv", "thresholds.csv",
                "model_labels.csv", "precision_recall.png", *(f"bootstrap_{m}.png" for m in METRICS), "report.md")


@dataclass
class ReportInputs:
    """What is evaluated. `model_probs`: {name: probabilities (N, C)}, one per seed (may be empty when
    only annotators are compared); `annotators`: {name: 0/1 labels (N, C)}; `target`: reference (N, C);
    `extra_raters`: more 0/1 labels compared in agreement.csv only (e.g. the paper's two cardiologists)."""

    target: np.ndarray
    model_probs: dict[str, np.ndarray] = field(default_factory=dict)
    thresholds: np.ndarray | None = None
    annotators: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: tuple[str, ...] = CLASSES
    model_name: str = "DNN"
    select: str | int = "median"
    extra_raters: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class ReportOptions:
    n_resamples: int = 1000
    seed: int = 123
    level: float = 0.95
    ci_method: str = "linear"
    figures: bool = True
    title: str = "ecglit evaluation"


@dataclass
class ReportResult:
    output_dir: Path
    table2: pd.DataFrame
    agreement: pd.DataFrame
    confusion: pd.DataFrame
    seeds: pd.DataFrame | None
    selected: str | None
    thresholds: np.ndarray | None
    files: dict[str, Path]
    micro_ap: dict[str, float] = field(default_factory=dict)


def _check_inputs(inputs: ReportInputs) -> None:
    n_items, n_classes = inputs.target.shape
    if n_classes != len(inputs.class_names):
        raise DataError(None, f"reference has {n_classes} columns, expected {len(inputs.class_names)}")
    for name, probs in inputs.model_probs.items():
        check_probabilities(probs, name, n_classes, n_items)
    for name, labels in {**inputs.annotators, **inputs.extra_raters}.items():
        if labels.shape != inputs.target.shape:
            raise DataError(name, f"labels have shape {labels.shape}, expected {inputs.target.shape}")
    if inputs.model_probs and inputs.thresholds is None:
        raise ConfigError("thresholds are needed to turn the model's probabilities into labels")
    if inputs.thresholds is not None and np.shape(inputs.thresholds) != (n_classes,):
        raise ConfigError(f"thresholds have shape {np.shape(inputs.thresholds)}, expected ({n_classes},)")
    names = [*([inputs.model_name] if inputs.model_probs else []), *inputs.annotators, *inputs.extra_raters]
    if len(set(names)) != len(names):
        raise ConfigError(f"predictor names must be unique, got {names}")
    if not inputs.model_probs and not inputs.annotators:
        raise ConfigError("nothing to evaluate: give model predictions and/or annotator labels")


def choose_model(inputs: ReportInputs) -> tuple[str | None, np.ndarray | None, dict[str, float]]:
    """(selected name, its probabilities, micro-AP per model) following `inputs.select`."""
    if not inputs.model_probs:
        return None, None, {}
    micro = {name: micro_average_precision(p, inputs.target) for name, p in inputs.model_probs.items()}
    selected = select_model(micro, inputs.select)
    if selected == ENSEMBLE:
        return selected, ensemble_probabilities(inputs.model_probs), micro
    return selected, inputs.model_probs[selected], micro


def _summary(inputs: ReportInputs, selected: str | None, micro: Mapping[str, float],
             options: ReportOptions) -> list[str]:
    positives = ", ".join(f"{c} {int(n)}" for c, n in zip(inputs.class_names, inputs.target.sum(axis=0)))
    lines = [f"exams: {inputs.target.shape[0]}; positives in the reference: {positives}"]
    if selected is not None:
        order = ", ".join(f"{n} {v:.4f}" for n, v in sorted(micro.items(), key=lambda kv: kv[1]))
        thresholds = ", ".join(f"{c} {t:g}" for c, t in zip(inputs.class_names, inputs.thresholds))
        lines += [f"models ranked by micro-averaged AP (ascending): {order}",
                  f"{inputs.model_name} = `{selected}` (rule: select={inputs.select!r}); thresholds: {thresholds}"]
    if inputs.annotators:
        lines.append("annotators: " + ", ".join(inputs.annotators))
    if inputs.extra_raters:
        lines.append("also in the agreement tables: " + ", ".join(inputs.extra_raters))
    lines.append(f"bootstrap: {options.n_resamples} paired resamples of the exams, seed {options.seed}, "
                 f"{options.level * 100:g}% percentile intervals (numpy method {options.ci_method!r})")
    return lines


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path, overwrite=True) as tmp:  # run_report refused existing files first
        frame.to_csv(tmp, index=False)


def run_report(inputs: ReportInputs, output_dir: str | Path, options: ReportOptions | None = None,
               overwrite: bool = False) -> ReportResult:
    """Compute every table and figure for `inputs` and write them into `output_dir`. A folder that already
    holds any of REPORT_FILES is refused before anything is computed, unless ``overwrite``."""
    options = options or ReportOptions()
    _check_inputs(inputs)
    out = Path(output_dir)
    refuse_existing([out / name for name in REPORT_FILES], overwrite)
    classes = inputs.class_names
    selected, selected_probs, micro = choose_model(inputs)

    predictors: dict[str, np.ndarray] = {}
    if selected_probs is not None:
        predictors[inputs.model_name] = apply_thresholds(selected_probs, inputs.thresholds)
    predictors.update(inputs.annotators)
    names = list(predictors)
    boot = bootstrap_scores(np.stack([predictors[n] for n in names]), inputs.target, options.n_resamples,
                            options.seed, options.level, options.ci_method)
    table2 = score_table(predictors, inputs.target, classes, boot, options.ci_method)
    agreement = agreement_table({**predictors, **inputs.extra_raters}, inputs.target, classes)
    confusion = confusion_table(predictors, inputs.target, classes)

    files: dict[str, Path] = {}
    for key, frame in (("table2", table2), ("agreement", agreement), ("confusion_matrices", confusion)):
        files[key] = out / f"{key}.csv"
        _write_csv(frame, files[key])
    seeds = None
    if inputs.model_probs:
        seeds = seed_table(inputs.model_probs, inputs.target, inputs.thresholds, classes)
        files["seeds"] = out / "seeds.csv"
        _write_csv(seeds, files["seeds"])
        files["thresholds"] = out / "thresholds.csv"
        _write_csv(pd.DataFrame({"class": classes, "threshold": inputs.thresholds}), files["thresholds"])
        files["model_labels"] = out / "model_labels.csv"  # the selected model's thresholded 0/1 output
        _write_csv(pd.DataFrame(predictors[inputs.model_name], columns=list(classes)), files["model_labels"])

    figures: list[Path] = []
    if options.figures:
        figures = _write_figures(out, inputs, selected, selected_probs, table2, boot.replicates, names, options)
        files.update({f.stem: f for f in figures})
    files["report"] = write_markdown(out / "report.md", options.title, _summary(inputs, selected, micro, options),
                                     table2, agreement, confusion, seeds, selected, figures, classes, options.level)
    return ReportResult(out, table2, agreement, confusion, seeds, selected, inputs.thresholds, files, micro)


def _write_figures(out: Path, inputs: ReportInputs, selected: str | None, selected_probs: np.ndarray | None,
                   table2: pd.DataFrame, replicates: np.ndarray, names: Sequence[str],
                   options: ReportOptions) -> list[Path]:
    classes = inputs.class_names
    figures = []
    if selected_probs is not None:
        curves = {name: precision_recall_curves(p, inputs.target) for name, p in inputs.model_probs.items()}
        chosen = curves.get(selected) or precision_recall_curves(selected_probs, inputs.target)
        figures.append(plot_precision_recall(out / "precision_recall.png", classes, curves, selected, chosen,
                                             operating_points(table2, classes), inputs.model_name))
    note = f" ({options.n_resamples} resamples of the {inputs.target.shape[0]} exams)"
    for m, metric in enumerate(METRICS):
        figures.append(plot_bootstrap_boxes(out / f"bootstrap_{metric}.png", metric, replicates[..., m],
                                            names, classes, note))
    return figures

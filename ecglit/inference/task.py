"""The task behind predict.py: checkpoint + input -> CSV of probabilities and labels (+ optional plots)."""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig
from tqdm import tqdm

from ecglit.data.importers.cli import options_from_config
from ecglit.errors import ConfigError, DataError
from ecglit.inference.adaptation import adapt_to_exams
from ecglit.inference.predictor import NON_FINITE_OUTPUT, Predictor, resolve_device
from ecglit.models.checkpoint import load_classifier
from ecglit.data.sources import ExamBatch, PredictionSource, open_source
from ecglit.utils.io import atomic_open, ensure_dir, refuse_existing

log = logging.getLogger(__name__)
PLOT_MODULE = "ecglit.plotting.ecg12"


def _plotter():
    try:
        from ecglit.plotting.ecg12 import plot_ecg12
    except ImportError as e:
        raise ConfigError(f"plot=true needs {PLOT_MODULE}.plot_ecg12, which cannot be imported ({e})"
                          ) from None
    return plot_ecg12


def _title(exam_id: Any, probs: np.ndarray, labels: np.ndarray, classes: list[str]) -> str:
    found = [f"{c} {p:.2f}" for c, p, y in zip(classes, probs, labels, strict=True) if y]
    return f"{exam_id}: " + (", ".join(found) if found else "no abnormality above threshold")


def _safe_name(exam_id: Any) -> str:
    return re.sub(r"[^\w.#-]+", "_", str(exam_id))


def check_outputs(output: str | Path, plot_dir: str | Path | None, overwrite: bool) -> None:
    """Refuse an existing ``output`` CSV or a ``plot_dir`` that already holds files, unless ``overwrite``;
    create the output's folder."""
    refuse_existing([output], overwrite)
    ensure_dir(Path(output).parent)
    if plot_dir is not None and Path(plot_dir).is_dir():
        refuse_existing(sorted(Path(plot_dir).iterdir())[:1], overwrite)


def write_predictions(predictor: Predictor, source: PredictionSource, output: str | Path,
                      plot_dir: str | Path | None = None, progress: bool = True, overwrite: bool = False) -> int:
    """Stream ``source`` through ``predictor`` into the CSV ``output``; returns the number of exams.

    The CSV appears (atomically) only when complete; an existing one is refused unless ``overwrite``."""
    output = Path(output)
    check_outputs(output, plot_dir, overwrite)
    plot = _plotter() if plot_dir is not None else None
    if plot_dir is not None:
        ensure_dir(plot_dir)
    columns = [source.id_column, *predictor.columns, *source.extra_columns]
    n = 0
    with atomic_open(output, "w", overwrite, newline="") as f, tqdm(
            total=source.total, unit="exam", desc="predicting", disable=not progress) as bar:
        writer = csv.writer(f)
        writer.writerow(columns)
        batch: ExamBatch
        for batch in source.batches():
            probs, scored = predictor.predict_finite(batch.x)
            labels = predictor.labels(probs)
            for i, exam_id in enumerate(batch.ids):
                if not scored[i]:
                    source.skipped.append((str(exam_id), NON_FINITE_OUTPUT))
                    continue
                extra = batch.extra[i] if batch.extra else {}
                writer.writerow([exam_id, *(f"{p:.6g}" for p in probs[i]), *labels[i].tolist(),
                                 *(extra.get(c, "") for c in source.extra_columns)])
                if plot is not None:
                    plot(batch.x[i], title=_title(exam_id, probs[i], labels[i], predictor.class_names),
                         path=Path(plot_dir) / f"{_safe_name(exam_id)}.png")
            n += int(scored.sum())
            bar.update(len(batch.ids))
        if n == 0:  # nothing is written for an input without exams
            raise DataError(source.path, "no exam could be predicted")
    return n


def run_prediction(cfg: DictConfig) -> int:
    """The job of ecglit-predict / predict.py (conf/predict.yaml); returns the number of exams."""
    if not cfg.get("ckpt"):
        raise ConfigError("ckpt=PATH is required (an ECGClassifier checkpoint)")
    plot_dir = None
    if cfg.plot:
        out = Path(cfg.output)
        plot_dir = Path(cfg.plot_dir) if cfg.get("plot_dir") else out.parent / f"{out.stem}_plots"
    check_outputs(cfg.output, plot_dir, bool(cfg.overwrite))  # before the slow part
    scale = None if cfg.get("input_scale") is None else float(cfg.input_scale)
    module = load_classifier(cfg.ckpt, map_location="cpu", input_scale=scale)
    scale = float(module.hparams.get("input_scale", 1.0)) if scale is None else scale
    import_options = options_from_config(cfg.records)

    def open_input(path: str) -> PredictionSource:
        return open_source(path, cfg.batch_size, import_options, long_records=cfg.records.long_records,
                           strict=cfg.records.strict)

    if cfg.get("adapt_batchnorm"):  # before the backend is built: a compiled graph freezes the statistics
        adapt_on = str(cfg.get("adapt_on") or cfg.input)
        device = resolve_device(cfg.device)
        module.to(device)
        n_adapt = adapt_to_exams(module.net, lambda: (b.x for b in open_input(adapt_on).batches()), scale,
                                 int(cfg.batch_size), adapt_on, device)
        log.info("BatchNorm statistics re-estimated on %d unlabelled exams of %s", n_adapt, adapt_on)
    predictor = Predictor.from_module(module, input_scale=scale, batch_size=cfg.batch_size, device=cfg.device,
                                      precision=str(cfg.precision), backend=cfg.backend)
    source = open_input(str(cfg.input))
    n = write_predictions(predictor, source, cfg.output, plot_dir, progress=cfg.progress,
                          overwrite=bool(cfg.overwrite))
    if source.skipped:
        log.warning("%d exam(s) or record(s) could not be scored and have no row: %s%s", len(source.skipped),
                    "; ".join(f"{p}: {why}" for p, why in source.skipped[:10]),
                    "; ..." if len(source.skipped) > 10 else "")
    log.info("wrote %d prediction(s) to %s (input_scale %g, thresholds %s)", n, cfg.output,
             predictor.input_scale, [round(float(t), 4) for t in predictor.thresholds])
    return n

"""ecglit's programs, one function each: the console scripts ``ecglit-<name>`` (pyproject.toml
[project.scripts]); ``train.py``, ``evaluate.py`` and ``predict.py`` in a checkout call the same functions.

Each runs a task ``f(cfg)`` over its config ``conf/<name>.yaml`` behind the one error boundary of
:mod:`ecglit.utils.cli`. A new program is three lines here plus its config, e.g.::

    def calibrate(program: str = "ecglit-calibrate") -> None:
        \"\"\"ecglit-calibrate: ... (conf/calibrate.yaml).\"\"\"
        run_hydra_program(program, "calibrate", "ecglit.calibration.task:calibrate")

and ``ecglit-calibrate = "ecglit.cli:calibrate"`` under [project.scripts].
"""

from __future__ import annotations

from ecglit.utils.cli import run_hydra_program


def train(program: str = "ecglit-train") -> None:
    """ecglit-train: train, test the best checkpoint, report (conf/train.yaml)."""
    run_hydra_program(program, "train", "ecglit.training:run_training")


def evaluate(program: str = "ecglit-evaluate") -> None:
    """ecglit-evaluate: Table 2-style report of a checkpoint or of prediction files (conf/evaluate.yaml)."""
    run_hydra_program(program, "evaluate", "ecglit.evaluation.task:evaluate")


def predict(program: str = "ecglit-predict") -> None:
    """ecglit-predict: a checkpoint's probabilities and labels for shards, HDF5 or records, as CSV
    (conf/predict.yaml)."""
    run_hydra_program(program, "predict", "ecglit.inference.task:run_prediction")


def convert(program: str = "ecglit-convert") -> None:
    """ecglit-convert: ECG records (WFDB, CinC, CPSC, PTB-XL, arrays) to shards (conf/convert.yaml)."""
    run_hydra_program(program, "convert", "ecglit.data.convert:run")


def synthesize(program: str = "ecglit-synthesize") -> None:
    """ecglit-synthesize: synthetic 12-lead exams as shards, or example figures (conf/synthesize.yaml)."""
    run_hydra_program(program, "synthesize", "ecglit.data.synthesize:run")


def summarize(program: str = "ecglit-summarize") -> None:
    """ecglit-summarize SWEEP_DIR [--metric M] [--out DIR]: tables and a plot of a multirun (argparse)."""
    from ecglit.sweeps.summarize import main

    raise SystemExit(main(prog=program))

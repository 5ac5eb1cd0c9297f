"""ecglit's programs, one function each: the console scripts ``ecglit-<name>`` (pyproject.toml
[project.scripts]); ``train.py``, ``evaluate.py`` and ``predict.py`` in a checkout call the same functions.

Each runs a task ``f(cfg)`` over its config ``conf/<name>.yaml`` behind the one error boundary of
:mod:`ecglit.utils.cli` (the task is named as text, so it is imported only once the overrides compose).
A new program is three lines here plus its config, e.g.::

    def calibrate(program: str = "ecglit-calibrate") -> None:
        \"\"\"ecglit-calibrate: ... (conf/calibrate.yaml).\"\"\"
        _hydra(program, "calibrate", "ecglit.calibration.task:calibrate")

and ``ecglit-calibrate = "ecglit.cli:calibrate"`` under [project.scripts].
"""

from __future__ import annotations

from ecglit.configs import register_configs
from ecglit.utils.cli import run_hydra_program


def _hydra(program: str, config_name: str, task: str) -> None:
    run_hydra_program(program, config_name, task, register=register_configs)


def train(program: str = "ecglit-train") -> None:
    """ecglit-train: train, test the best checkpoint, report (conf/train.yaml)."""
    _hydra(program, "train", "ecglit.training:run_training")


def evaluate(program: str = "ecglit-evaluate") -> None:
    """ecglit-evaluate: Table 2-style report of a checkpoint or of prediction files (conf/evaluate.yaml)."""
    _hydra(program, "evaluate", "ecglit.evaluation.task:evaluate")


def predict(program: str = "ecglit-predict") -> None:
    """ecglit-predict: a checkpoint's probabilities and labels for shards, HDF5 or records, as CSV
    (conf/predict.yaml)."""
    _hydra(program, "predict", "ecglit.inference.task:run_prediction")


def convert(program: str = "ecglit-convert") -> None:
    """ecglit-convert: ECG records (WFDB, CinC, CPSC, PTB-XL, arrays) to shards (conf/convert.yaml)."""
    _hydra(program, "convert", "ecglit.data.convert:run")


def synthesize(program: str = "ecglit-synthesize") -> None:
    """ecglit-synthesize: synthetic 12-lead exams as shards, or example figures (conf/synthesize.yaml)."""
    _hydra(program, "synthesize", "ecglit.data.synthesize:run")


def calibrate(program: str = "ecglit-calibrate") -> None:
    """ecglit-calibrate: re-choose a checkpoint's thresholds on a labelled set (conf/calibrate.yaml)."""
    _hydra(program, "calibrate", "ecglit.calibrate:calibrate")


def summarize(program: str = "ecglit-summarize") -> None:
    """ecglit-summarize SWEEP_DIR [--metric M] [--out DIR]: tables and a plot of a multirun (argparse)."""
    from ecglit.sweeps.summarize import main

    raise SystemExit(main(prog=program))


def from_keras(program: str = "ecglit-from-keras") -> None:
    """ecglit-from-keras SRC.hdf5 OUT.ckpt: the paper's published Keras weights as a checkpoint (argparse)."""
    from ecglit.models.from_keras import main

    raise SystemExit(main(prog=program))

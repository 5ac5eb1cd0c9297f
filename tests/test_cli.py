"""Every program's error boundary, table-driven: a user error ends as exactly one stderr line
``<program>: error: ...`` naming the key or file, with exit code 2 (command line, configuration) or 1
(data, files), and nothing a user had is replaced.

The table runs in-process (ecglit.cli's functions with sys.argv set, Hydra and all: a second per case
instead of the seconds a Python process with torch costs); a few real processes check that nothing else
reaches stderr, and the whole table runs as processes in the slow suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch
from helpers.shards import write_code_test_fixture
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from ecglit import cli
from ecglit.constants import CLASSES

REPO = Path(__file__).resolve().parents[1]

# program -> (function, name in-process, how a process runs it)
PROGRAMS: dict[str, tuple[Callable[..., None], str, list[str]]] = {
    "train": (cli.train, "ecglit-train", ["train.py"]),
    "evaluate": (cli.evaluate, "ecglit-evaluate", ["evaluate.py"]),
    "predict": (cli.predict, "ecglit-predict", ["predict.py"]),
    "convert": (cli.convert, "ecglit-convert", ["-m", "ecglit.data.convert"]),
    "synthesize": (cli.synthesize, "ecglit-synthesize", ["-m", "ecglit.data.synthesize"]),
    "summarize": (cli.summarize, "ecglit-summarize", ["-m", "ecglit.sweeps.summarize"]),
    "from_keras": (cli.from_keras, "ecglit-from-keras", ["-m", "ecglit.models.from_keras"]),
    "calibrate": (cli.calibrate, "ecglit-calibrate", ["-m", "ecglit.calibrate"]),
}
PROCESS_NAMES = {"train": "train.py", "evaluate": "evaluate.py", "predict": "predict.py",
                 "convert": "ecglit.data.convert", "synthesize": "ecglit.data.synthesize",
                 "summarize": "python -m ecglit.sweeps.summarize",
                 "from_keras": "python -m ecglit.models.from_keras", "calibrate": "ecglit.calibrate"}


# --- inputs ------------------------------------------------------------------------------------------
def _tiny_checkpoint(path: Path) -> Path:
    from ecglit.models.ecg_module import ECGClassifier

    torch.manual_seed(0)
    net = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / "resnet_tiny.yaml"))
    module = ECGClassifier(net=net)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    data = TensorDataset(torch.randn(4, 12, 4096), (torch.rand(4, len(CLASSES)) < 0.3).float())
    trainer.fit(module, DataLoader(data, batch_size=4))
    trainer.save_checkpoint(path)
    return path


def _fake_sweep(root: Path, test_metrics: str) -> Path:
    job = root / "0"
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("- seed=1\n")
    (job / "test_metrics.json").write_text(test_metrics)
    return root


@pytest.fixture(scope="module")
def d(tmp_path_factory) -> SimpleNamespace:
    """Inputs shared by the table: good ones, corrupt ones and outputs that belong to the user."""
    root = tmp_path_factory.mktemp("cli")
    d = SimpleNamespace(root=root, nowhere=root / "nowhere", blocker=root / "a_file")
    d.blocker.write_text("a file where a folder would go\n")
    d.corrupt = root / "corrupt.hdf5"
    d.corrupt.write_bytes(b"this is not HDF5, only named so\n" * 4)
    d.corrupt_shards = root / "corrupt_shards"  # CODE-15% layout whose shard is garbage
    d.corrupt_shards.mkdir()
    (d.corrupt_shards / "exams_part0.hdf5").write_bytes(d.corrupt.read_bytes())
    (d.corrupt_shards / "exams.csv").write_text("exam_id,patient_id,1dAVb,RBBB,LBBB,SB,AF,ST\n1,1,0,0,0,0,0,0\n")
    d.corrupt_code_test = root / "corrupt_code_test"
    write_code_test_fixture(d.corrupt_code_test, n_exams=4)
    (d.corrupt_code_test / "ecg_tracings.hdf5").write_bytes(d.corrupt.read_bytes())
    d.ckpt = _tiny_checkpoint(root / "tiny.ckpt")
    rng = np.random.default_rng(0)
    d.gold = root / "gold.csv"
    pd.DataFrame((rng.random((20, 6)) < 0.3).astype(int), columns=list(CLASSES)).to_csv(d.gold, index=False)
    d.probs = root / "probs.npy"
    np.save(d.probs, rng.random((20, 6)).astype(np.float32))
    # outputs the user already has
    d.finished_run = root / "finished_run"
    d.finished_run.mkdir()
    (d.finished_run / "test_metrics.json").write_text('{"mine": true}')
    d.old_report = root / "old_report"
    d.old_report.mkdir()
    (d.old_report / "table2.csv").write_text("my own table\n")
    d.existing_csv = root / "existing.csv"
    d.existing_csv.write_text("exam_id,prob_AF\n1,0.5\n")
    d.existing_ckpt = root / "mine.ckpt"
    d.existing_ckpt.write_bytes(b"an earlier checkpoint")
    d.user_folder = root / "user_folder"
    d.user_folder.mkdir()
    (d.user_folder / "exams.csv").write_text("my,own,labels\n")
    good_metrics = json.dumps({"macro": {"f1": 0.5}, "per_class": {"AF": {"f1": 0.5}}})
    d.sweep = _fake_sweep(root / "sweep", good_metrics)
    d.summarized = _fake_sweep(root / "summarized", good_metrics)
    (d.summarized / "summary.csv").write_text("my notes\n")
    d.corrupt_sweep = _fake_sweep(root / "corrupt_sweep", "{not json")
    return d


# --- the table -----------------------------------------------------------------------------------------
@dataclass
class Case:
    program: str
    name: str
    args: Callable[[SimpleNamespace, Path], list[str]]  # (inputs, this case's own folder) -> arguments
    code: int
    says: Callable[[SimpleNamespace], list[str]]  # what the error line must contain
    unchanged: Callable[[SimpleNamespace], Path] | None = None  # a user's file the run must not touch
    tags: tuple[str, ...] = field(default=())


def _train(*args: str) -> Callable[[SimpleNamespace, Path], list[str]]:
    def build(d: SimpleNamespace, tmp: Path) -> list[str]:
        given = [a.format(d=d) for a in args]
        run = [] if any(a.startswith("hydra.run.dir=") for a in given) else [f"hydra.run.dir={tmp / 'run'}"]
        return ["logger=none", f"paths.data_dir={tmp / 'data'}", *run, *given]
    return build


def _hydra(*args: str) -> Callable[[SimpleNamespace, Path], list[str]]:
    def build(d: SimpleNamespace, tmp: Path) -> list[str]:
        given = [a.format(d=d, tmp=tmp) for a in args]
        run = [] if any(a.startswith("hydra.run.dir=") for a in given) else [f"hydra.run.dir={tmp / 'run'}"]
        return [*run, *given]
    return build


def _plain(*args: str) -> Callable[[SimpleNamespace, Path], list[str]]:
    return lambda d, tmp: [a.format(d=d, tmp=tmp) for a in args]


def _says(*parts: str) -> Callable[[SimpleNamespace], list[str]]:
    return lambda d: [p.format(d=d) for p in parts]


EVAL_B = ("logger=none", "report.labels={d.gold}", "report.predictions=[{d.probs}]", "report.figures=false",
          "report.bootstrap.n_resamples=10")
PREDICT = ("ckpt={d.ckpt}", "progress=false")
SYNTH = ("n=4", "workers=1", "progress=false")
CALIBRATE = ("ckpt={d.ckpt}", "n_resamples=10")
CASES = [
    # train
    Case("train", "unknown key", _train("model.dropoutt=0.5"), 2, _says("model.dropoutt", "did you mean dropout")),
    Case("train", "bad value", _train("model.dropout=1.5"), 2, _says("model.dropout is a drop probability")),
    Case("train", "bad split", _train("data.split=date"), 2, _says("data.split must be", "'date'")),
    Case("train", "unknown generator key", _train("data.generator.bogus=1"), 2,
         _says("data.generator.bogus: no such key", "valid keys in data.generator:", "noise_scale")),
    Case("train", "bad generator type", _train("data.generator.noise_scale=loud"), 2,
         _says("data.generator.noise_scale", "'loud'")),
    Case("train", "negative batch", _train("data.batch_size=-1"), 2, _says("data.batch_size must be >= 1")),
    Case("train", "unknown group option", _train("model=resnet_huge"), 2,
         _says("model=resnet_huge", "resnet_small")),
    Case("train", "missing mandatory", _train("data=code15"), 2, _says("data.root", "missing mandatory")),
    Case("train", "missing input", _train("data=code15", "data.root={d.nowhere}"), 1, _says("{d.nowhere}")),
    Case("train", "corrupt input", _train("data=code15", "data.root={d.corrupt_shards}", "data.num_workers=0"), 1,
         _says("{d.corrupt_shards}/exams_part0.hdf5")),
    Case("train", "existing output", _train("hydra.run.dir={d.finished_run}"), 1,
         _says("{d.finished_run}/test_metrics.json: already exists", "overwrite=true"),
         unchanged=lambda d: d.finished_run / "test_metrics.json"),
    Case("train", "uncreatable output", _train("hydra.run.dir={d.blocker}/run"), 1, _says("{d.blocker}/run")),
    # evaluate
    Case("evaluate", "unknown key", _hydra("report.bogus=1"), 2, _says("report.bogus: no such key")),
    Case("evaluate", "bad value", _hydra(*EVAL_B, "report.thresholds=[0.5]"), 2,
         _says("report.thresholds must be 6 numbers")),
    Case("evaluate", "unknown group option", _hydra("report=ribeiro2021"), 2, _says("report=ribeiro2021")),
    Case("evaluate", "missing mandatory", _hydra("ckpt_path={d.ckpt}", "data=code_test", "logger=none"), 2,
         _says("data.test_root", "missing mandatory")),
    Case("evaluate", "missing input", _hydra("logger=none", "report.labels={d.nowhere}.csv"), 1,
         _says("{d.nowhere}.csv")),
    Case("evaluate", "corrupt input", _hydra("ckpt_path={d.ckpt}", "data=code_test", "logger=none",
                                             "data.test_root={d.corrupt_code_test}", "data.num_workers=0"), 1,
         _says("{d.corrupt_code_test}/ecg_tracings.hdf5")),
    Case("evaluate", "existing output", _hydra(*EVAL_B, "report.thresholds=[0.5,0.5,0.5,0.5,0.5,0.5]",
                                               "hydra.run.dir={d.old_report}"), 1,
         _says("{d.old_report}/table2.csv: already exists"), unchanged=lambda d: d.old_report / "table2.csv"),
    Case("evaluate", "uncreatable output", _hydra(*EVAL_B, "hydra.run.dir={d.blocker}/report"), 1,
         _says("{d.blocker}/report")),
    # predict
    Case("predict", "unknown key", _hydra(*PREDICT, "records.bogus=1"), 2, _says("records.bogus: no such key")),
    Case("predict", "bad value", _hydra(*PREDICT, "input={d.corrupt}", "output={tmp}/p.csv", "batch_size=-1"), 2,
         _says("batch_size must be positive")),
    Case("predict", "missing mandatory", _hydra(), 2, _says("ckpt, input, output: missing mandatory values")),
    Case("predict", "missing input", _hydra(*PREDICT, "input={d.nowhere}", "output={tmp}/p.csv"), 1,
         _says("{d.nowhere}: input does not exist")),
    Case("predict", "missing checkpoint", _hydra("ckpt={d.nowhere}.ckpt", "input={d.corrupt}",
                                                 "output={tmp}/p.csv"), 1, _says("{d.nowhere}.ckpt")),
    Case("predict", "corrupt input", _hydra(*PREDICT, "input={d.corrupt}", "output={tmp}/p.csv"), 1,
         _says("{d.corrupt}: cannot open as HDF5")),
    Case("predict", "existing output", _hydra(*PREDICT, "input={d.corrupt}", "output={d.existing_csv}"), 1,
         _says("{d.existing_csv}: already exists"), unchanged=lambda d: d.existing_csv),
    Case("predict", "uncreatable output", _hydra(*PREDICT, "input={d.corrupt}", "output={d.blocker}/sub/p.csv"), 1,
         _says("{d.blocker}/sub: cannot create the output folder")),
    # convert
    Case("convert", "unknown key", _hydra("input={d.corrupt}", "output={tmp}/out", "gain_overide={{x:1}}"), 2,
         _says("gain_overide: no such key", "did you mean gain_override")),
    Case("convert", "bad value", _hydra("input={d.corrupt}", "output={tmp}/out", "long_records=sideways"), 2,
         _says("long_records must be one of")),
    Case("convert", "missing mandatory", _hydra(), 2, _says("input, output: missing mandatory values")),
    Case("convert", "missing input", _hydra("input={d.nowhere}", "output={tmp}/out"), 1, _says("{d.nowhere}")),
    Case("convert", "corrupt input", _hydra("input={d.corrupt}", "output={tmp}/out", "strict=true"), 1,
         _says("{d.corrupt}")),
    Case("convert", "existing output", _hydra("input={d.corrupt}", "output={d.user_folder}"), 1,
         _says("{d.user_folder}/exams.csv: already exists"), unchanged=lambda d: d.user_folder / "exams.csv"),
    Case("convert", "uncreatable output", _hydra("input={d.corrupt}", "output={d.blocker}/out"), 1,
         _says("{d.blocker}/out")),
    # synthesize (it reads no input)
    Case("synthesize", "unknown key", _hydra(*SYNTH, "generator.noise_scal=2"), 2,
         _says("generator.noise_scal: no such key (did you mean noise_scale?)")),
    Case("synthesize", "bad value", _hydra(*SYNTH, "out={tmp}/out", "generator.prevalence.AF=1.5"), 2,
         _says("prevalence['AF'] must be a probability")),
    Case("synthesize", "bad type", _hydra(*SYNTH, "out={tmp}/out", "n=many"), 2, _says("n must be")),
    Case("synthesize", "missing mandatory", _hydra(*SYNTH, "out=???"), 2, _says("out: missing mandatory value")),
    Case("synthesize", "existing output", _hydra(*SYNTH, "out={d.user_folder}"), 1,
         _says("{d.user_folder}/exams.csv: already exists"), unchanged=lambda d: d.user_folder / "exams.csv"),
    Case("synthesize", "uncreatable output", _hydra(*SYNTH, "out={d.blocker}/out"), 1, _says("{d.blocker}/out")),
    # summarize (argparse)
    Case("summarize", "unknown option", _plain("{d.sweep}", "--metrc", "x"), 2, _says("--metrc")),
    Case("summarize", "bad value", _plain("{d.sweep}", "--metric", "test/nope", "--out", "{tmp}/s"), 2,
         _says("--metric 'test/nope' is not in the sweep's results")),
    Case("summarize", "missing mandatory", _plain(), 2, _says("sweep_dir")),
    Case("summarize", "missing input", _plain("{d.nowhere}"), 1, _says("{d.nowhere}: not a directory")),
    Case("summarize", "corrupt input", _plain("{d.corrupt_sweep}", "--out", "{tmp}/s"), 1,
         _says("{d.corrupt_sweep}/0/test_metrics.json")),
    Case("summarize", "existing output", _plain("{d.summarized}"), 1,
         _says("{d.summarized}/summary.csv: already exists", "--overwrite"),
         unchanged=lambda d: d.summarized / "summary.csv"),
    Case("summarize", "uncreatable output", _plain("{d.sweep}", "--out", "{d.blocker}/s"), 1,
         _says("{d.blocker}/s")),
    # calibrate
    Case("calibrate", "unknown key", _hydra("rul=max_f1"), 2, _says("rul: no such key (did you mean rule?)")),
    Case("calibrate", "bad value", _hydra(*CALIBRATE, "input={d.corrupt}", "out={tmp}/c.ckpt", "rule=sensitivity:2"),
         2, _says("rule must be max_f1, sensitivity:<0..1>", "'sensitivity:2'")),
    Case("calibrate", "missing mandatory", _hydra(), 2, _says("ckpt, input, out: missing mandatory values")),
    Case("calibrate", "missing input", _hydra(*CALIBRATE, "input={d.nowhere}", "out={tmp}/c.ckpt"), 1,
         _says("{d.nowhere}")),
    Case("calibrate", "corrupt input", _hydra(*CALIBRATE, "input={d.corrupt}", "out={tmp}/c.ckpt"), 1,
         _says("{d.corrupt}")),
    Case("calibrate", "existing output", _hydra(*CALIBRATE, "input={d.corrupt}", "out={d.existing_ckpt}"), 1,
         _says("{d.existing_ckpt}: already exists"), unchanged=lambda d: d.existing_ckpt),
    Case("calibrate", "uncreatable output", _hydra(*CALIBRATE, "input={d.corrupt}", "out={d.blocker}/sub/c.ckpt"),
         1, _says("{d.blocker}/sub: cannot create the output folder")),
    # from_keras (argparse)
    Case("from_keras", "unknown option", _plain("{d.corrupt}", "{tmp}/p.ckpt", "--inputscale", "2"), 2,
         _says("unrecognized arguments: --inputscale")),
    Case("from_keras", "bad value", _plain("{d.corrupt}", "{tmp}/p.ckpt", "--input-scale", "-1"), 2,
         _says("input_scale must be a positive finite number")),
    Case("from_keras", "missing mandatory", _plain("{d.corrupt}"), 2, _says("required: out")),
    Case("from_keras", "missing input", _plain("{d.nowhere}.hdf5", "{tmp}/p.ckpt"), 1, _says("{d.nowhere}.hdf5")),
    Case("from_keras", "corrupt input", _plain("{d.corrupt}", "{tmp}/p.ckpt"), 1, _says("{d.corrupt}: not an HDF5")),
    Case("from_keras", "existing output", _plain("{d.corrupt}", "{d.existing_ckpt}"), 1,
         _says("{d.existing_ckpt}: already exists", "--overwrite"), unchanged=lambda d: d.existing_ckpt),
    Case("from_keras", "uncreatable output", _plain("{d.corrupt}", "{d.blocker}/sub/p.ckpt"), 1,
         _says("{d.blocker}/sub: cannot create the output folder")),
]


def _error_lines(stderr: str, program: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{program}: error:")]


def _check(case: Case, d: SimpleNamespace, program: str, code: int, stderr: str, before: str | None) -> None:
    lines = _error_lines(stderr, program)
    assert len(lines) == 1, f"expected one '{program}: error:' line, stderr was:\n{stderr}"
    for part in case.says(d):
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    assert code == case.code, lines[0]
    assert "Traceback" not in stderr and "HYDRA_FULL_ERROR" not in stderr and "Error executing job" not in stderr
    if case.unchanged is not None:
        assert case.unchanged(d).read_text() == before


def _ids(cases: list[Case]) -> list[str]:
    return [f"{c.program}-{c.name.replace(' ', '_')}" for c in cases]


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_user_error_is_one_line(case: Case, d, tmp_path, monkeypatch, capsys):
    function, name, _ = PROGRAMS[case.program]
    monkeypatch.chdir(tmp_path)  # nothing may land in the repository
    before = case.unchanged(d).read_text() if case.unchanged else None
    monkeypatch.setattr(sys, "argv", [name, *case.args(d, tmp_path)])
    with pytest.raises(SystemExit) as exit_info:
        function(name)
    _check(case, d, name, exit_info.value.code, capsys.readouterr().err, before)


def test_every_program_has_each_kind_of_case():
    kinds = {"unknown key", "bad value", "missing mandatory", "existing output", "uncreatable output"}
    for program in PROGRAMS:
        names = {c.name.replace("unknown option", "unknown key") for c in CASES if c.program == program}
        assert kinds <= names, (program, kinds - names)
        if program != "synthesize":  # the only program that reads no input
            assert {"missing input", "corrupt input"} <= names, program


# --- real processes ----------------------------------------------------------------------------------
def _process(program: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The program as a user starts it, from ``cwd`` (scripts by absolute path, the package on PYTHONPATH)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), WANDB_MODE="disabled")
    env.pop("HYDRA_FULL_ERROR", None)
    command = [str(REPO / a) if a.endswith(".py") else a for a in PROGRAMS[program][2]]
    return subprocess.run([sys.executable, *command, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300, check=False)


# (from_keras imports torch before parsing its arguments: the slow suite's)
FAST_PROCESS_CASES = [c for c in CASES if c.name in ("unknown key", "unknown option") and c.program != "from_keras"]


@pytest.mark.parametrize("case", FAST_PROCESS_CASES, ids=_ids(FAST_PROCESS_CASES))
def test_bad_override_in_a_real_process_is_the_only_stderr_line(case: Case, d, tmp_path):
    """Nothing else reaches stderr (Hydra prints several lines by itself), and nothing imports torch
    before the overrides are checked: a couple of seconds per call."""
    proc = _process(case.program, case.args(d, tmp_path), tmp_path)
    assert proc.stderr.count("\n") == 1, proc.stderr
    _check(case, d, PROCESS_NAMES[case.program], proc.returncode, proc.stderr, None)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_user_error_is_one_line_in_a_real_process(case: Case, d, tmp_path):
    before = case.unchanged(d).read_text() if case.unchanged else None
    proc = _process(case.program, case.args(d, tmp_path), tmp_path)
    _check(case, d, PROCESS_NAMES[case.program], proc.returncode, proc.stderr, before)


def test_a_bug_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    """Only user errors are shortened: an exception from a bug in the task comes out whole."""
    from ecglit.utils.cli import run_hydra_program

    def buggy(cfg):
        return {}["no such key in a dict"]

    monkeypatch.setattr(sys, "argv", ["prog", f"out={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}"])
    with pytest.raises(KeyError, match="no such key in a dict"):
        run_hydra_program("prog", "synthesize", buggy)
    assert "prog: error:" not in capsys.readouterr().err


def test_lightning_info_lines_go_through_the_configured_handlers_not_stderr(monkeypatch) -> None:
    """Lightning gives its loggers a stderr handler of their own; once a program has configured logging
    (Hydra: console on stdout, the run's log file), its "GPU available" lines go there instead."""
    import io
    import logging

    from ecglit.utils.cli import SELF_LOGGING_LIBRARIES, route_library_logs_to_hydra

    root, lightning_logger = logging.getLogger(), logging.getLogger("lightning.pytorch")
    for name in SELF_LOGGING_LIBRARIES:  # as Lightning leaves them when imported in a fresh process
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [logging.StreamHandler(sys.stderr)])  # restored afterwards
        monkeypatch.setattr(logger, "propagate", False)
    run_log = io.StringIO()
    monkeypatch.setattr(root, "handlers", [logging.StreamHandler(run_log)])
    route_library_logs_to_hydra()
    logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
    assert "GPU available" in run_log.getvalue()
    assert not lightning_logger.handlers and lightning_logger.propagate

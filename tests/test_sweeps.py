"""Sweeps: Hydra multiruns (one run dir and one W&B run per job), ablation presets, the Optuna search,
W&B sweep files, launcher configs and the sweep summary."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import struct
import subprocess
import sys
from pathlib import Path

import hydra
import pandas as pd
import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf, open_dict, read_write

from ecglit.errors import ConfigError, DataError
from ecglit.sweeps import summarize as summ
from ecglit.sweeps.wandb_group import apply_sweep_wandb_group

REPO = Path(__file__).resolve().parents[1]
ABLATIONS = sorted((REPO / "conf" / "experiment").glob("ablate_*.yaml"))
WANDB_SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))


def _compose(overrides: list[str], hydra_cfg: bool = False):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose("train", overrides=overrides, return_hydra_config=hydra_cfg)


def _select(cfg, key: str):
    """A composed value: ``group`` keys give the chosen option (hydra.runtime.choices)."""
    value = OmegaConf.select(cfg, key, throw_on_missing=True)
    if OmegaConf.is_config(value):  # a config group, e.g. model=resnet_small
        return cfg.hydra.runtime.choices[key]
    return value


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="1", WANDB_DIR=str(tmp / "wandb-home"),
                WANDB_CACHE_DIR=str(tmp / "wandb-home"), WANDB_CONFIG_DIR=str(tmp / "wandb-home"), **extra)


def _run(cmd: list[str], env: dict[str, str], timeout: int = 500) -> str:
    """``python cmd`` in its own process group: a hang kills the group (spawned workers too) and fails."""
    proc = subprocess.Popen([sys.executable, *cmd], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {out[-3000:]}")
    assert proc.returncode == 0, out[-5000:]
    return out


def read_wandb_records(path: Path) -> list:
    """Records of an offline ``run-<id>.wandb`` file (a LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, block, pos, payload, records = path.read_bytes(), 32768, 7, b"", []
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # block trailer
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:  # zero padding to the block end
            pos += left
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        payload = chunk if kind in (1, 2) else payload + chunk  # FULL/FIRST start a record
        if kind in (1, 4):  # FULL/LAST end it
            record = pb.Record()
            record.ParseFromString(payload)
            records.append(record)
    return records


# --- Hydra multirun -------------------------------------------------------------------------------
@pytest.mark.slow
def test_multirun_2x2_gives_four_jobs_four_wandb_runs_and_a_summary(tmp_path):
    sweep = tmp_path / "sweep"
    out = _run(["train.py", "-m", "experiment=smoke", "model.kernel_size=9,17", "seed=1,2", "data.n=128",
                f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}"],
               _env(tmp_path, WANDB_MODE="offline"))
    assert out.count("Launching") == 1 and "#3 :" in out
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert [p.name for p in jobs] == ["0", "1", "2", "3"]
    seen = set()
    for job in jobs:
        assert (job / "test_metrics.json").is_file() and (job / "checkpoints").is_dir()
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        seen.add(tuple(o for o in overrides if o.startswith(("model.kernel_size=", "seed="))))
        runs = list((job / "wandb").glob("offline-run-*/run-*.wandb"))
        assert len(runs) == 1, f"{job}: expected its own W&B run, found {runs}"
        records = read_wandb_records(runs[0])
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        exits = [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
        assert run.run_group == "smoke-sweep"  # grouped by sweep
        assert run.display_name.startswith(f"{job.name}:")
        assert exits == [0], "each job's W&B run is finished, with success"
    assert len(seen) == 4

    assert summ.main([str(sweep)]) == 0
    table = pd.read_csv(sweep / "summary.csv")
    assert len(table) == 4 and set(table["status"]) == {"ok"}
    assert sorted(zip(table["model.kernel_size"], table["seed"])) == [(9, 1), (9, 2), (17, 1), (17, 2)]
    for i, job in enumerate(jobs):
        report = json.loads((job / "test_metrics.json").read_text())
        assert str(table.loc[i, "job"]) == job.name
        assert table.loc[i, "test/f1_macro"] == pytest.approx(report["macro"]["f1"])
    markdown = (sweep / "summary.md").read_text()
    assert sum(line.startswith("| ") for line in markdown.splitlines()) == 1 + 4
    assert (sweep / "summary.png").stat().st_size > 5000


def test_wandb_group_is_set_from_the_sweep_in_multirun_only(tmp_path):
    cfg = _compose(["logger=wandb"], hydra_cfg=True)
    HydraConfig.instance().set_config(cfg)
    assert not apply_sweep_wandb_group(cfg) and cfg.logger.wandb.group == cfg.task_name  # a single run
    with read_write(cfg.hydra), open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
        cfg.hydra.sweep.dir = str(tmp_path / "2026-01-01_10-00-00")
        cfg.hydra.job.num = 3
        cfg.hydra.overrides.task = ["model.kernel_size=9", f"paths.data_dir={tmp_path}", "seed=2"]
    HydraConfig.instance().set_config(cfg)
    assert apply_sweep_wandb_group(cfg)
    assert cfg.logger.wandb.group == "train-2026-01-01_10-00-00"
    assert cfg.logger.wandb.name == "3:model.kernel_size=9,seed=2"  # path-valued overrides left out
    custom = _compose(["logger=wandb", "logger.wandb.group=mine"], hydra_cfg=True)
    with read_write(custom.hydra):
        custom.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(custom)
    apply_sweep_wandb_group(custom)
    assert custom.logger.wandb.group == "mine"


# --- summary --------------------------------------------------------------------------------------
def _fake_job(sweep: Path, num: int, overrides: list[str], f1: float | None) -> None:
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if f1 is not None:
        report = {"macro": {"f1": f1, "auroc": 0.5 + f1 / 2}, "n_exams": 10,
                  "per_class": {"AF": {"f1": f1, "auroc": None}}}
        (job / "test_metrics.json").write_text(json.dumps(report))


def test_summarize_tabulates_jobs_and_plots_swept_parameters(tmp_path):
    sweep = tmp_path / "sweep"
    grid = [(lr, k) for lr in (1e-4, 1e-3, 1e-2) for k in ("resnet_tiny", "resnet_small")]
    for num, (lr, model) in enumerate(grid):
        f1 = None if num == 4 else round(0.1 * num + (lr > 5e-4) * 0.05, 3)  # job 4 "crashed"
        _fake_job(sweep, num, ["experiment=smoke", f"module.optimizer.lr={lr}", f"model={model}",
                               f"paths.data_dir={tmp_path}", "+tags=[a,b]"], f1)
    (sweep / "10").mkdir()  # not a job directory: ignored
    csv_dir = sweep / "0" / "csv" / "version_0"  # the CSV logger's file: last logged values
    csv_dir.mkdir(parents=True)
    (csv_dir / "metrics.csv").write_text("epoch,step,lr-Adam,val/f1_macro\n0,5,0.001,0.2\n1,10,,0.3\n")
    frame = summ.collect(sweep)
    assert frame.loc[0, "val/f1_macro"] == 0.3 and frame.loc[0, "lr-Adam"] == 0.001
    assert "lr-Adam" in summ.metric_columns(frame) and "lr-Adam" not in summ.override_columns(frame)
    assert list(frame["job"]) == ["0", "1", "2", "3", "4", "5"]
    assert summ.swept_parameters(frame) == ["module.optimizer.lr", "model"]
    assert frame.loc[4, "status"] == summ.STATUS_MISSING and math.isnan(frame.loc[4, "test/f1_macro"])
    assert frame.loc[5, "test/f1_macro"] == pytest.approx(0.55)
    assert math.isnan(frame.loc[0, "test/auroc/AF"])  # null -> NaN

    paths = summ.summarize(sweep, metric="test/auroc_macro", out_dir=tmp_path / "out")
    assert pd.read_csv(paths["csv"]).shape[0] == 6
    markdown = paths["markdown"].read_text()
    assert "Common overrides: `experiment=smoke`" in markdown
    assert "Best test/auroc_macro: 0.775 (job 5: module.optimizer.lr=0.01, model=resnet_small)" in markdown
    assert paths["plot"].stat().st_size > 5000

    with pytest.raises(ConfigError, match="test/f1_macro"):
        summ.summarize(sweep, metric="val/nope")
    with pytest.raises(DataError, match="no job directories"):
        summ.collect(tmp_path / "out")
    with pytest.raises(SystemExit) as err:
        summ.main([str(tmp_path / "missing")])
    assert err.value.code == 1  # a data error (2 is for the command line)


# --- presets: ablations, Optuna, launchers --------------------------------------------------------
def _sweeper_values(spec) -> list[str]:
    return [v.strip() for v in str(spec).split(",")]


@pytest.mark.parametrize("preset", ABLATIONS, ids=[p.stem for p in ABLATIONS])
def test_ablation_presets_are_multiruns_over_existing_keys(preset):
    cfg = _compose([f"experiment={preset.stem}"], hydra_cfg=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert cfg.task_name == preset.stem
    params = cfg.hydra.sweeper.params
    assert params, f"{preset.name}: no hydra.sweeper.params"
    for key, spec in params.items():
        values = _sweeper_values(spec)
        assert len(values) >= 3, f"{preset.name}: sweep {key} over at least 3 values"
        for value in values:
            # a plain override (no "+"): the key exists with a default
            job = _compose([f"experiment={preset.stem}", f"{key}={value}"])
            assert str(_select(job, key)) == value
            if key == "ablation.depth":  # the preset builds a network (at a tiny width)
                net = hydra.utils.instantiate(job.model, width=0.05)
                assert len(net.units) == len(job.model.filters) and net(torch.zeros(1, 12, 4096)).shape == (1, 6)


@pytest.mark.slow
def test_ablation_preset_runs_a_learning_curve(tmp_path):
    sweep = tmp_path / "curve"
    _run(["train.py", "experiment=ablate_train_size", "data.train_fraction=0.25,1.0", "model=resnet_tiny",
          "data.n=128", "data.batch_size=32", "data.num_workers=0", "trainer.max_epochs=1", "logger=none",
          f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}"], _env(tmp_path, WANDB_MODE="disabled"))
    frame = summ.collect(sweep)
    assert list(frame["data.train_fraction"]) == [0.25, 1.0] and set(frame["status"]) == {"ok"}
    assert (frame["test/n_exams"] == frame.loc[0, "test/n_exams"]).all()  # test set unchanged
    used, n_train = map(int, re.search(r"training on (\d+) of (\d+) training exams",
                                       (sweep / "0" / "train.log").read_text()).groups())
    assert used == round(0.25 * n_train) and n_train > 64
    assert "training on" not in (sweep / "1" / "train.log").read_text()


def test_ablation_presets_cover_the_issue():
    swept = {k for p in ABLATIONS for k in _compose([f"experiment={p.stem}"], True).hydra.sweeper.params}
    assert swept == {"model.kernel_size", "model.width", "model.dropout", "data.input_scale",
                     "data.train_fraction", "ablation.depth"}
    depth = _compose(["experiment=ablate_depth"], True)
    units = {v: len(depth.ablation.depth_presets[v].filters) for v in _sweeper_values(
        depth.hydra.sweeper.params["ablation.depth"])}
    assert sorted(units.values()) == [2, 3, 4, 5, 6]
    kernels = {int(v) for v in _sweeper_values(_compose(["experiment=ablate_kernel"], True)
                                               .hydra.sweeper.params["model.kernel_size"])}
    assert {3, 9, 16, 17, 31} <= kernels


def test_optuna_search_config_composes_with_valid_params():
    cfg = _compose(["hparams_search=resnet_optuna", "experiment=smoke"], hydra_cfg=True)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and cfg.hydra.mode == RunMode.MULTIRUN
    assert sweeper.storage is None and sweeper.direction == "maximize"
    assert cfg.optimized_metric == "val/f1_macro"
    assert set(sweeper.params) == {"module.optimizer.lr", "model.dropout", "model.kernel_size", "model.width"}
    job = _compose(["experiment=smoke", "module.optimizer.lr=0.003", "model.dropout=0.3",
                    "model.kernel_size=31", "model.width=2.0"])
    assert (job.module.optimizer.lr, job.model.dropout, job.model.kernel_size, job.model.width) == \
        (0.003, 0.3, 31, 2.0)


@pytest.mark.slow
def test_optuna_search_runs_three_trials(tmp_path):
    sweep = tmp_path / "optuna"
    out = _run(["train.py", "hparams_search=resnet_optuna", "experiment=smoke", "data.n=128",
                "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.n_startup_trials=2", "logger=none",
                f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}"],
               _env(tmp_path, WANDB_MODE="disabled"))
    result = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert set(result["best_params"]) == {"module.optimizer.lr", "model.dropout", "model.kernel_size",
                                          "model.width"}
    assert 0.0 <= result["best_value"] <= 1.0
    assert 1e-4 <= result["best_params"]["module.optimizer.lr"] <= 1e-2
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir() and p.name.isdigit())
    assert jobs == ["0", "1", "2"] and "Best value" in out
    frame = summ.collect(sweep)
    assert len(frame) == 3 and set(frame["status"]) == {"ok"}


def test_launcher_and_ddp_trainer_configs_compose():
    slurm = _compose(["hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"], True)
    launcher = slurm.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 2)
    assert slurm.trainer.strategy == "ddp" and slurm.trainer.accelerator == "gpu"
    local = _compose(["hydra/launcher=slurm_local"], True).hydra.launcher
    assert local._target_.endswith("LocalLauncher") and local.gpus_per_node == 0
    for name, strategy, accelerator in (("ddp_cpu", "ddp_spawn", "cpu"), ("ddp_spawn", "ddp_spawn", "auto")):
        trainer = _compose([f"trainer={name}"]).trainer
        assert (trainer.strategy, trainer.accelerator, trainer.devices) == (strategy, accelerator, 2)


@pytest.mark.slow
def test_submitit_local_launcher_runs_a_sweep(tmp_path):
    sweep = tmp_path / "submitit"
    _run(["train.py", "-m", "hydra/launcher=slurm_local", "experiment=smoke", "data.n=128", "seed=1,2",
          "logger=none", f"hydra.sweep.dir={sweep}", f"paths.data_dir={tmp_path / 'data'}"],
         _env(tmp_path, WANDB_MODE="disabled"))
    assert (sweep / ".submitit").is_dir()
    assert all((sweep / str(i) / "test_metrics.json").is_file() for i in (0, 1))


# --- W&B sweeps -----------------------------------------------------------------------------------
def _wandb_values(name: str, spec: dict) -> list:
    """Values to try for one W&B sweep parameter: its list, or the ends of its distribution."""
    if "values" in spec:
        return list(spec["values"])
    if "value" in spec:
        return [spec["value"]]
    if {"min", "max"} <= set(spec):
        if spec.get("distribution", "").startswith(("log_uniform", "q_log_uniform")) and \
                not spec["distribution"].endswith("_values"):
            return [math.exp(spec["min"]), math.exp(spec["max"])]
        return [spec["min"], spec["max"]]
    raise AssertionError(f"parameter {name}: no values or min/max in {spec}")


@pytest.mark.parametrize("path", WANDB_SWEEPS, ids=[p.stem for p in WANDB_SWEEPS])
def test_wandb_sweep_file_is_valid_for_train_py(path, monkeypatch):
    sweep = yaml.safe_load(path.read_text())
    assert sweep["program"] == "train.py" and (REPO / sweep["program"]).is_file()
    assert sweep["method"] in ("grid", "random", "bayes")
    command = sweep["command"]
    assert command[:3] == ["${env}", "${interpreter}", "${program}"] and "${args_no_hyphens}" in command
    fixed = [c for c in command[3:] if not (c.startswith("${") and c.endswith("}"))]
    assert "logger=wandb" in fixed and "logger.wandb.mode=online" in fixed
    if sweep["method"] == "bayes" or "metric" in sweep:
        assert sweep["metric"]["name"].startswith("val/") and sweep["metric"]["goal"] in ("maximize", "minimize")
    monkeypatch.setenv("WANDB_SWEEP_ID", "sweep123")
    monkeypatch.setenv("WANDB_RUN_ID", "run456")

    values = {name: _wandb_values(name, spec) for name, spec in sweep["parameters"].items()}
    for i in range(max(map(len, values.values()))):
        # W&B substitutes ${args_no_hyphens} with `key=value` pairs: exactly these overrides, no "+"
        args = [f"{k}={v[i % len(v)]}" for k, v in values.items()]
        cfg = _compose(fixed + args, hydra_cfg=True)
        assert cfg.hydra.mode in (None, RunMode.RUN), f"{path.name}: each W&B run must be a single job"
        for name, vals in values.items():
            got, want = _select(cfg, name), vals[i % len(vals)]
            assert got == want or str(got) == str(want), (name, got, want)
        assert cfg.hydra.run.dir.endswith("wandb_sweeps/sweep123/run456")
        OmegaConf.resolve(cfg.model)  # e.g. the depth presets' interpolations

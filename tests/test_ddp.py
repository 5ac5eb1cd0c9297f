"""DDP: every exam once per epoch on exactly one rank, and 2-process metrics equal to 1-process ones."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import hydra
import lightning as L
import numpy as np
import pytest
from helpers.hydra_config import compose_train
from torch.utils.data import DistributedSampler

from ecglit.data.samplers import EpochSampler, distributed_sampler, train_subset
from ecglit.data.synthetic_datamodule import SyntheticDataModule
from ecglit.errors import ConfigError
from ecglit.models.ecg_module import ECGClassifier
from ecglit.training import train

REPO = Path(__file__).resolve().parents[1]


def _datamodule(tmp_path: Path, **kwargs) -> SyntheticDataModule:
    args = {"n": 61, "seed": 3, "cache_dir": tmp_path / "synthetic", "batch_size": 4, "num_workers": 0,
            "progress": False}
    dm = SyntheticDataModule(**(args | kwargs))
    dm.setup("fit")
    dm.setup("test")
    return dm


def _rank_indices(dm: SyntheticDataModule, split: str, world_size: int, epoch: int = 0) -> list[list[int]]:
    """The indices each rank's loader of ``split`` draws, as the datamodule builds them under DDP."""
    loader_of = {"train": dm.train_dataloader, "val": dm.val_dataloader, "test": dm.test_dataloader}[split]
    out = []
    for rank in range(world_size):
        dm.trainer = SimpleNamespace(world_size=world_size, global_rank=rank)
        sampler = loader_of().sampler
        assert isinstance(sampler, DistributedSampler)
        sampler.set_epoch(epoch)
        out.append(list(sampler))
    dm.trainer = None
    return out


@pytest.mark.parametrize("world_size", [2, 3])
def test_eval_samplers_are_disjoint_and_cover_the_split(tmp_path, world_size):
    dm = _datamodule(tmp_path, mode="on_the_fly")
    for split in ("val", "test"):
        n = len(dm.dataset(split))
        parts = _rank_indices(dm, split, world_size)
        flat = [i for p in parts for i in p]
        assert len(flat) == len(set(flat)) == n, f"{split}: an exam repeated or missing across ranks"
        assert set(flat) == set(range(n))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        ids = dm.exam_ids(split)
        assert sorted(ids[flat].tolist()) == sorted(ids.tolist())


def test_train_sampler_gives_disjoint_equal_shares_that_change_per_epoch(tmp_path):
    dm = _datamodule(tmp_path, mode="on_the_fly")
    n = len(dm.dataset("train"))
    ws = next(w for w in (2, 3, 5, 7) if n % w)  # some exams must be left over
    epochs = [_rank_indices(dm, "train", ws, epoch) for epoch in range(3)]
    for parts in epochs:
        assert {len(p) for p in parts} == {n // ws}  # same number of steps on every rank
        flat = [i for p in parts for i in p]
        assert len(flat) == len(set(flat)) == n - n % ws  # disjoint, nothing repeated
    assert epochs[0] != epochs[1]
    # the exams left over are not always the same ones
    left_over = [set(range(n)) - {i for p in parts for i in p} for parts in epochs]
    assert len(set().union(*left_over)) > n % ws


def test_single_process_loaders_are_not_sharded(tmp_path):
    dm = _datamodule(tmp_path, mode="on_the_fly")
    dm.trainer = SimpleNamespace(world_size=1, global_rank=0)
    train = dm.train_dataloader().sampler  # the (seed, epoch) shuffle of ecglit.data.samplers, one replica
    assert isinstance(train, EpochSampler) and train.num_replicas == 1
    assert sorted(train) == list(range(len(dm.dataset("train"))))
    for loader in (dm.val_dataloader(), dm.test_dataloader()):
        assert not isinstance(loader.sampler, DistributedSampler)
    with pytest.raises(ConfigError, match="at least one exam"):
        distributed_sampler(range(1), world_size=2, rank=0, train=False)


def test_train_fraction_is_a_seeded_nested_subset_of_train_only(tmp_path):
    full = _datamodule(tmp_path, n=64)  # materialised shards: H5RowsDataset.subset
    quarter, half = _datamodule(tmp_path, n=64, train_fraction=0.25), _datamodule(tmp_path, n=64, train_fraction=0.5)
    n_train = len(full.dataset("train"))
    assert len(quarter.dataset("train")) == round(0.25 * n_train)
    assert len(half.dataset("train")) == round(0.5 * n_train)
    q_ids, h_ids = set(quarter.exam_ids("train")), set(half.exam_ids("train"))
    assert q_ids < h_ids < set(full.exam_ids("train"))
    for split in ("val", "test"):
        np.testing.assert_array_equal(half.exam_ids(split), full.exam_ids(split))
    assert set(_datamodule(tmp_path, n=64, train_fraction=0.25).exam_ids("train")) == q_ids  # seeded
    x, y = quarter.dataset("train")[0]
    assert tuple(x.shape) == (12, 4096) and tuple(y.shape) == (6,)
    # on-the-fly data (a torch Subset) keeps exam_ids too
    otf = train_subset(_datamodule(tmp_path, mode="on_the_fly").dataset("train"), 0.5, seed=0)
    assert len(otf.exam_ids) == len(otf)
    with pytest.raises(ConfigError, match="train_fraction"):
        SyntheticDataModule(n=10, cache_dir=tmp_path, train_fraction=0.0)


def _single_process_eval(cfg, ckpt: str):
    """Test, then validate, ``ckpt`` in this process on one CPU device, on the DDP run's data."""
    dm = hydra.utils.instantiate(cfg.data)
    module = ECGClassifier.load_from_checkpoint(ckpt, weights_only=True, map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.test(module, datamodule=dm, verbose=False)
    test_metrics, test_report = dict(trainer.callback_metrics), module.last_report
    trainer.validate(module, datamodule=dm, verbose=False)
    return test_metrics, test_report, dict(trainer.callback_metrics), len(dm.dataset("test"))


@pytest.mark.slow  # 27 s of the default suite's 10 minutes; CI runs it with the slow suite
def test_ddp_spawn_two_cpu_processes_match_one_process(tmp_path):
    """trainer=ddp_cpu (2 gloo processes) trains one epoch and tests its checkpoint; the validation and
    test metrics it logs and the test report it writes equal one process's on the same data and checkpoint."""
    # 13 val/test exams on 2 ranks: 7 and 6, i.e. 2 batches and 1 batch of 6 (uneven batch counts)
    overrides = ["experiment=smoke", "data.n=128", "data.batch_size=6", "model.kernel_size=5", "logger=none",
                 "callbacks=none", "+callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                 f"+callbacks.model_checkpoint.dirpath={tmp_path / 'run' / 'checkpoints'}"]
    # optimized_metric=null: no extra spawned validation of the best checkpoint (one epoch: it is the
    # checkpoint of the fit's validation; the slow CLI test below covers that path)
    # float32 on both sides: the comparison below is exact (the single-process Trainer runs float32)
    cfg = compose_train([*overrides, "trainer=ddp_cpu", "trainer.precision=32-true",
                        "+trainer.enable_progress_bar=false", "optimized_metric=null"], tmp_path)
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.accelerator) == ("ddp_spawn", 2, "cpu")
    result = train(cfg)
    ddp_report = json.loads((tmp_path / "run" / "test_metrics.json").read_text())
    assert result["test_report"] is not None  # read back from the spawned workers' file

    test_metrics, report, val_metrics, n_test = _single_process_eval(cfg, ddp_report["checkpoint"])
    assert ddp_report["n_exams"] == report["n_exams"] == n_test == 13  # each test exam exactly once
    for key in ("macro", "per_class", "thresholds", "support"):
        assert _close(ddp_report[key], report[key]), (key, ddp_report[key], report[key])
    # everything the DDP run logged for test, and for val in its (only) epoch
    for name, value in {**test_metrics, **val_metrics}.items():
        assert result["metrics"][name] == pytest.approx(float(value), abs=1e-6), name
    assert {"val/loss", "val/f1_macro", "test/loss", "test/auroc_macro"} <= set(val_metrics) | set(test_metrics)


@pytest.mark.slow
def test_train_py_with_ddp_cpu_runs_and_logs_one_wandb_run(tmp_path):
    """The command a user types: `python train.py experiment=smoke trainer=ddp_cpu`, W&B offline."""
    run_dir = tmp_path / "run"
    env = dict(os.environ, WANDB_MODE="offline", HYDRA_FULL_ERROR="1", WANDB_DIR=str(tmp_path),
               WANDB_CACHE_DIR=str(tmp_path), WANDB_CONFIG_DIR=str(tmp_path))
    cmd = [sys.executable, "train.py", "experiment=smoke", "trainer=ddp_cpu", "data.n=128",
           f"hydra.run.dir={run_dir}", f"paths.data_dir={tmp_path / 'data'}"]
    proc = run_killing_group(cmd, env, timeout=400)
    output = proc.stdout + proc.stderr
    assert "distributed_backend=gloo" in output and "Starting with 2 processes" in output
    for stage in ("val", "test"):  # no Lightning warning about unsynced epoch metrics
        assert f"self.log('{stage}/" not in output
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert report["n_exams"] == 13 and Path(report["checkpoint"]).is_file()
    assert len(list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))) == 1


def run_killing_group(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Run ``cmd`` in its own process group; on timeout kill the group (spawned DDP workers too) and fail."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s (DDP hang?): {out[-2000:]}{err[-2000:]}")
    assert proc.returncode == 0, out[-3000:] + err[-3000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _close(a, b, tol: float = 1e-6) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if a is None or b is None or (isinstance(b, float) and np.isnan(b)):
        return (a is None or np.isnan(a)) and (b is None or np.isnan(b))
    return abs(float(a) - float(b)) <= tol

"""DDP: every exam once per epoch on exactly one rank, and 2-process metrics equal to 1-process ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch.utils.data import DistributedSampler

from ecglit.data.samplers import distributed_sampler, train_subset
from ecglit.data.synthetic_datamodule import SyntheticDataModule
from ecglit.errors import ConfigError
from ecglit.models.ecg_module import ECGClassifier

REPO = Path(__file__).resolve().parents[1]


def _datamodule(tmp_path: Path, **kwargs) -> SyntheticDataModule:
    args = dict(n=61, seed=3, cache_dir=tmp_path / "synthetic", batch_size=4, num_workers=0, progress=False)
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


def test_single_process_loaders_have_no_distributed_sampler(tmp_path):
    dm = _datamodule(tmp_path, mode="on_the_fly")
    dm.trainer = SimpleNamespace(world_size=1, global_rank=0)
    for loader in (dm.train_dataloader(), dm.val_dataloader(), dm.test_dataloader()):
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


def _single_process_eval(cfg_overrides: list[str], ckpt: str, data_dir: Path):
    """Test and validate ``ckpt`` in this process, on one CPU device, on the same data as the DDP run."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("train", overrides=cfg_overrides)
    dm = SyntheticDataModule(**{k: v for k, v in cfg.data.items() if k != "_target_"}
                             | {"cache_dir": str(data_dir / "synthetic")})
    module = ECGClassifier.load_from_checkpoint(ckpt, weights_only=True, map_location="cpu")
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.test(module, datamodule=dm, verbose=False)
    test_metrics, test_report = dict(trainer.callback_metrics), module.last_report
    trainer.validate(module, datamodule=dm, verbose=False)
    return test_metrics, test_report, dict(trainer.callback_metrics), len(dm.dataset("test"))


def test_ddp_spawn_two_cpu_processes_match_one_process(tmp_path):
    """`python train.py experiment=smoke trainer=ddp_cpu` (2 gloo processes): the test metrics it reports,
    and the validation metrics of its checkpoint, equal one process's on the same data."""
    # 13 val/test exams on 2 ranks: 7 and 6, i.e. 2 batches and 1 batch of 6 (uneven batch counts)
    overrides = ["experiment=smoke", "data.n=128", "data.batch_size=6", "model.kernel_size=5"]
    run_dir, data_dir = tmp_path / "run", tmp_path / "data"
    env = dict(os.environ, WANDB_MODE="disabled", HYDRA_FULL_ERROR="1")
    cmd = [sys.executable, "train.py", *overrides, "trainer=ddp_cpu", "logger=csv", "callbacks=none",
           "+callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint",
           f"+callbacks.model_checkpoint.dirpath={run_dir / 'checkpoints'}",
           f"hydra.run.dir={run_dir}", f"paths.data_dir={data_dir}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "distributed_backend=gloo" in proc.stdout + proc.stderr
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    ddp_report = json.loads((run_dir / "test_metrics.json").read_text())

    test_metrics, report, val_metrics, n_test = _single_process_eval(overrides, ddp_report["checkpoint"], data_dir)
    assert ddp_report["n_exams"] == report["n_exams"] == n_test == 13  # each test exam exactly once
    for key in ("macro", "per_class", "thresholds", "support"):
        assert _close(ddp_report[key], report[key]), (key, ddp_report[key], report[key])

    # everything the DDP run logged for test and (from its best-checkpoint validation) for val
    logged = _last_logged(run_dir)
    for name, value in {**test_metrics, **val_metrics}.items():
        assert name in logged, name
        assert logged[name] == pytest.approx(float(value), abs=1e-6), name


def _close(a, b, tol: float = 1e-6) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tol) for k in a)
    if a is None or b is None or (isinstance(b, float) and np.isnan(b)):
        return (a is None or np.isnan(a)) and (b is None or np.isnan(b))
    return abs(float(a) - float(b)) <= tol


def _last_logged(run_dir: Path) -> dict[str, float]:
    """Last logged value of every metric in the run's CSVLogger file."""
    import pandas as pd

    frame = pd.concat(pd.read_csv(p) for p in sorted(run_dir.glob("csv/version_*/metrics.csv")))
    return {c: float(frame[c].dropna().iloc[-1]) for c in frame.columns if frame[c].notna().any()}

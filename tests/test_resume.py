"""Exact resume: a training run SIGKILLed at any moment and resumed from last.ckpt ends bit-identical to a run
that was never interrupted (every weight, the LR scheduler, ModelCheckpoint/EarlyStopping bookkeeping and the
test metrics), and a checkpoint cut short while being written is never used.

The end-to-end cases run ``train.py`` in subprocesses and kill them with ``helpers.kill.KillAt`` (SIGKILL from
inside the process at a chosen point); the expected result is the uninterrupted run with the same overrides.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import hydra
import numpy as np
import pytest
import torch
from helpers.hydra_config import compose_train
from helpers.kill import KillAt
from torch.utils.data import DataLoader, Dataset

from ecglit.callbacks.atomic_checkpoint import atomic_torch_save, check_checkpoint
from ecglit.callbacks.rng_state import capture_rng_state, restore_rng_state
from ecglit.data.batch_rng import BatchSeededDataset
from ecglit.data.samplers import EpochSampler
from ecglit.errors import ConfigError
from ecglit.training import train

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent

# 48 exams, batch 16: 3 training batches per epoch; 2 epochs (slow cases: 3).
TINY = ["experiment=smoke", "data.n=48", "data.batch_size=16", "logger=csv", "trainer.precision=32-true",
        "callbacks.rich_progress_bar=null", "optimized_metric=null"]
# a second ModelCheckpoint writing mid-epoch checkpoints every 2 steps, with its own last.ckpt
STEP_CKPTS = ["+callbacks.steps._target_=lightning.pytorch.callbacks.ModelCheckpoint",
              "+callbacks.steps.dirpath=${paths.output_dir}/checkpoints/steps",
              "+callbacks.steps.every_n_train_steps=2", "+callbacks.steps.save_last=true",
              "+callbacks.steps.save_top_k=1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic data set of TINY, generated once for the module (runs started together share it)."""
    tmp = tmp_path_factory.mktemp("resume-data")
    cfg = compose_train(TINY, tmp)
    hydra.utils.instantiate(cfg.data).prepare_data()
    return tmp / "data"


def _start(run_dir: Path, data_dir: Path, overrides: list[str]) -> subprocess.Popen:
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))  # helpers.kill
    env = dict(os.environ, PYTHONPATH=path, HYDRA_FULL_ERROR="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "train.py", *TINY, f"paths.data_dir={data_dir}", f"hydra.run.dir={run_dir}",
           *overrides]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=600)
    return proc.returncode, out


def _ok(proc: subprocess.Popen) -> str:
    returncode, out = _finish(proc)
    assert returncode == 0, out[-4000:]
    return out


def _kill(run_dir: Path, data_dir: Path, overrides: list[str], **kill: int) -> None:
    spec = [f"+callbacks.kill.{k}={v}" for k, v in kill.items()]
    returncode, out = _finish(_start(run_dir, data_dir,
                                     [*overrides, "+callbacks.kill._target_=helpers.kill.KillAt", *spec]))
    assert returncode == -signal.SIGKILL, out[-4000:]


def _resume(run_dir: Path, data_dir: Path, overrides: list[str], ckpt: str = "checkpoints/last.ckpt") -> str:
    return _ok(_start(run_dir, data_dir, [*overrides, f"ckpt_path={run_dir / ckpt}"]))


def _load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)  # checkpoints stay weights_only-loadable


def _report(run_dir: Path) -> str:
    report = json.loads((run_dir / "test_metrics.json").read_text())
    return json.dumps({k: report[k] for k in ("macro", "per_class", "thresholds")}, sort_keys=True)


def _callback_state(ckpt: dict, name: str) -> dict:
    """The state of callback ``name`` that monitors val/loss (not STEP_CKPTS' ModelCheckpoint)."""
    (key,) = [k for k in ckpt["callbacks"] if k.startswith(name + "{'monitor': 'val/loss'")]
    return ckpt["callbacks"][key]


def assert_identical(reference: Path, resumed: Path) -> None:
    """Final weights, optimizer/scheduler/callback bookkeeping and test metrics equal, bit for bit."""
    a, b = _load(reference / "checkpoints" / "last.ckpt"), _load(resumed / "checkpoints" / "last.ckpt")
    assert (a["epoch"], a["global_step"]) == (b["epoch"], b["global_step"])
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, tensor in a["state_dict"].items():
        other = b["state_dict"][name]
        diff = (tensor.double() - other.double()).abs().max().item() if tensor.numel() else 0.0
        assert diff == 0.0, f"{name}: max |diff| {diff}"
    assert a["lr_schedulers"] == b["lr_schedulers"]  # ReduceLROnPlateau: same steps, bad epochs, best
    adam_a, adam_b = (c["optimizer_states"][0]["state"] for c in (a, b))  # Adam's moments and step counts
    assert adam_a.keys() == adam_b.keys()
    for k, state in adam_a.items():
        assert all(torch.equal(v, adam_b[k][key]) for key, v in state.items()), f"optimizer state {k}"
    es_a, es_b = _callback_state(a, "EarlyStopping"), _callback_state(b, "EarlyStopping")
    assert (es_a["wait_count"], float(es_a["best_score"])) == (es_b["wait_count"], float(es_b["best_score"]))
    mc_a, mc_b = _callback_state(a, "ModelCheckpoint"), _callback_state(b, "ModelCheckpoint")
    assert float(mc_a["best_model_score"]) == float(mc_b["best_model_score"])
    assert Path(mc_a["best_model_path"]).name == Path(mc_b["best_model_path"]).name
    assert _report(reference) == _report(resumed)  # test metrics of the best checkpoint, identical


# -- end to end: the default suite's case --------------------------------------------------------------------

def test_killed_mid_epoch_and_resumed_equals_uninterrupted(tmp_path, data_dir):
    overrides = ["trainer.max_epochs=2"]
    reference = _start(tmp_path / "reference", data_dir, overrides)  # runs beside the killed run
    run = tmp_path / "killed"
    _kill(run, data_dir, overrides, step=4)  # epoch 1, after its first batch; last.ckpt is epoch 0's
    assert _load(run / "checkpoints" / "last.ckpt")["global_step"] == 3
    out = _resume(run, data_dir, overrides)
    _ok(reference)
    assert f"Resumed from {(run / 'checkpoints' / 'last.ckpt').resolve()}: written at the end of epoch 0 " \
           "(global step 3); continuing with epoch 1" in out
    assert_identical(tmp_path / "reference", run)


# -- end to end: the other moments, worker counts and data modes (slow) ------------------------------------

SLOW_CASES = {
    # name: (extra overrides, KillAt arguments, checkpoint to resume from)
    "2 workers, between epochs": (["data.num_workers=2"], {"after_epoch": 0}, "checkpoints/last.ckpt"),
    "on the fly, during validation": (["data.mode=on_the_fly"], {"val_epoch": 1, "val_batch": 0},
                                      "checkpoints/last.ckpt"),
    "2 workers on the fly, mid-epoch": (["data.num_workers=2", "data.mode=on_the_fly"], {"step": 5},
                                        "checkpoints/last.ckpt"),
    "writing last.ckpt, 2 workers": (["data.num_workers=2"], {"write": 4}, "checkpoints/last.ckpt"),
    "writing the best checkpoint": ([], {"write": 3}, "checkpoints/last.ckpt"),
    "mid-epoch checkpoint": (STEP_CKPTS, {"step": 5}, "checkpoints/steps/last.ckpt"),
    "augmentation, mid-epoch checkpoint": ([*STEP_CKPTS, "augment=default"], {"step": 5},
                                           "checkpoints/steps/last.ckpt"),
    "mid-epoch checkpoint, 2 workers on the fly": (
        [*STEP_CKPTS, "data.num_workers=2", "data.mode=on_the_fly"], {"step": 5},
        "checkpoints/steps/last.ckpt"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(SLOW_CASES))
def test_killed_and_resumed_equals_uninterrupted(tmp_path, data_dir, case):
    extra, kill, ckpt = SLOW_CASES[case]
    overrides = ["trainer.max_epochs=3", *extra]
    reference = _start(tmp_path / "reference", data_dir, overrides)
    run = tmp_path / "killed"
    _kill(run, data_dir, overrides, **kill)
    if "write" in kill:  # killed halfway through writing a checkpoint: the file it was writing is untouched
        half_written = list((run / "checkpoints").glob(".*.tmp"))
        assert len(half_written) == 1, sorted(p.name for p in (run / "checkpoints").iterdir())
        assert not zipfile.is_zipfile(half_written[0])
        check_checkpoint(run / "checkpoints" / "last.ckpt")  # complete: the one written before
    saved = _load(run / ckpt)
    out = _resume(run, data_dir, overrides, ckpt)
    assert f"Resumed from {(run / ckpt).resolve()}: " in out
    assert f"(global step {saved['global_step']})" in out
    if "steps" in ckpt:  # the mid-epoch checkpoint of step 4: epoch 1 (3 batches an epoch) after 1 batch
        assert ("written after 1 of 3 batches of epoch 1 (global step 4); continuing with its next batch"
                in out)
    assert not list((run / "checkpoints").glob(".*.tmp"))  # the half-written file was cleaned up
    _ok(reference)
    assert_identical(tmp_path / "reference", run)


# -- a checkpoint cut short is never used ------------------------------------------------------------------

def test_atomic_save_killed_mid_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "last.ckpt"
    atomic_torch_save({"epoch": 0, "w": torch.arange(10_000.0)}, target)
    pid = os.fork()
    if pid == 0:  # the child dies halfway through writing the next version (KillAt patches torch.save)
        KillAt(write=1)
        atomic_torch_save({"epoch": 1, "w": torch.zeros(10_000)}, target)
        os._exit(0)  # not reached
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    (tmp,) = tmp_path.glob(".last.ckpt.*.tmp")
    assert 0 < tmp.stat().st_size and not zipfile.is_zipfile(tmp)  # half of it reached the disk
    assert _load(target)["epoch"] == 0 and torch.equal(_load(target)["w"], torch.arange(10_000.0))
    atomic_torch_save({"epoch": 2}, target)  # the next save replaces it and removes the dead writer's file
    assert _load(target)["epoch"] == 2 and not tmp.exists()


def test_atomic_save_failing_mid_write_leaves_no_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    target = tmp_path / "epoch_001.ckpt"
    with pytest.raises(RuntimeError, match="cannot pickle"):
        atomic_torch_save({"w": torch.ones(1000), "bad": Unpicklable()}, target)
    assert list(tmp_path.iterdir()) == []


def test_truncated_or_corrupt_checkpoint_is_refused_with_its_name(tmp_path):
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.arange(5000.0)}}, good)
    check_checkpoint(good)
    data = good.read_bytes()
    truncated = tmp_path / "last.ckpt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ConfigError, match=r"last\.ckpt: not a complete checkpoint"):
        check_checkpoint(truncated)
    corrupt = tmp_path / "corrupt.ckpt"
    with zipfile.ZipFile(good) as z:  # flip a byte inside the tensor data, keep the archive's structure
        info = next(i for i in z.infolist() if i.file_size >= 4096)
    raw = bytearray(data)
    raw[info.header_offset + 30 + len(info.filename) + len(info.extra) + 100] ^= 0xFF
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match=r"corrupt\.ckpt: corrupt checkpoint"):
        check_checkpoint(corrupt)
    with pytest.raises(ConfigError, match="no such checkpoint"):
        check_checkpoint(tmp_path / "missing.ckpt")


def test_train_refuses_a_truncated_checkpoint_before_starting(tmp_path):
    ckpt = tmp_path / "last.ckpt"
    torch.save({"epoch": 0, "w": torch.zeros(4000)}, ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:3000])
    cfg = compose_train(["experiment=smoke", "logger=none", f"ckpt_path={ckpt}"], tmp_path)
    with pytest.raises(ConfigError, match=str(ckpt)):
        train(cfg)
    assert not (tmp_path / "data").exists()  # refused before any data was generated


# -- the pieces --------------------------------------------------------------------------------------------

def test_epoch_sampler_is_seed_plus_epoch_and_starts_part_way():
    data = list(range(23))
    sampler = EpochSampler(data, seed=5)
    for epoch in (0, 1, 4):
        sampler.set_epoch(epoch)
        expected = torch.randperm(23, generator=torch.Generator().manual_seed(5 + epoch)).tolist()
        assert list(sampler) == expected
    state = torch.get_rng_state()
    list(sampler)
    assert torch.equal(torch.get_rng_state(), state)  # nothing drawn from the global generator
    resumed = EpochSampler(data, seed=5, start_epoch=4, skip=8)
    resumed.set_epoch(4)  # Lightning calls it with the same epoch: still skips
    assert len(resumed) == 23 and list(resumed) == expected[8:]
    assert list(resumed) == expected  # only the first pass is shortened
    resumed.start_at(4, 8)
    resumed.set_epoch(5)  # a new epoch starts from its first item
    assert list(resumed) == torch.randperm(23, generator=torch.Generator().manual_seed(10)).tolist()


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    def draws():
        return torch.rand(3).tolist(), np.random.rand(3).tolist(), np.random.randn(), random.random()

    np.random.randn()  # leaves a cached gaussian in NumPy's state
    atomic_torch_save({"rng": capture_rng_state()}, tmp_path / "rng.ckpt")
    expected = draws()
    assert draws() != expected
    restore_rng_state(_load(tmp_path / "rng.ckpt")["rng"])
    assert draws() == expected


class _RandomBatches(Dataset):
    """Items with noise from all three global generators, as a batch augmentation would draw it."""

    def __len__(self) -> int:
        return 24

    def __getitems__(self, indices):
        noise = torch.rand(len(indices)) + torch.from_numpy(np.random.rand(len(indices))).float()
        return [(torch.tensor(float(i)), noise[k] + random.random()) for k, i in enumerate(indices)]


@pytest.mark.parametrize("persistent", [False, True])
def test_batch_draws_do_not_depend_on_workers_or_history(persistent):
    def epochs(num_workers: int, start_epoch: int = 0) -> list[tuple[list[float], list[float]]]:
        """(indices, noise) of every epoch from ``start_epoch`` to 2."""
        sampler = EpochSampler(range(24), seed=1, start_epoch=start_epoch)
        kwargs = {"num_workers": num_workers, "persistent_workers": persistent} if num_workers else {}
        loader = DataLoader(BatchSeededDataset(_RandomBatches(), seed=1), batch_size=5, sampler=sampler,
                            generator=torch.Generator().manual_seed(0), **kwargs)  # as ECGDataModule's
        out = []
        for epoch in range(start_epoch, 3):
            sampler.set_epoch(epoch)
            batches = list(loader)
            out.append(tuple(torch.cat([b[k] for b in batches]).tolist() for k in (0, 1)))
        return out

    main_state = np.random.get_state()[1].copy(), random.getstate(), torch.get_rng_state()
    in_process = epochs(0)
    assert np.array_equal(np.random.get_state()[1], main_state[0]) and random.getstate() == main_state[1]
    assert torch.equal(torch.get_rng_state(), main_state[2])  # the main process's streams are untouched
    assert epochs(2) == in_process  # 2 workers (each drawing for its own batches) draw the same
    assert epochs(2, start_epoch=2) == in_process[2:]  # fresh workers, as after a resume, too
    assert in_process[0][1] != in_process[1][1]  # new draws every epoch
    assert sorted(in_process[0][0]) == list(range(24))

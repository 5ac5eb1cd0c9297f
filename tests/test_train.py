"""End-to-end training: the smoke experiment as a user runs it, checkpoints, reports and W&B files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers.hydra_config import compose_train

from ecglit.constants import CLASSES
from ecglit.metrics.classification import METRICS
from ecglit.models.ecg_module import ECGClassifier
from ecglit.training import train

REPO = Path(__file__).resolve().parents[1]


def _no_network_prefix() -> list[str]:
    """Run in a fresh network namespace with only loopback, when the OS allows it."""
    if shutil.which("unshare") and shutil.which("ip"):
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
        if probe.returncode == 0:
            return ["unshare", "-rn", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
    return []


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """`python train.py experiment=smoke hydra.run.dir=...` in a subprocess, W&B offline, no network."""
    tmp = tmp_path_factory.mktemp("smoke")
    env = dict(os.environ, WANDB_MODE="offline", PYTHONUNBUFFERED="1", HYDRA_FULL_ERROR="1")
    cmd = [*_no_network_prefix(), sys.executable, "train.py", "experiment=smoke",
           f"hydra.run.dir={tmp / 'run'}", f"paths.data_dir={tmp / 'data'}"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return tmp / "run", proc.stdout + proc.stderr, bool(_no_network_prefix())


def test_smoke_run_writes_report_checkpoint_and_table(smoke_run):
    run_dir, output, _ = smoke_run
    report = json.loads((run_dir / "test_metrics.json").read_text())
    assert set(report["per_class"]) == set(CLASSES)
    for cls in CLASSES:
        assert set(report["per_class"][cls]) == set(METRICS)
        assert 0.0 <= report["thresholds"][cls] <= 1.0
    assert set(report["macro"]) == set(METRICS)
    ckpt = Path(report["checkpoint"])
    assert ckpt.is_file() and ckpt.parent == run_dir / "checkpoints"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    assert "macro" in output and "best checkpoint" in output
    for cls in CLASSES:
        assert cls in output


def test_smoke_run_logs_offline_wandb_without_network(smoke_run):
    run_dir, output, isolated = smoke_run
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1, f"expected one offline W&B run in {run_dir / 'wandb'}"
    records = list(runs[0].glob("run-*.wandb"))
    assert records and records[0].stat().st_size > 1000  # history, config and summary live here
    logs = "".join(p.read_text(errors="ignore") for p in runs[0].rglob("*.log"))
    for marker in ("api.wandb.ai", "Network error", "ConnectionError"):
        assert marker not in logs
    if not isolated:
        pytest.skip("no network namespace available: checked the logs only")


def test_checkpoint_reloads_with_weights_only_and_reproduces_predictions(tmp_path):
    cfg = compose_train(["experiment=smoke", "logger=none", "callbacks=none",
                         "+callbacks.model_checkpoint._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                         f"+callbacks.model_checkpoint.dirpath={tmp_path / 'ckpt'}",
                         "+callbacks.model_checkpoint.monitor=val/loss"], tmp_path)
    result = train(cfg)
    module = result["module"].eval()
    loaded = ECGClassifier.load_from_checkpoint(result["checkpoint"], weights_only=True, map_location="cpu").eval()
    torch.testing.assert_close(loaded.thresholds, module.thresholds)
    assert result["test_report"]["thresholds"] == dict(zip(CLASSES, loaded.thresholds.tolist()))
    x = torch.randn(4, 12, 4096)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), module(x))
    # thresholds were chosen on validation, not left at the 0.5 default
    assert not torch.allclose(loaded.thresholds, torch.full_like(loaded.thresholds, 0.5))


def test_paper_network_fast_dev_run(tmp_path):
    cfg = compose_train(["model=resnet_paper", "trainer.fast_dev_run=true", "logger=none", "data.n=256",
                         "data.batch_size=8", "data.num_workers=0"], tmp_path)
    result = train(cfg)
    n_params = sum(p.numel() for p in result["module"].net.parameters() if p.requires_grad)
    assert n_params == 6_421_910
    assert "train/loss" in result["metrics"]


# A real train.py process costs ~13 s; a missing folder is also refused in-process by test_cli.py's
# train-missing_input case, so that variant runs in the slow suite.
@pytest.mark.parametrize("problem", [pytest.param("missing_dir", marks=pytest.mark.slow), "transposed"])
def test_bad_data_gives_one_line_error_naming_the_file(tmp_path, problem):
    import h5py
    import numpy as np

    root = tmp_path / "shards"
    if problem == "transposed":
        root.mkdir()
        with h5py.File(root / "exams_part0.hdf5", "w") as f:
            f["tracings"] = np.zeros((3, 12, 4096), np.float32)
            f["exam_id"] = np.arange(1, 4)
        (root / "exams.csv").write_text("exam_id,1dAVb,RBBB,LBBB,SB,AF,ST,patient_id\n")
    cmd = [sys.executable, "train.py", "data=code15", f"data.root={root}", "logger=none",
           f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("train.py: error:") and str(root) in lines[0], proc.stderr
    if problem == "transposed":
        assert "exams_part0.hdf5" in proc.stderr and "transposed" in proc.stderr


def test_trains_on_code15_layout_shards(tmp_path):
    """data=code15 on shards whose exams.csv is shuffled and whose shards end with sentinel rows."""
    from helpers.shards import write_code15_fixture

    table = write_code15_fixture(tmp_path / "code15", n_exams=120, n_shards=3, shuffle_csv=True,
                                 sentinel=True, extra_zero_rows=1)
    cfg = compose_train(["data=code15", f"data.root={tmp_path / 'code15'}", "model=resnet_tiny",
                         "logger=none", "trainer.max_epochs=1", "data.batch_size=16", "data.num_workers=0",
                         "callbacks.rich_progress_bar=null"], tmp_path)
    result = train(cfg)
    datamodule_exams = sum(len(result["module"].trainer.datamodule.datasets[s]) for s in ("train", "val", "test"))
    assert len(table) == 121 and datamodule_exams == 120  # the all-zero exam and the sentinels are dropped
    assert result["test_report"]["n_exams"] == len(result["module"].trainer.datamodule.datasets["test"])

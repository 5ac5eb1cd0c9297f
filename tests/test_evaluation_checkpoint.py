"""evaluate.py mode (a): a checkpoint and a dataset (CODE-test layout or CODE-15% shards) -> report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import lightning as L
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import f1_score
import torch
from helpers.shards import write_code15_fixture, write_code_test_fixture
from omegaconf import OmegaConf
from test_evaluation_task import compose_evaluate
from torch.utils.data import DataLoader, TensorDataset

from ecglit.constants import CLASSES
from ecglit.errors import DataError
from ecglit.evaluation.task import evaluate
from ecglit.metrics.thresholds import select_thresholds
from ecglit.models.ecg_module import ECGClassifier

REPO = Path(__file__).resolve().parents[1]
THRESHOLDS = [0.30, 0.35, 0.40, 0.45, 0.50, 0.55]
REPORT_FILES = {"table2.csv", "agreement.csv", "confusion_matrices.csv", "seeds.csv", "thresholds.csv",
                "model_labels.csv", "report.md", "precision_recall.png", "bootstrap_precision.png",
                "bootstrap_recall.png", "bootstrap_specificity.png", "bootstrap_f1.png"}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny ECGClassifier, one optimisation step, known thresholds, saved by a Lightning Trainer."""
    torch.manual_seed(0)
    net = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "model" / "resnet_tiny.yaml"))
    module = ECGClassifier(net=net)
    module.thresholds.copy_(torch.tensor(THRESHOLDS))
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    data = TensorDataset(torch.randn(8, 12, 4096), (torch.rand(8, len(CLASSES)) < 0.3).float())
    trainer.fit(module, DataLoader(data, batch_size=8))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    trainer.save_checkpoint(path)
    return path


def _direct_probs(ckpt: Path, tracings: np.ndarray) -> np.ndarray:
    module = ECGClassifier.load_from_checkpoint(ckpt, weights_only=True).eval()
    with torch.no_grad():
        return torch.sigmoid(module(torch.as_tensor(tracings).transpose(1, 2))).numpy()


def test_checkpoint_on_code_test_layout(checkpoint, tmp_path):
    data_dir = tmp_path / "code-test"
    gold = write_code_test_fixture(data_dir, n_exams=40, seed=3).to_numpy()
    reader = gold.copy()
    reader[::7, 0] = 1 - reader[::7, 0]
    pd.DataFrame(reader, columns=list(CLASSES)).to_csv(tmp_path / "reader.csv", index=False)
    out = tmp_path / "run"
    cfg = compose_evaluate([f"ckpt_path={checkpoint}", "data=code_test", f"data.test_root={data_dir}",
                            "data.num_workers=0", "data.batch_size=16", "logger=none",
                            "report.bootstrap.n_resamples=100", f"report.annotators={{reader: {tmp_path}/reader.csv}}"],
                           out)
    result = evaluate(cfg)
    assert REPORT_FILES | {"predictions.npy", "labels.csv"} <= {p.name for p in out.iterdir()}
    with h5py.File(data_dir / "ecg_tracings.hdf5") as f:
        expected = _direct_probs(checkpoint, f["tracings"][:])
    probs = np.load(out / "predictions.npy")
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    np.testing.assert_allclose(pd.read_csv(out / "thresholds.csv")["threshold"], THRESHOLDS, rtol=1e-6)
    np.testing.assert_array_equal(pd.read_csv(out / "labels.csv").to_numpy(), gold)
    table = result.table2.set_index(["predictor", "class", "metric"])
    pred = probs >= np.float32(THRESHOLDS)
    for c, cls in enumerate(CLASSES):
        tp = (pred[:, c] & (gold[:, c] == 1)).sum()
        fn = (~pred[:, c] & (gold[:, c] == 1)).sum()
        assert table.loc[("DNN", cls, "recall"), "value"] == pytest.approx(tp / (tp + fn), nan_ok=True)
    assert set(result.agreement["predictor_b"]) == {"reader"}


def test_checkpoint_on_shards_with_thresholds_chosen_on_val(checkpoint, tmp_path):
    import hydra

    data_dir = tmp_path / "shards"
    write_code15_fixture(data_dir, n_exams=60, seed=1)
    overrides = [f"ckpt_path={checkpoint}", "data=code15", f"data.root={data_dir}", "data.num_workers=0",
                 "data.val_fraction=0.3", "data.test_fraction=0.3", "predict.thresholds=val", "logger=none",
                 "report.figures=false", "report.bootstrap.n_resamples=100"]
    cfg = compose_evaluate(overrides, tmp_path / "run")
    result = evaluate(cfg)
    # the same split, predicted here directly: thresholds are select_thresholds on the val split
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("validate")
    module = ECGClassifier.load_from_checkpoint(checkpoint, weights_only=True).eval()
    with torch.no_grad():
        batches = [(torch.sigmoid(module(x)), y) for x, y in datamodule.val_dataloader()]
    val_probs, val_y = torch.cat([b[0] for b in batches]).numpy(), torch.cat([b[1] for b in batches]).numpy()
    for c in range(len(CLASSES)):  # brute force with sklearn: the threshold of the best F1 on the val split
        candidates = np.unique(val_probs[:, c])
        f1s = [f1_score(val_y[:, c], val_probs[:, c] >= t, zero_division=0) for t in candidates]
        assert f1_score(val_y[:, c], val_probs[:, c] >= result.thresholds[c]) == pytest.approx(max(f1s), abs=1e-6)
    assert len(np.load(tmp_path / "run" / "predictions.npy")) == len(datamodule.dataset("test"))


def test_missing_or_broken_checkpoint_is_a_data_error(tmp_path):
    cfg = compose_evaluate([f"ckpt_path={tmp_path}/nope.ckpt", "data=code_test", f"data.test_root={tmp_path}",
                            "logger=none"], tmp_path / "run")
    with pytest.raises(DataError, match="nope.ckpt: checkpoint not found"):
        evaluate(cfg)
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    cfg = compose_evaluate([f"ckpt_path={tmp_path}/junk.ckpt", "data=code_test", f"data.test_root={tmp_path}",
                            "logger=none"], tmp_path / "run")
    with pytest.raises(DataError, match="junk.ckpt: not a PyTorch checkpoint"):
        evaluate(cfg)


@pytest.mark.slow
def test_checkpoint_trained_by_train_py_writes_the_full_report(tmp_path):
    """train.py experiment=smoke on synthetic data, then evaluate.py on its checkpoint, both as a user runs
    them; evaluate.py takes the data config from the training run's .hydra/config.yaml."""
    env = dict(os.environ, HYDRA_FULL_ERROR="1")
    train_dir, data_dir = tmp_path / "train", tmp_path / "data"
    proc = subprocess.run([sys.executable, "train.py", "experiment=smoke", f"hydra.run.dir={train_dir}",
                           f"paths.data_dir={data_dir}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ckpt = min((train_dir / "checkpoints").glob("*.ckpt"))
    eval_dir = tmp_path / "eval"
    proc = subprocess.run([sys.executable, "evaluate.py", f"ckpt_path={ckpt}", f"hydra.run.dir={eval_dir}"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert REPORT_FILES | {"predictions.npy", "labels.csv"} <= {p.name for p in eval_dir.iterdir()}
    table = pd.read_csv(eval_dir / "table2.csv")
    assert set(table["predictor"]) == {"DNN"} and len(table) == (len(CLASSES) + 1) * 4
    # the test split of the training run (its size is in the training report)
    train_report = json.loads((train_dir / "test_metrics.json").read_text())
    assert len(np.load(eval_dir / "predictions.npy")) == train_report["n_exams"]
    # ... and the same numbers as train.py's own test of that checkpoint
    if Path(train_report["checkpoint"]) == ckpt:
        macro = table[table["class"] == "macro"].set_index("metric")["value"]
        for metric in ("precision", "recall", "specificity", "f1"):
            assert macro[metric] == pytest.approx(train_report["macro"][metric], abs=1e-6, nan_ok=True)

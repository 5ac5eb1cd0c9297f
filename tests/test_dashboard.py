"""The training run's test dashboard (ecglit/evaluation/dashboard.py): files, worst errors, W&B payload."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import wandb

from ecglit.constants import CLASSES
from ecglit.evaluation.dashboard import log_dashboard, worst_errors, write_dashboard
from ecglit.metrics.classification import classification_metrics


class _Dataset:
    exam_ids = np.arange(100, 140)

    def __getitem__(self, i):
        x = np.zeros((12, 4096), np.float32)
        x[:, 100:4000] = np.sin(np.arange(3900) / 20.0) * (i + 1)
        return torch.from_numpy(x), torch.zeros(6)


def _problem():
    rng = np.random.default_rng(0)
    targets = (rng.random((40, 6)) < 0.3).astype(np.float64)
    probs = np.clip(0.5 * targets + 0.5 * rng.random((40, 6)), 0, 1)
    targets[:5, 3] = np.nan  # not annotated
    probs[7, 2], targets[7, 2] = 0.99, 0.0  # the most confident false positive
    probs[9, 4], targets[9, 4] = 0.01, 1.0  # the most confident miss
    return probs, targets


def test_worst_errors_are_the_most_confident_mistakes_one_per_exam():
    probs, targets = _problem()
    worst = worst_errors(probs, targets, n=4)
    assert set(worst[:2]) == {(9, 4), (7, 2)}  # |p - y| = 0.99: the two most confident mistakes
    exams = [e for e, _ in worst]
    assert len(set(exams)) == len(exams)
    for e, c in worst:  # never a not-annotated cell, always an actual error at 0.5
        assert not np.isnan(targets[e, c]) and abs(probs[e, c] - targets[e, c]) > 0.5


def test_files_and_wandb_payload(tmp_path):
    probs, targets = _problem()
    thresholds = np.full(6, 0.5)
    report = classification_metrics(torch.tensor(probs), torch.tensor(targets), thresholds)
    report["thresholds"] = dict(zip(CLASSES, thresholds))
    files = write_dashboard(tmp_path, report, probs, targets, thresholds, list(CLASSES), _Dataset(), 1.0)
    assert {p.name for p in files.values()} == {"test_per_class.csv", "test_pr_curves.png", "test_roc_curves.png",
                                                "test_confusion.png", "test_worst_errors.png"}
    table = pd.read_csv(files["per_class"])
    assert list(table["class"]) == [*CLASSES, "macro"]
    assert table.loc[0, "auroc"] == pytest.approx(report["per_class"]["1dAVb"]["auroc"])

    class WandbLogger:  # the name is what log_dashboard looks for
        def __init__(self):
            self.logged = []
            self.experiment = self

        def log(self, payload):
            self.logged.append(payload)

    logger = WandbLogger()
    log_dashboard([logger], files)
    (payload,) = logger.logged
    assert isinstance(payload["test/per_class_table"], wandb.Table)
    assert {k for k in payload if k.startswith("test/figures/")} == {
        "test/figures/pr_curves", "test/figures/roc_curves", "test/figures/confusion", "test/figures/worst_errors"}

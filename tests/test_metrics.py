"""Threshold selection and per-class metrics against independent numpy computations."""

import math

import numpy as np
import pytest
import torch

from ecglit.metrics.classification import classification_metrics, flatten_metrics
from ecglit.metrics.thresholds import select_thresholds


def _random_problem(n=400, c=6, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < 0.2).astype(int)
    p = np.clip(0.35 * y + rng.random((n, c)) * 0.8, 0, 1).astype(np.float32)
    return p, y


def _f1(p, y, t):
    pred = p >= t
    tp = np.sum(pred & (y == 1)); fp = np.sum(pred & (y == 0)); fn = np.sum(~pred & (y == 1))
    return 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else 0.0


def test_select_thresholds_maximises_f1_per_class():
    p, y = _random_problem()
    thr = select_thresholds(torch.tensor(p), torch.tensor(y)).numpy()
    for c in range(p.shape[1]):
        best = max(_f1(p[:, c], y[:, c], t) for t in np.unique(p[:, c]))
        assert _f1(p[:, c], y[:, c], thr[c]) == pytest.approx(best, abs=1e-9)
        assert thr[c] in set(p[:, c].tolist())


def test_select_thresholds_class_without_positives_keeps_default():
    p, y = _random_problem()
    y[:, 2] = 0
    thr = select_thresholds(torch.tensor(p), torch.tensor(y))
    assert thr[2] == pytest.approx(0.5)


def test_select_thresholds_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="must both be"):
        select_thresholds(torch.rand(5, 6), torch.zeros(5, 5))


def test_classification_metrics_match_numpy():
    p, y = _random_problem(seed=1)
    thr = np.array([0.3, 0.4, 0.5, 0.6, 0.45, 0.35], dtype=np.float32)
    report = classification_metrics(torch.tensor(p), torch.tensor(y), torch.tensor(thr))
    from sklearn.metrics import average_precision_score, roc_auc_score

    for c, name in enumerate(report["per_class"]):
        pred = p[:, c] >= thr[c]
        tp = np.sum(pred & (y[:, c] == 1)); fp = np.sum(pred & (y[:, c] == 0))
        fn = np.sum(~pred & (y[:, c] == 1)); tn = np.sum(~pred & (y[:, c] == 0))
        got = report["per_class"][name]
        assert got["precision"] == pytest.approx(tp / (tp + fp), abs=1e-6)
        assert got["recall"] == pytest.approx(tp / (tp + fn), abs=1e-6)
        assert got["specificity"] == pytest.approx(tn / (tn + fp), abs=1e-6)
        assert got["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-6)
        assert got["auroc"] == pytest.approx(roc_auc_score(y[:, c], p[:, c]), abs=1e-5)
        assert got["ap"] == pytest.approx(average_precision_score(y[:, c], p[:, c]), abs=1e-5)
        assert report["support"][name]["positives"] == int(y[:, c].sum())
    f1s = [v["f1"] for v in report["per_class"].values()]
    assert report["macro"]["f1"] == pytest.approx(np.mean(f1s), abs=1e-6)


def test_undefined_values_are_nan_and_skipped_in_macro():
    p, y = _random_problem(seed=2)
    y[:, 0] = 0  # no positives: recall, auroc, ap undefined
    report = classification_metrics(torch.tensor(p), torch.tensor(y), 0.5)
    c0 = report["per_class"]["1dAVb"]
    assert math.isnan(c0["recall"]) and math.isnan(c0["auroc"]) and math.isnan(c0["ap"])
    assert not math.isnan(c0["specificity"])
    others = [v["recall"] for k, v in report["per_class"].items() if k != "1dAVb"]
    assert report["macro"]["recall"] == pytest.approx(np.mean(others), abs=1e-6)
    flat = flatten_metrics(report, "test")
    assert "test/recall/1dAVb" not in flat and "test/f1_macro" in flat

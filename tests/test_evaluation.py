"""Evaluation building blocks on small made-up data: scores, bootstrap, agreement, seeds, PR band, input checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import f1_score, precision_score, recall_score

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.agreement import agreement_table, mcnemar_per_class
from ecglit.evaluation.binary_stats import METRICS, apply_thresholds, per_class_scores, scores_from_counts
from ecglit.evaluation.bootstrap import bootstrap_scores, percentile_interval
from ecglit.evaluation.io import load_labels, load_probabilities
from ecglit.evaluation.pr_curves import min_max_band, precision_recall_curves
from ecglit.evaluation.seeds import micro_average_precision, select_model

N, C = 300, len(CLASSES)


def _data(seed: int = 0, n: int = N) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets (n, C), probabilities that are informative but noisy, and an annotator's labels."""
    rng = np.random.default_rng(seed)
    target = (rng.random((n, C)) < np.linspace(0.05, 0.3, C)).astype(np.int64)
    probs = np.clip(0.6 * target + rng.normal(0.2, 0.2, (n, C)), 0, 1)
    annot = np.where(rng.random((n, C)) < 0.08, 1 - target, target)
    return target, probs, annot


def _numpy_scores(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    tp = ((pred == 1) & (target == 1)).sum(0).astype(float)
    fp = ((pred == 1) & (target == 0)).sum(0)
    tn = ((pred == 0) & (target == 0)).sum(0)
    fn = ((pred == 0) & (target == 1)).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([tp / (tp + fp), tp / (tp + fn), tn / (tn + fp), 2 * tp / (2 * tp + fp + fn)], -1)


# --- scores --------------------------------------------------------------------------------------
def test_per_class_scores_match_numpy_and_sklearn():
    target, probs, _ = _data()
    pred = apply_thresholds(probs, [0.5] * C)
    scores = per_class_scores(pred, target)
    expected = _numpy_scores(pred, target)
    for m, metric in enumerate(METRICS):
        np.testing.assert_allclose(scores[metric], expected[:, m], rtol=1e-6)
    for c in range(C):  # an independent implementation of the same definitions
        assert scores["f1"][c] == pytest.approx(f1_score(target[:, c], pred[:, c]), rel=1e-6)
        assert scores["precision"][c] == pytest.approx(precision_score(target[:, c], pred[:, c]), rel=1e-6)
        assert scores["recall"][c] == pytest.approx(recall_score(target[:, c], pred[:, c]), rel=1e-6)


def test_undefined_scores_are_nan_not_zero():
    target = np.zeros((10, 2), np.int64)
    target[:3, 0] = 1  # class 1 has no positives
    pred = np.zeros_like(target)
    pred[:2, 0] = 1  # nothing predicted for class 1 either
    scores = per_class_scores(pred, target)
    assert scores["recall"][0] == pytest.approx(2 / 3)
    assert np.isnan(scores["recall"][1]) and np.isnan(scores["precision"][1]) and np.isnan(scores["f1"][1])
    assert scores["specificity"][1] == 1.0
    # same rule on counts: tp fp tn fn
    np.testing.assert_array_equal(np.isnan(scores_from_counts(np.array([0, 0, 10, 0]))), [True, True, False, True])


def test_thresholds_are_inclusive_like_classification_metrics():
    probs = np.array([[0.2], [0.3], [0.4]])
    np.testing.assert_array_equal(apply_thresholds(probs, [0.3])[:, 0], [0, 1, 1])


# --- bootstrap ------------------------------------------------------------------------------------
def test_bootstrap_matches_a_plain_loop_over_resamples():
    target, probs, annot = _data()
    preds = np.stack([apply_thresholds(probs, [0.5] * C), annot])
    boot = bootstrap_scores(preds, target, n_resamples=50, seed=7)
    idx = np.random.RandomState(7).randint(N, size=N * 50).reshape(50, N)  # the paper's draw
    for b in (0, 17, 49):
        for p in range(2):
            np.testing.assert_allclose(boot.replicates[b, p], _numpy_scores(preds[p][idx[b]], target[idx[b]]),
                                       rtol=1e-12)


def test_bootstrap_is_seeded_and_intervals_bracket_the_estimate():
    target, probs, annot = _data()
    preds = np.stack([apply_thresholds(probs, [0.5] * C), annot])
    a, b = bootstrap_scores(preds, target, 200, seed=1), bootstrap_scores(preds, target, 200, seed=1)
    np.testing.assert_array_equal(a.replicates, b.replicates)
    assert not np.array_equal(a.replicates, bootstrap_scores(preds, target, 200, seed=2).replicates)
    point = _numpy_scores(preds[1], target)
    assert np.all(a.low[1] <= point + 1e-12) and np.all(point <= a.high[1] + 1e-12)
    assert np.all(a.high - a.low < 0.6)


def test_bootstrap_replicates_are_the_scores_of_the_resampled_exams():
    # each replicate equals the numpy scores of exams drawn as the paper's script draws them (speed: BENCHMARKS)
    target, probs, annot = _data(n=827)
    preds = np.stack([annot, annot[::-1], apply_thresholds(probs, [0.5] * C), annot])
    boot = bootstrap_scores(preds, target, 50, seed=123)
    assert boot.replicates.shape == (50, 4, C, len(METRICS))
    np.random.seed(123)
    draws = np.random.randint(827, size=827 * 50).reshape(50, 827)
    for b in (0, 17, 49):
        for k in range(4):
            expected = _numpy_scores(preds[k][draws[b]], target[draws[b]])
            np.testing.assert_allclose(boot.replicates[b, k], expected, rtol=1e-9, equal_nan=True)


def test_percentile_interval_ignores_undefined_replicates():
    reps = np.array([[1.0, np.nan], [2.0, np.nan], [3.0, np.nan]])
    low, high = percentile_interval(reps, 0.5)
    assert low[0] == pytest.approx(1.5) and high[0] == pytest.approx(2.5)
    assert np.isnan(low[1]) and np.isnan(high[1])
    with pytest.raises(ConfigError):
        percentile_interval(reps, 1.5)


# --- agreement ------------------------------------------------------------------------------------
def test_mcnemar_by_hand():
    target = np.zeros((20, 1), np.int64)
    a = target.copy()
    b = target.copy()
    a[:6] = 1  # A wrong on 6 exams
    b[4:7] = 1  # B wrong on 3; both wrong on 2 (4, 5): b = 4, c = 1
    p, stat, n_ab, n_ba = mcnemar_per_class(a, b, target)
    assert (n_ab[0], n_ba[0]) == (4, 1)
    assert stat[0] == pytest.approx((4 - 1) ** 2 / 5)  # no continuity correction
    from scipy.stats import chi2

    assert p[0] == pytest.approx(chi2.sf(1.8, 1))
    p_same, stat_same, *_ = mcnemar_per_class(a, a, target)  # no discordant pairs: undefined
    assert np.isnan(p_same[0]) and np.isnan(stat_same[0])


def test_agreement_table_has_every_pair_and_numpy_kappa():
    target, probs, annot = _data()
    preds = {"model": apply_thresholds(probs, [0.5] * C), "annot": annot, "truth": target}
    table = agreement_table(preds, target, CLASSES)
    assert len(table) == 3 * C
    assert set(zip(table.predictor_a, table.predictor_b)) == {("model", "annot"), ("model", "truth"),
                                                              ("annot", "truth")}
    row = table[(table.predictor_a == "model") & (table.predictor_b == "annot")].set_index("class")
    x, y = preds["model"][:, 2], annot[:, 2]
    observed = np.mean(x == y)
    chance = x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean())
    assert row.loc[CLASSES[2], "kappa"] == pytest.approx((observed - chance) / (1 - chance), abs=1e-6)
    # the reference itself never errs, so McNemar's b (annot wrong, truth right) counts annot's errors
    versus_truth = table[(table.predictor_a == "annot") & (table.predictor_b == "truth")]
    np.testing.assert_array_equal(versus_truth["a_wrong_b_right"], (annot != target).sum(0))


# --- seeds ----------------------------------------------------------------------------------------
def test_select_model_rules():
    scores = {"a": 0.90, "b": 0.95, "c": 0.80, "d": 0.85}  # ascending: c d a b
    assert select_model(scores, "median") == "a"  # position n // 2
    assert select_model(scores, "best") == "b"
    assert select_model(scores, 0) == "c"
    assert select_model(scores, "d") == "d"
    assert select_model(scores, "ensemble") == "ensemble"
    for bad in ("worst", 9, True):
        with pytest.raises(ConfigError):
            select_model(scores, bad)


def test_micro_ap_is_higher_for_a_better_model():
    target, probs, _ = _data()
    noisy = np.clip(probs + np.random.default_rng(1).normal(0, 0.3, probs.shape), 0, 1)
    assert micro_average_precision(probs, target) > micro_average_precision(noisy, target)


# --- precision-recall band --------------------------------------------------------------------------
def test_band_contains_every_curve_point():
    target, probs, _ = _data()
    rng = np.random.default_rng(3)
    seeds = [np.clip(probs + rng.normal(0, 0.1, probs.shape), 0, 1) for _ in range(4)]
    for c in (0, 3):
        curves = [precision_recall_curves(p, target)[c] for p in seeds]
        band = min_max_band(curves)
        for curve in curves:
            at = np.searchsorted(band.recall, curve.recall)
            assert np.all(band.low[at] <= curve.precision + 1e-12)
            assert np.all(curve.precision <= band.high[at] + 1e-12)
    no_positives = np.zeros_like(target)
    assert precision_recall_curves(probs, no_positives) == [None] * C


# --- input checks -----------------------------------------------------------------------------------
def _write(path, frame: pd.DataFrame, index: bool = False):
    frame.to_csv(path, index=index)
    return path


def test_load_labels_accepts_index_column_and_any_column_order(tmp_path):
    target, _, _ = _data(n=5)
    frame = pd.DataFrame(target, columns=list(CLASSES))
    path = _write(tmp_path / "with_index.csv", frame[list(reversed(CLASSES))], index=True)
    np.testing.assert_array_equal(load_labels(path), target)


def _set_cell(frame: pd.DataFrame, row: int, value) -> pd.DataFrame:
    frame.iloc[row, 0] = value
    return frame


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.iloc[:-1], "has 4 rows but the reference has 5"),
        (lambda f: f.drop(columns=["AF"]), "missing column(s) ['AF']"),
        (lambda f: f.assign(extra=0), "unexpected columns ['extra']"),
        (lambda f: f.replace({1: 2}), "labels must be 0/1"),
        (lambda f: _set_cell(f.astype(object), 2, "yes"), "[line 4"),  # CSV line: header + 3rd row
        (lambda f: _set_cell(f.astype(float), 1, np.nan), "[line 3]"),
    ],
)
def test_bad_label_files_name_the_file_and_cause(tmp_path, mutate, message):
    frame = pd.DataFrame(np.eye(5, C, dtype=np.int64), columns=list(CLASSES))
    path = _write(tmp_path / "annotator.csv", mutate(frame))
    with pytest.raises(DataError) as err:
        load_labels(path, n_rows=5)
    assert "annotator.csv" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.full((5, C - 1), 0.5), "shape (5, 5), expected (5, 6)"),
        (np.full((4, C), 0.5), "shape (4, 6), expected (5, 6)"),
        (np.where(np.eye(5, C) > 0, np.nan, 0.5), "NaN or infinite probability"),
        (np.full((5, C), 3.0), "outside [0, 1]"),
    ],
)
def test_bad_prediction_files_name_the_file_and_cause(tmp_path, values, message):
    np.save(tmp_path / "seed.npy", values)
    with pytest.raises(DataError) as err:
        load_probabilities(tmp_path / "seed.npy", n_rows=5)
    assert "seed.npy" in str(err.value) and message in str(err.value)


def test_prediction_csv_and_missing_file(tmp_path):
    _, probs, _ = _data(n=5)
    path = _write(tmp_path / "p.csv", pd.DataFrame(probs, columns=list(CLASSES)))
    np.testing.assert_allclose(load_probabilities(path, n_rows=5), probs)
    with pytest.raises(DataError, match="file not found"):
        load_probabilities(tmp_path / "nope.npy")
    with pytest.raises(DataError, match="unsupported prediction file type"):
        load_probabilities(_write(tmp_path / "p.txt", pd.DataFrame(probs)))

"""Independent validation of the synthetic generator (issue 2, acceptance points 2 and 3).

Point 2: intervals measured back from the signals (``ecglit.evaluation.intervals``, which knows
nothing about the generator) agree with the generator's metadata, and away from the label
thresholds the clean labels agree with the label rules applied to the *measured* values:

- SB: not AF by measurement and HR < 50; ST: not AF and HR > 100; 1dAVb: not AF and PR > 200;
- AF: ``af_rule`` (median successive RR change > 8 % and no repeating P wave, p_consistency < 0.6);
- RBBB/LBBB: the label also needs the morphology, which the delineator does not judge, so positives
  must measure QRS >= 120 ms and negatives must measure QRS < 120 ms unless they carry another
  wide-QRS conduction pattern (the other bundle-branch block or a nonspecific IVCD).

"Away" means > 5 bpm from an HR threshold and > 20 ms from the PR/QRS threshold; every rule is
asserted on all exams. PR cannot be measured when the P wave starts before the preceding T wave
ends (any delineator, and any reader, then sees one merged wave), so the generator never puts a
long PR there: every 1dAVb positive has its P wave clear of the previous T (RR - PR - QT > 0 by the
metadata). Only normal PRs in fast sinus tachycardia merge with the T, as in real tracings.

Point 3 (leakage audit): the nuisance variables alone do not predict any label (AUROC <= 0.6).
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn
from torchmetrics.classification import MultilabelAUROC

from ecglit.constants import CLASSES
from ecglit.data.synthetic import SyntheticConfig, generate_batch
from ecglit.evaluation.intervals import af_rule, measure_batch

POOL_SEED, POOL_SIZE, CHUNK = 2024, 800, 100
# Enriched prevalences so that 800 exams hold >= 100 positives of every class (about 180-290).
ENRICHED = {"prevalence": {"1dAVb": 0.35, "RBBB": 0.35, "LBBB": 0.35, "SB": 0.3, "ST": 0.3, "AF": 0.3}}
NUISANCES = ("record_seconds", "noise_level", "gain", "pad_left", "has_pac", "has_pvc")
LEAK_SEED, LEAK_SIZE = 4048, 2000
META_COLUMNS = (
    "hr_bpm", "pr_ms", "qrs_ms", "qt_ms", "rhythm", "ventricular_conduction", "has_pac", "has_pvc",
)


def _measured_pool(seed: int, size: int, config: SyntheticConfig) -> pd.DataFrame:
    frames = []
    for start in range(0, size, CHUNK):
        signals, _, clean, metas = generate_batch(seed, np.arange(start, min(start + CHUNK, size)), config)
        measured = measure_batch(signals).drop(columns="r_peaks").add_prefix("m_")
        meta = pd.DataFrame(metas)[list(META_COLUMNS)]
        labels = pd.DataFrame(clean, columns=list(CLASSES)).astype(bool)
        frames.append(pd.concat([meta, measured, labels], axis=1))
    pool = pd.concat(frames, ignore_index=True)
    pool["m_af"] = af_rule(pool.rename(columns=lambda c: c.removeprefix("m_")))
    # Time from the end of the previous T wave (QRS onset + QT, per the metadata) to P onset.
    pool["p_clear_of_t_ms"] = 60000.0 / pool["hr_bpm"] - pool["pr_ms"] - pool["qt_ms"]
    return pool


@pytest.fixture(scope="module")
def pool() -> pd.DataFrame:
    return _measured_pool(POOL_SEED, POOL_SIZE, SyntheticConfig.from_dict(ENRICHED))


def rule_agreement(pool: pd.DataFrame) -> pd.DataFrame:
    """Per class: how many exams are away from the threshold and how many agree with the rule."""
    sinus = ~pool["m_af"]
    rules = {
        "SB": (sinus & (pool["m_hr_bpm"] < 50), (pool["hr_bpm"] - 50).abs() > 5),
        "ST": (sinus & (pool["m_hr_bpm"] > 100), (pool["hr_bpm"] - 100).abs() > 5),
        "1dAVb": (sinus & (pool["m_pr_ms"] > 200), pool["pr_ms"].isna() | ((pool["pr_ms"] - 200).abs() > 20)),
        "AF": (pool["m_af"], pd.Series(True, index=pool.index)),
    }
    for cls, other in (("RBBB", "lbbb"), ("LBBB", "rbbb")):
        # Wide by measurement, and not carrying another wide-QRS pattern (morphology from the meta).
        other_pattern = pool["ventricular_conduction"].isin([other, "ivcd"])
        rules[cls] = ((pool["m_qrs_ms"] >= 120) & ~other_pattern, (pool["qrs_ms"] - 120).abs() > 20)
    rows = []
    for name, (predicted, away) in rules.items():
        label = pool[name]
        agree = (predicted == label)[away]
        rows.append({"rule": name, "n_away": int(away.sum()), "n_positive_away": int(label[away].sum()),
                     "agreement": agree.mean(), "positive_agreement": agree[label[away]].mean(),
                     "negative_agreement": agree[~label[away]].mean()})
    return pd.DataFrame(rows).set_index("rule")


def test_pool_has_at_least_100_positives_per_class(pool: pd.DataFrame) -> None:
    counts = pool[list(CLASSES)].sum()
    assert (counts >= 100).all(), counts.to_dict()


def test_heart_rate_measured_back_matches_metadata(pool: pd.DataFrame) -> None:
    sinus = pool[pool["rhythm"] == "sinus"]
    error = (sinus["m_hr_bpm"] - sinus["hr_bpm"]).abs()
    assert len(sinus) >= 400
    assert (error <= 2).mean() >= 0.95, error.describe()


def test_pr_and_qrs_measured_back_match_metadata(pool: pd.DataFrame) -> None:
    sinus = pool[(pool["rhythm"] == "sinus") & (pool["ventricular_conduction"] != "lbbb")]
    clear = sinus[sinus["p_clear_of_t_ms"] > 0]
    pr_error = (clear["m_pr_ms"] - clear["pr_ms"]).abs()
    assert pr_error.median() <= 10 and (pr_error <= 25).mean() >= 0.85, pr_error.describe()
    not_lbbb = pool[pool["ventricular_conduction"] != "lbbb"]
    qrs_error = (not_lbbb["m_qrs_ms"] - not_lbbb["qrs_ms"]).abs()
    assert qrs_error.median() <= 10 and (qrs_error <= 20).mean() >= 0.9, qrs_error.describe()
    # LBBB's broad smooth lobes are measured long (their tails carry > 8 % of the peak velocity)
    # but never short: the measured width stays on the right side of the 120 ms threshold.
    lbbb = pool[pool["ventricular_conduction"] == "lbbb"]
    assert ((lbbb["m_qrs_ms"] - lbbb["qrs_ms"]) > -10).mean() >= 0.95


@pytest.mark.parametrize("rule", ["SB", "ST", "1dAVb", "AF", "RBBB", "LBBB"])
def test_labels_follow_the_rules_applied_to_measured_values(pool: pd.DataFrame, rule: str) -> None:
    table = rule_agreement(pool)
    row = table.loc[rule]
    assert row["n_away"] >= 100 and row["n_positive_away"] >= 50, row.to_dict()
    assert row["agreement"] >= 0.95, table.round(3).to_string()


def test_long_pr_never_puts_the_p_wave_on_the_previous_t(pool: pd.DataFrame) -> None:
    # Where the PR could not be measured by anyone; normal PRs may merge with T in fast tachycardia.
    long_pr = pool[pool["1dAVb"]]
    assert len(long_pr) >= 100 and (long_pr["p_clear_of_t_ms"] > 0).all(), long_pr["p_clear_of_t_ms"].describe()


def test_af_rule_is_not_fooled_by_sinus_distractors(pool: pd.DataFrame) -> None:
    sinus = pool[pool["rhythm"] == "sinus"]
    ectopic = sinus[sinus["has_pac"] | sinus["has_pvc"]]
    assert len(ectopic) >= 30
    assert sinus["m_af"].mean() <= 0.03 and ectopic["m_af"].mean() <= 0.1


@pytest.fixture(scope="module")
def nuisances() -> tuple[np.ndarray, np.ndarray]:
    """The nuisance variables and clean labels of LEAK_SIZE default-config exams."""
    metas, labels = [], []
    for start in range(0, LEAK_SIZE, CHUNK):
        indices = np.arange(start, min(start + CHUNK, LEAK_SIZE))
        _, _, clean, meta = generate_batch(LEAK_SEED, indices, SyntheticConfig())
        metas += meta
        labels.append(clean)
    return pd.DataFrame(metas)[list(NUISANCES)].astype(float).to_numpy(), np.concatenate(labels)


def audit_aurocs(features: np.ndarray, labels: np.ndarray) -> pd.Series:
    """Cross-validated (5-fold) AUROC per class of a logistic regression on ``features`` alone."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    scores = {}
    for k, cls in enumerate(CLASSES):
        p = cross_val_predict(model, features, labels[:, k], cv=folds, method="predict_proba")[:, 1]
        scores[cls] = roc_auc_score(labels[:, k], p)
    return pd.Series(scores)


def test_nuisance_variables_do_not_predict_any_label(nuisances: tuple[np.ndarray, np.ndarray]) -> None:
    aurocs = audit_aurocs(*nuisances)
    assert (aurocs <= 0.6).all(), aurocs.round(3).to_dict()


def test_the_leakage_audit_would_catch_a_leak(nuisances: tuple[np.ndarray, np.ndarray]) -> None:
    # Control: one extra column that depends weakly on the AF label must be flagged.
    features, labels = nuisances
    af = labels[:, CLASSES.index("AF")]
    leak = af + np.random.default_rng(0).normal(0.0, 1.0, len(af))
    aurocs = audit_aurocs(np.column_stack([features, leak]), labels)
    assert aurocs["AF"] > 0.7 and (aurocs.drop("AF") <= 0.6).all()


SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL = SHARED / "realdata"


def _comparison_script():
    spec = importlib.util.spec_from_file_location(
        "synthetic_vs_real", Path(__file__).resolve().parents[1] / "scripts" / "synthetic_vs_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (REAL / "labels.csv").is_file(), reason=f"real records not found at {REAL}")
def test_synthetic_vs_real_comparison_on_a_few_records() -> None:
    script = _comparison_script()
    table = pd.read_csv(REAL / "labels.csv").set_index("record", drop=False)
    # A CPSC RBBB record, a PTB-XL copy with the 200/mV header trap, a Georgia copy with 4880/mV.
    rows = [table.loc["A0001"], table[table["record"] == "HR00001"].iloc[0],
            table[table["source"] == "sebgood_physionet2020"].loc["E00001"]]
    flags, signals = [], []
    for row in rows:
        mv, fs, flag = script.read_real_record(REAL, row)
        assert mv.shape[1] == 12 and fs == 500
        flags.append(flag)
        signals.append(script.to_exam(mv, fs))
    assert flags == ["ok", "fixed-gain", "scale-unknown"]
    real = script.exam_features(signals)
    synth_signals, synth_labels = script.load_synthetic(12, seed=3)
    synth = script.exam_features(synth_signals)
    assert 40 < real.loc[0, "hr_bpm"] < 150 and real.loc[0, "qrs_ms"] >= 110  # A0001 is RBBB
    labels = pd.DataFrame([{c: float(r[c]) if not pd.isna(r[c]) else np.nan for c in CLASSES} for r in rows])
    out = script.compare_features(synth, real, ["hr_bpm", "std_DII"], script.groups(synth_labels),
                                  script.groups(labels))
    row = out[(out["group"] == "all") & (out["feature"] == "hr_bpm")].iloc[0]
    assert row["n_synthetic"] == 12 and row["n_real"] == 3
    assert row["ratio"] == pytest.approx(synth["hr_bpm"].median() / real["hr_bpm"].median())
    assert set(out["group"]) == {"all", "none of the six", *CLASSES}


# ---------------------------------------------------------------- acceptance 4: learnability
LEARN_TRAIN, LEARN_TEST, LEARN_EPOCHS, LEARN_BATCH = 4000, 1000, 4, 64


def _exams(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for start in range(0, n, CHUNK):
        x, y, _, _ = generate_batch(seed, np.arange(start, min(start + CHUNK, n)), SyntheticConfig())
        xs.append(torch.from_numpy(x).transpose(1, 2).to(torch.float16))  # half the memory
        ys.append(torch.from_numpy(y))
    return torch.cat(xs), torch.cat(ys)


class TinyCNN(nn.Module):
    """8 strided conv blocks (4096 -> 16 samples, receptive field about 4 s) + mean/max pooling."""

    def __init__(self, channels: tuple[int, ...] = (32, 32, 48, 48, 64, 64, 96, 96)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip((12, *channels[:-1]), channels):
            conv = nn.Conv1d(c_in, c_out, 7, stride=2, padding=3, bias=False)
            layers += [conv, nn.BatchNorm1d(c_out), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(2 * channels[-1], 64), nn.ReLU(), nn.Linear(64, len(CLASSES)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x * 0.1)  # 1e-4 V -> mV
        return self.head(torch.cat([h.mean(-1), h.amax(-1)], dim=1))


def _train_and_score(
    x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor, y_test: torch.Tensor
) -> torch.Tensor:
    """Train TinyCNN on (x, y) for LEARN_EPOCHS on CPU; per-class AUROC on the test exams."""
    torch.manual_seed(0)
    net = TinyCNN()
    steps = LEARN_EPOCHS * (len(x) // LEARN_BATCH)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.BCEWithLogitsLoss()
    net.train()
    for _ in range(LEARN_EPOCHS):
        order = torch.randperm(len(x))
        for b in range(len(x) // LEARN_BATCH):
            idx = order[b * LEARN_BATCH : (b + 1) * LEARN_BATCH]
            loss = loss_fn(net(x[idx].float()), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
    net.eval()
    with torch.no_grad():
        logits = [net(x_test[i : i + 200].float()) for i in range(0, len(x_test), 200)]
    probs = torch.sigmoid(torch.cat(logits))
    return MultilabelAUROC(num_labels=len(CLASSES), average=None)(probs, y_test.int())


@pytest.mark.slow
def test_a_small_cnn_learns_the_labels_and_not_permuted_ones() -> None:
    started = time.time()
    x, y = _exams(101, LEARN_TRAIN)
    x_test, y_test = _exams(202, LEARN_TEST)  # another seed
    auroc = _train_and_score(x, y, x_test, y_test)
    trained = time.time()
    permuted = _train_and_score(x, y[torch.randperm(len(y), generator=torch.Generator().manual_seed(1))],
                                x_test, y_test)
    print(f"\nlearnability: macro AUROC {auroc.mean():.3f} per class "
          f"{dict(zip(CLASSES, auroc.round(decimals=3).tolist()))} in {trained - started:.0f} s; "
          f"permuted labels macro {permuted.mean():.3f} per class "
          f"{dict(zip(CLASSES, permuted.round(decimals=3).tolist()))} in {time.time() - trained:.0f} s")
    assert auroc.mean() > 0.9
    # Single classes may drift from 0.5 either way (a random function of the signal still depends
    # on the heart rate, say); the control is that nothing is learnt on average.
    assert permuted.mean() <= 0.6

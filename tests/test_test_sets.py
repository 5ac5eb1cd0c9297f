"""Extra labelled test sets (ecglit/evaluation/test_sets.py): records read with their own labels, not-annotated
cells kept out, scores equal to sklearn's, intervals, per-source tables, label-definition mismatches."""

from __future__ import annotations

import copy
import io
import json
import re
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wfdb
from rich.console import Console
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from ecglit.constants import CLASSES
from ecglit.data.definitions import label_definitions
from ecglit.data.synthetic import SyntheticConfig, generate_batch
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.test_sets import (
    TestSetSpec,
    evaluate_test_set,
    open_test_set,
    run_test_sets,
    specs_from_config,
    write_test_set,
)
from ecglit.inference.predictor import Predictor
from ecglit.models.batchnorm import adapt_batchnorm
from ecglit.models.ecg_module import ECGClassifier

REPO = Path(__file__).resolve().parents[1]
TINY_NET = {"_target_": "ecglit.models.resnet.ResNet1d", "stem_filters": 4, "filters": [8],
            "seq_lengths": [64], "kernel_size": 7}
SNOMED = {"1dAVb": "270492004", "RBBB": "59118001", "LBBB": "164909002", "SB": "426177001",
          "AF": "164889003", "ST": "427084000"}
N_PER_SITE = 14


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """Two sites of WFDB records (400 Hz, mV) with #Dx labels; site B never annotates SB or ST."""
    root = tmp_path_factory.mktemp("testset")
    cfg = SyntheticConfig(prevalence={c: 0.3 for c in CLASSES}, label_definitions="physionet")
    x, _, clean, _ = generate_batch(9, range(2 * N_PER_SITE), cfg)
    truth = {}
    for k in range(2 * N_PER_SITE):
        site = "siteA" if k < N_PER_SITE else "siteB"
        name = f"{site[-1]}{k:03d}"
        codes = [SNOMED[c] for c, v in zip(CLASSES, clean[k]) if v] or ["426783006"]  # sinus rhythm
        (root / site).mkdir(exist_ok=True)
        wfdb.wrsamp(name, fs=400, units=["mV"] * 12, sig_name=["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2",
                                                                "V3", "V4", "V5", "V6"],
                    p_signal=(x[k] / 10.0).astype(np.float64), fmt=["16"] * 12, adc_gain=[1000.0] * 12,
                    baseline=[0] * 12, comments=[f"Dx: {','.join(codes)}"], write_dir=str(root / site))
        y = clean[k].astype(np.float64)
        if site == "siteB":
            y[[CLASSES.index("SB"), CLASSES.index("ST")]] = np.nan
        truth[f"{site}/{name}"] = y
    return root, truth


@pytest.fixture(scope="module")
def predictor() -> Predictor:
    torch.manual_seed(0)
    module = ECGClassifier(net=TINY_NET, label_definitions=label_definitions("code"))
    module.thresholds.copy_(torch.tensor([0.5, 0.45, 0.55, 0.5, 0.4, 0.6]))
    return Predictor.from_module(module.eval(), device="cpu", backend="eager", precision="32")


def _spec(root: Path, **kw) -> TestSetSpec:
    cfg = {"root": str(root), "format": "records", "label_definitions": "physionet", "n_resamples": 200,
           "records": {"not_annotated": {"B*": ["SB", "ST"]}}, **kw}
    return specs_from_config({"mine": cfg})[0]


def test_labels_come_from_the_records_and_not_annotated_stays_nan(folder, predictor):
    root, truth = folder
    result = evaluate_test_set(predictor, _spec(root))
    got = {i: row for i, row in zip(result.ids, result.labels)}
    assert len(got) == len(truth)
    for key, y in truth.items():
        name = key.split("/")[1]
        np.testing.assert_array_equal(got[name], y)
    assert sorted(set(result.sources)) == ["siteA", "siteB"]


def test_scores_equal_sklearn_on_annotated_exams(folder, predictor):
    root, _ = folder
    result = evaluate_test_set(predictor, _spec(root))
    overall = result.report["overall"]
    thresholds = np.asarray(predictor.thresholds)
    for i, c in enumerate(CLASSES):
        keep = ~np.isnan(result.labels[:, i])
        y, p = result.labels[keep, i].astype(int), result.probs[keep, i]
        cell = overall["per_class"][c]
        assert overall["support"][c]["not_annotated"] == int((~keep).sum())
        if 0 < y.sum() < len(y):
            assert cell["auroc"]["value"] == pytest.approx(roc_auc_score(y, p), abs=1e-9)
            assert cell["ap"]["value"] == pytest.approx(average_precision_score(y, p), abs=1e-9)
            assert cell["auroc"]["ci_low"] <= cell["auroc"]["value"] <= cell["auroc"]["ci_high"]
        pred = (p >= thresholds[i]).astype(int)
        if pred.sum() + y.sum() > 0:
            assert cell["f1"]["value"] == pytest.approx(f1_score(y, pred), abs=1e-9)
    # SB and ST are scored on site A only: 14 exams, never on the not-annotated site B
    assert overall["support"]["SB"]["positives"] + overall["support"]["SB"]["negatives"] == N_PER_SITE
    site_b = result.report["per_source"]["siteB"]["per_class"]["SB"]
    assert all(v["value"] is None for v in site_b.values())
    aurocs = [v["auroc"]["value"] for v in overall["per_class"].values() if v["auroc"]["value"] is not None]
    assert overall["macro"]["auroc"]["value"] == pytest.approx(np.mean(aurocs), abs=1e-9)


def test_intervals_are_reproducible_and_depend_on_the_seed(folder, predictor):
    root, _ = folder
    a = evaluate_test_set(predictor, _spec(root)).report["overall"]["macro"]["auroc"]
    b = evaluate_test_set(predictor, _spec(root)).report["overall"]["macro"]["auroc"]
    c = evaluate_test_set(predictor, _spec(root, seed=7)).report["overall"]["macro"]["auroc"]
    assert a == b and (a["ci_low"], a["ci_high"]) != (c["ci_low"], c["ci_high"])


def test_mismatched_definitions_are_stated(folder, predictor, caplog):
    root, _ = folder
    result = evaluate_test_set(predictor, _spec(root))
    sb, rbbb = result.report["label_definitions"]["mismatches"]
    assert sb.startswith("SB:") and "sb_max_bpm=50" in sb and "uses 60" in sb
    assert rbbb.startswith("RBBB:") and "rbbb_qrs_min_ms=120" in rbbb and "uses 80" in rbbb
    assert "LABEL DEFINITIONS DIFFER" in caplog.text
    same = evaluate_test_set(predictor, _spec(root, label_definitions="code"))
    assert same.report["label_definitions"]["mismatches"] == []


def test_outputs_beside_the_run(folder, predictor, tmp_path):
    root, truth = folder
    result = evaluate_test_set(predictor, _spec(root))
    files = write_test_set(result, tmp_path)
    report = json.loads(files["metrics"].read_text())
    assert report["name"] == "mine" and report["n_exams"] == len(truth)
    rows = pd.read_csv(files["predictions"], dtype={"true_SB": object})
    site_b = rows[rows["source"] == "siteB"]
    assert site_b["true_SB"].isna().all() and rows[rows["source"] == "siteA"]["true_SB"].notna().all()
    assert not math.isnan(report["overall"]["macro"]["f1"]["value"])


def test_a_set_adapted_to_its_own_exams(folder, predictor, tmp_path):
    root, truth = folder
    plain = evaluate_test_set(predictor, _spec(root))
    before = {k: v.clone() for k, v in predictor.model.state_dict().items()}
    reports = run_test_sets(predictor, {"mine": {"root": str(root), "format": "records", "n_resamples": 50,
                                                 "label_definitions": "physionet", "adapt_batchnorm": True,
                                                 "records": {"not_annotated": {"B*": ["SB", "ST"]}}}},
                            tmp_path, console=Console(file=io.StringIO()))
    assert reports["mine"]["batchnorm_adapted_on"] == len(truth)
    for k, v in predictor.model.state_dict().items():  # the caller's model is untouched
        torch.testing.assert_close(v, before[k], rtol=0, atol=0, msg=k)
    rows = pd.read_csv(tmp_path / "test_mine_predictions.csv")
    # independently: the same network, statistics re-estimated on every exam of the set in one batch
    batches = list(open_test_set(_spec(root)).batches())
    x = torch.from_numpy(np.concatenate([b.x for b in batches])).transpose(1, 2)
    assert [i for b in batches for i in b.ids] == list(plain.ids)
    module = copy.deepcopy(predictor.model)
    adapt_batchnorm(module, [x])
    with torch.no_grad():
        expected = torch.sigmoid(module(x))
    got = rows.set_index("id").loc[list(plain.ids), [f"prob_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(got, expected.numpy(), rtol=1e-4, atol=1e-5)
    assert np.abs(got - plain.probs).max() > 1e-2
    assert plain.report.get("batchnorm_adapted_on") is None


@pytest.mark.parametrize(("cfg", "error", "message"), [
    ({"format": "records"}, ConfigError, "needs a root"),
    ({"root": "x", "format": "pdf"}, ConfigError, "format must be one of"),
    ({"root": "x", "colour": 1}, ConfigError, "unknown keys ['colour']"),
    ({"root": "x", "label_definitions": "martian"}, ConfigError, "unknown label definitions"),
])
def test_bad_test_set_configs(cfg, error, message):
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        specs_from_config({"bad": cfg})


def test_missing_root_and_unlabelled_sets_are_data_errors(tmp_path, predictor, folder):
    with pytest.raises(DataError, match="test set 'mine' not found"):
        evaluate_test_set(predictor, _spec(tmp_path / "nowhere"))
    root, _ = folder
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    for f in (root / "siteA").glob("A000.*"):
        text = f.read_bytes() if f.suffix == ".dat" else re.sub(r"#\s*Dx:.*", "# Note: none", f.read_text()).encode()
        (unlabelled / f.name).write_bytes(text)
    with pytest.raises(DataError, match="has no labels"):
        evaluate_test_set(predictor, _spec(unlabelled))


@pytest.mark.slow
def test_train_py_scores_extra_test_sets(folder, tmp_path):
    root, truth = folder
    run = tmp_path / "run"
    proc = subprocess.run([sys.executable, "train.py", "experiment=smoke", "logger=none", f"hydra.run.dir={run}",
                           f"paths.data_dir={tmp_path / 'data'}",
                           f"+extra_tests.mine={{root: {root}, format: records, label_definitions: code}}"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((run / "test_mine_metrics.json").read_text())
    assert report["n_exams"] == len(truth) and (run / "test_mine_predictions.csv").is_file()
    assert "Test set mine" in proc.stdout

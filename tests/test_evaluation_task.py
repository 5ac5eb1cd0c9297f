"""evaluate.py's config and mode (b): prediction files, annotators, threshold selection, loggers, bad input."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.evaluation.logging_report import log_report
from ecglit.evaluation.pipeline import ReportInputs, ReportOptions, run_report
from ecglit.evaluation.task import evaluate
from ecglit.metrics.thresholds import select_thresholds

REPO = Path(__file__).resolve().parents[1]
C = len(CLASSES)


def compose_evaluate(overrides: list[str], out_dir: Path):
    """The evaluate config as evaluate.py would see it, writing into out_dir."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("evaluate", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out_dir)
        cfg.hydra.runtime.output_dir = str(out_dir)
    HydraConfig.instance().set_config(cfg)
    return cfg


def _fake_set(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    target = (rng.random((n, C)) < 0.25).astype(np.int64)
    target[:2] = 1  # every class has positives
    probs = np.clip(0.5 * target + rng.normal(0.25, 0.15, (n, C)), 0, 1).astype(np.float32)
    return target, probs


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """Test labels, three seeds (two .npy, one .csv), an annotator and a validation set."""
    rng = np.random.default_rng(0)
    target, _ = _fake_set(rng, 150)
    paths = {"gold": tmp_path / "gold.csv", "reader": tmp_path / "reader.csv"}
    pd.DataFrame(target, columns=list(CLASSES)).to_csv(paths["gold"], index=False)
    reader = np.where(rng.random(target.shape) < 0.05, 1 - target, target)
    pd.DataFrame(reader, columns=list(CLASSES)).to_csv(paths["reader"], index=False)
    for k in range(3):
        probs = np.clip(0.5 * target + rng.normal(0.25, 0.15 + 0.05 * k, target.shape), 0, 1).astype(np.float32)
        if k < 2:
            paths[f"seed{k}"] = tmp_path / f"seed{k}.npy"
            np.save(paths[f"seed{k}"], probs)
        else:
            paths[f"seed{k}"] = tmp_path / f"seed{k}.csv"
            pd.DataFrame(probs, columns=list(CLASSES)).to_csv(paths[f"seed{k}"], index=False)
    val_target, val_probs = _fake_set(rng, 120)
    paths["val_labels"], paths["val_probs"] = tmp_path / "val_labels.csv", tmp_path / "val.npy"
    pd.DataFrame(val_target, columns=list(CLASSES)).to_csv(paths["val_labels"], index=False)
    np.save(paths["val_probs"], val_probs)
    return paths


def _mode_b(files: dict[str, Path], *extra: str) -> list[str]:
    return [
        f"report.labels={files['gold']}",
        f"report.predictions=[{files['seed0']},{files['seed1']},{files['seed2']}]",
        f"report.annotators={{reader: {files['reader']}}}",
        *extra,
    ]


def test_mode_b_with_threshold_selection_and_csv_logger(files, tmp_path):
    out = tmp_path / "run"
    cfg = compose_evaluate(_mode_b(files, f"report.threshold_selection.predictions={files['val_probs']}",
                                   f"report.threshold_selection.labels={files['val_labels']}",
                                   "report.figures=false", "report.bootstrap.n_resamples=200", "logger=csv"),
                           out)
    result = evaluate(cfg)
    expected = select_thresholds(torch.as_tensor(np.load(files["val_probs"])),
                                 torch.as_tensor(pd.read_csv(files["val_labels"]).to_numpy()))
    np.testing.assert_allclose(pd.read_csv(out / "thresholds.csv")["threshold"], expected.numpy(), rtol=1e-6)
    # the "median" seed by micro-AP: position 3 // 2 = 1 of the ascending order
    order = sorted(result.micro_ap, key=result.micro_ap.get)
    assert result.selected == order[1]
    seeds = pd.read_csv(out / "seeds.csv")
    assert set(seeds["model"]) == {"seed0", "seed1", "seed2", "ensemble"}
    assert set(pd.read_csv(out / "table2.csv")["predictor"]) == {"DNN", "reader"}
    for name in ("table2", "agreement", "confusion_matrices", "seeds", "model_labels"):
        assert (out / f"{name}.csv").is_file()
    assert (out / "report.md").is_file() and not list(out.glob("*.png"))
    metrics = pd.read_csv(next(out.glob("csv/**/metrics.csv")))
    assert metrics["eval/DNN/f1/macro"].iloc[0] == pytest.approx(
        result.table2.query("predictor == 'DNN' and `class` == 'macro' and metric == 'f1'")["value"].item())


def test_mode_b_explicit_thresholds_and_ensemble(files, tmp_path):
    thresholds = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55]
    cfg = compose_evaluate(_mode_b(files, f"report.thresholds=[{','.join(map(str, thresholds))}]",
                                   "report.select=ensemble", "report.figures=false", "logger=none",
                                   "report.bootstrap.n_resamples=100"), tmp_path / "run")
    result = evaluate(cfg)
    assert result.selected == "ensemble"
    probs = np.mean([np.load(files["seed0"]), np.load(files["seed1"]),
                     pd.read_csv(files["seed2"]).to_numpy(np.float32)], axis=0)
    labels = pd.read_csv(tmp_path / "run" / "model_labels.csv").to_numpy()
    np.testing.assert_array_equal(labels, (probs.astype(np.float32) >= np.float32(thresholds)).astype(int))


def test_probabilities_without_thresholds_is_a_config_error(files, tmp_path):
    cfg = compose_evaluate(_mode_b(files, "logger=none"), tmp_path / "run")
    with pytest.raises(ConfigError, match="report.thresholds"):
        evaluate(cfg)
    with pytest.raises(ConfigError, match="report.labels"):
        evaluate(compose_evaluate(["logger=none"], tmp_path / "run2"))


def test_bad_annotator_file_names_the_file(files, tmp_path):
    short = tmp_path / "short_reader.csv"
    pd.read_csv(files["reader"]).iloc[:-3].to_csv(short, index=False)
    cfg = compose_evaluate(_mode_b(files, "report.thresholds=[0.5,0.5,0.5,0.5,0.5,0.5]", "logger=none")
                           + [f"report.annotators={{reader: {short}}}"], tmp_path / "run")
    with pytest.raises(DataError, match=r"short_reader\.csv: has 147 rows but the reference has 150"):
        evaluate(cfg)


def test_bad_prediction_file_names_the_file(files, tmp_path):
    bad = tmp_path / "nan_seed.npy"
    probs = np.load(files["seed0"])
    probs[7, 2] = np.nan
    np.save(bad, probs)
    cfg = compose_evaluate([f"report.labels={files['gold']}", f"report.predictions=[{bad}]",
                            "report.thresholds=[0.5,0.5,0.5,0.5,0.5,0.5]", "logger=none"], tmp_path / "run")
    with pytest.raises(DataError, match=r"nan_seed\.npy \[row 8\]: NaN or infinite probability"):
        evaluate(cfg)


def test_class_without_positives_is_reported_undefined(tmp_path):
    rng = np.random.default_rng(1)
    target, probs = _fake_set(rng, 100)
    target[:, 4] = 0  # no AF in the reference
    reader = target.copy()
    reader[:3, 4] = 1  # a reader calls AF anyway: precision 0, recall undefined
    inputs = ReportInputs(target=target, model_probs={"m1": probs, "m2": probs[::-1].copy()},
                          thresholds=np.full(C, 0.5), annotators={"reader": reader}, select="best")
    result = run_report(inputs, tmp_path, ReportOptions(n_resamples=100))
    table = result.table2.set_index(["predictor", "class", "metric"])
    assert np.isnan(table.loc[("DNN", "AF", "recall"), "value"])
    assert "no positives in the reference" in table.loc[("DNN", "AF", "recall"), "note"]
    assert table.loc[("reader", "AF", "precision"), "value"] == 0.0
    assert table.loc[("reader", "AF", "f1"), "value"] == 0.0
    assert table.loc[("reader", "AF", "specificity"), "value"] == pytest.approx(97 / 100)
    assert np.isnan(table.loc[("reader", "AF", "recall"), "ci_low"])
    macro = table.loc[("DNN", "macro", "recall")]
    assert macro["note"] == "mean over 5 defined classes" and np.isfinite(macro["value"])
    seeds = result.seeds.set_index(["model", "class", "metric"])
    assert np.isnan(seeds.loc[("m1", "AF", "ap"), "value"]) and np.isnan(seeds.loc[("m1", "AF", "auroc"), "value"])
    report = (tmp_path / "report.md").read_text()
    assert "n/a*" in report and "DNN / AF / recall: undefined" in report
    assert (tmp_path / "precision_recall.png").stat().st_size > 20_000


def test_wandb_gets_tables_figures_and_scalars_in_one_step(tmp_path):
    class WandbLogger:  # stands in for lightning's: log_report recognises it by class name
        def __init__(self) -> None:
            self.logged: list[dict] = []
            self.experiment = SimpleNamespace(log=self.logged.append)

        def log_hyperparams(self, params) -> None:
            self.params = params

        def save(self) -> None:
            pass

    import wandb

    rng = np.random.default_rng(2)
    target, probs = _fake_set(rng, 80)
    result = run_report(ReportInputs(target=target, model_probs={"m": probs}, thresholds=np.full(C, 0.5)),
                        tmp_path, ReportOptions(n_resamples=50))
    logger = WandbLogger()
    log_report([logger], result, {"report": {"select": "median"}})
    (payload,) = logger.logged
    assert isinstance(payload["eval/table2"], wandb.Table) and isinstance(payload["eval/seeds"], wandb.Table)
    assert isinstance(payload["eval/figures/precision_recall"], wandb.Image)
    assert isinstance(payload["eval/figures/bootstrap_f1"], wandb.Image)
    assert 0.0 <= payload["eval/DNN/f1/macro"] <= 1.0
    assert logger.params == {"report": {"select": "median"}}


def test_cli_reports_bad_input_in_one_line(files, tmp_path):
    import os
    import subprocess
    import sys

    bad = tmp_path / "gold_bad.csv"
    pd.read_csv(files["gold"]).replace({1: 7}).to_csv(bad, index=False)
    proc = subprocess.run([sys.executable, "evaluate.py", f"report.labels={bad}", "logger=none",
                           f"hydra.run.dir={tmp_path / 'run'}"], cwd=REPO, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1
    assert "evaluate.py: error:" in proc.stderr and "gold_bad.csv [line" in proc.stderr and "must be 0/1" in proc.stderr
    assert "Traceback" not in proc.stderr

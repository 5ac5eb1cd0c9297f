"""Zero-shot vs recalibrated vs fine-tuned, cross-validated on a labelled shard folder (issue 12.4).

    python scripts/transfer_report.py --ckpt synthetic_resnet_small --test-set realdata --out docs/transfer-realdata.md
    python scripts/transfer_report.py --ckpt CKPT --shards DIR --out report.md

``--test-set NAME`` converts the record folder of ``conf/test_sets/NAME.yaml`` with the importer options
that preset declares (into ``--work``); ``--shards DIR`` takes a folder converted already
(``python -m ecglit.data.convert``: labels from the records, empty cells not annotated, one patient_id per
recording found twice). Two schemes, each giving one out-of-fold prediction per exam:
- k-fold (``--folds``, stratified by class, whole patients: ``data.split=kfold``);
- leave one database out (the ``database`` column, from the public record names: ``data.split=holdout``).
Per fold, from the same starting model:
- zero-shot: the model's own thresholds;
- adapted: BatchNorm statistics re-estimated on the training folds' exams (labels unused), the model's own
  thresholds (``predict.py adapt_batchnorm=true adapt_on=...``);
- adapted on the test exams: the same on the held-out exams themselves (``predict.py adapt_batchnorm=true``
  on them; under leave one database out, on one database);
- recalibrated: thresholds re-chosen (max F1) on the training folds (``ecglit.calibrate.fit_data_thresholds``);
- adapted + recalibrated: BatchNorm statistics re-estimated on the training folds' exams (labels unused),
  then thresholds re-chosen on them (``python -m ecglit.calibrate adapt_batchnorm=true``);
- fine-tuned: ``train.py experiment=finetune init_from=CKPT`` on the training folds (early stopping on a
  validation split of them, thresholds re-chosen on all of them: the experiment's ``thresholds_on=train_val``),
  then predicted on the held-out fold (``--finetune``: its options, e.g. ``module.freeze_backbone=true``);
- fine-tuned, validation thresholds: the same run's best checkpoint with the thresholds of its validation
  split alone (``thresholds_on=val``; that split is a few dozen exams).
Pooled out-of-fold F1 / AUROC per class with bootstrap 95% intervals go to ``--out`` (markdown) and a JSON
beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecglit.calibrate import fit_data_thresholds  # noqa: E402
from ecglit.configs import compose  # noqa: E402
from ecglit.constants import CLASSES  # noqa: E402
from ecglit.data.code15 import build_code15_index  # noqa: E402
from ecglit.data.datamodule import ECGDataModule  # noqa: E402
from ecglit.data.importers.cli import options_from_config  # noqa: E402
from ecglit.data.importers.convert import convert  # noqa: E402
from ecglit.evaluation.bootstrap import (  # noqa: E402
    bootstrap_probability_scores,
    macro_replicates,
    percentile_interval,
    probability_scores,
)
from ecglit.inference.adaptation import adapt_to_exams  # noqa: E402
from ecglit.inference.predictor import Predictor  # noqa: E402
from ecglit.models.batchnorm import batchnorm_layers  # noqa: E402
from ecglit.models.checkpoint import load_classifier  # noqa: E402

METHODS = ("zero-shot", "adapted", "adapted on the test exams", "recalibrated", "adapted + recalibrated",
           "fine-tuned, validation thresholds", "fine-tuned")
AUROC, F1 = 4, 3


def _datamodule(shards: Path, **split) -> ECGDataModule:
    dm = ECGDataModule(root=shards, missing_labels="keep", val_fraction=0.2, batch_size=64, **split)
    dm.setup("fit")
    dm.setup("test")
    return dm


def _predict(predictor: Predictor, dm: ECGDataModule, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ds = dm.dataset(split)
    x = ds.read_tracings(np.arange(len(ds)))
    return np.asarray(ds.exam_ids), predictor.predict_batch(x), np.asarray(ds.labels, np.float64)


def _recalibrate(predictor: Predictor, dm: ECGDataModule) -> np.ndarray:
    """Thresholds re-chosen (max F1) on the fold's training exams (train and val splits), as
    ``train.py thresholds_on=train_val`` chooses them."""
    return fit_data_thresholds(predictor, dm)[0]


def _adapted(ckpt: str, dm: ECGDataModule, splits: tuple[str, ...]) -> Predictor:
    """The starting model with its BatchNorm statistics re-estimated on the exams of ``splits`` (their labels
    unused), through the path of ``predict.py``/``ecglit.calibrate adapt_batchnorm=true``."""
    module = load_classifier(ckpt)
    if batchnorm_layers(module.net):  # GroupNorm: every exam is normalised by itself, nothing to adapt
        x = np.concatenate([dm.dataset(s).read_tracings(np.arange(len(dm.dataset(s)))) for s in splits])
        adapt_to_exams(module.net, lambda: [x], float(module.hparams.get("input_scale", 1.0)), 64,
                       f"the fold's {' and '.join(splits)} exams")
    return Predictor.from_module(module, device="cpu", backend="eager", precision="32")


def finetune_dir(work: Path, scheme: str, ckpt: str, finetune_overrides: list[str], fold: int) -> Path:
    """Where one fold's fine-tuning run goes. Runs found there are reused (a rerun of the report only
    predicts), so the folder is keyed by the run's whole config (the starting model, the options and the
    experiment's defaults): another config trains anew."""
    composed = compose("train", ["experiment=finetune", f"init_from={ckpt}", *finetune_overrides])
    key = hashlib.sha1(OmegaConf.to_yaml(composed).encode()).hexdigest()[:12]
    return work / scheme / key / f"fold{fold}"


def _finetune(ckpt: str, shards: Path, run_dir: Path, overrides: list[str]) -> tuple[Path, Path]:
    """Fine-tune ``ckpt`` on one fold's training exams (``overrides``: its split and the user's options);
    returns the best checkpoint with its validation split's thresholds and the one with thresholds re-chosen
    on the train and val splits (``thresholds_on=train_val``, the experiment's default)."""
    if not (run_dir / "test_metrics.json").is_file():
        cmd = [sys.executable, "train.py", "experiment=finetune", f"init_from={ckpt}", "data=code15",
               f"data.root={shards}", "data.label_definitions=physionet", "logger=csv",
               f"hydra.run.dir={run_dir}", "callbacks.rich_progress_bar=null", *overrides,
               "thresholds_on=train_val"]  # last: both rows come from this run
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"fine-tuning failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
    train_val = Path(json.loads((run_dir / "test_metrics.json").read_text())["checkpoint"])
    return train_val.with_name(train_val.name.removesuffix("-train_val.ckpt") + ".ckpt"), train_val


def run_scheme(name: str, splits: list[dict], ckpt: str, shards: Path, work: Path,
               finetune_overrides: list[str]) -> dict:
    """Out-of-fold predictions of every method under one scheme: {method: (ids, probs, labels, thr)}."""
    base = Predictor.from_checkpoint(ckpt, device="cpu", backend="eager", precision="32")
    pooled = {m: {"ids": [], "probs": [], "labels": [], "pred": []} for m in METHODS}
    for k, split in enumerate(splits):
        dm = _datamodule(shards, **split)
        ids, probs, labels = _predict(base, dm, "test")
        recal = _recalibrate(base, dm)
        adapted = _adapted(ckpt, dm, ("train", "val"))
        _, adapted_probs, _ = _predict(adapted, dm, "test")
        _, on_test_probs, _ = _predict(_adapted(ckpt, dm, ("test",)), dm, "test")
        overrides = [*finetune_overrides]
        overrides += [f"data.{key}='{value}'" if isinstance(value, str) else f"data.{key}={value}"
                      for key, value in split.items()]
        if split["split"] == "holdout":  # a database may hold every positive of a class (CPSC: LBBB)
            overrides.append("allow_missing_positives=true")
        val_ckpt, train_val_ckpt = _finetune(ckpt, shards, finetune_dir(work, name, ckpt, finetune_overrides, k),
                                             overrides)
        tuned = Predictor.from_checkpoint(train_val_ckpt, device="cpu", backend="eager", precision="32")
        tuned_val = Predictor.from_checkpoint(val_ckpt, device="cpu", backend="eager", precision="32")
        _, tuned_probs, _ = _predict(tuned, dm, "test")
        for method, p, thr in (("zero-shot", probs, base.thresholds), ("adapted", adapted_probs, base.thresholds),
                               ("adapted on the test exams", on_test_probs, base.thresholds),
                               ("recalibrated", probs, recal),
                               ("adapted + recalibrated", adapted_probs, _recalibrate(adapted, dm)),
                               ("fine-tuned, validation thresholds", tuned_probs, tuned_val.thresholds),
                               ("fine-tuned", tuned_probs, tuned.thresholds)):
            pooled[method]["ids"] += list(ids)
            pooled[method]["probs"].append(p)
            pooled[method]["labels"].append(labels)
            pooled[method]["pred"].append((p >= np.asarray(thr)[None, :]).astype(float))
        print(f"{name} fold {k}: {len(ids)} test exams", flush=True)
    return {m: {k: (np.concatenate(v) if k != "ids" else v) for k, v in d.items()} for m, d in pooled.items()}


def scores(pooled: dict, n_resamples: int = 1000) -> dict:
    """Per method: per-class and macro F1/AUROC with intervals on the pooled out-of-fold predictions.

    F1 uses each fold's own thresholds (stored as hard predictions, scored at 0.5)."""
    out = {}
    for method, d in pooled.items():
        hard = d["pred"]
        point = probability_scores(d["probs"], d["labels"], np.full(len(CLASSES), 0.5))
        point[:, :4] = probability_scores(hard, d["labels"], np.full(len(CLASSES), 0.5))[:, :4]
        reps = bootstrap_probability_scores(d["probs"], d["labels"], np.full(len(CLASSES), 0.5), n_resamples)
        reps_hard = bootstrap_probability_scores(hard, d["labels"], np.full(len(CLASSES), 0.5), n_resamples)
        reps[..., :4] = reps_hard[..., :4]
        low, high = percentile_interval(reps)
        macro = macro_replicates(point[None, None])[0, 0]
        m_low, m_high = percentile_interval(macro_replicates(reps[:, None])[:, 0])
        out[method] = {
            "per_class": {c: {"f1": [point[i, F1], low[i, F1], high[i, F1]],
                              "auroc": [point[i, AUROC], low[i, AUROC], high[i, AUROC]]}
                          for i, c in enumerate(CLASSES)},
            "macro": {"f1": [macro[F1], m_low[F1], m_high[F1]], "auroc": [macro[AUROC], m_low[AUROC], m_high[AUROC]]},
            "n_exams": len(d["ids"]),
        }
    return out


def _cell(v: list[float]) -> str:
    return "n/a" if np.isnan(v[0]) else f"{v[0]:.2f} [{v[1]:.2f}-{v[2]:.2f}]"


def markdown(results: dict, ckpt: str, command: str) -> str:
    lines = ["# Transfer to real records: zero-shot, adapted, recalibrated, fine-tuned", "",
             f"Starting model: `{ckpt}`. Generated by `{command}`.", "",
             "Out-of-fold predictions pooled over the folds; F1 at each fold's thresholds; 95% bootstrap "
             "intervals over exams. Recalibration, fine-tuning and \"adapted\" only ever see the training folds "
             "(\"adapted on the test exams\" sees the held-out exams, never their labels).", ""]
    for scheme, per_method in results.items():
        lines += [f"## {scheme}", "", "| method | " + " | ".join(f"{c} F1" for c in CLASSES) +
                  " | macro F1 | macro AUROC |", "|---" * (len(CLASSES) + 3) + "|"]
        for method, s in per_method.items():
            lines.append(f"| {method} | " + " | ".join(_cell(s["per_class"][c]["f1"]) for c in CLASSES) +
                         f" | **{_cell(s['macro']['f1'])}** | {_cell(s['macro']['auroc'])} |")
        lines += ["", "| method | " + " | ".join(f"{c} AUROC" for c in CLASSES) + " |",
                  "|---" * (len(CLASSES) + 1) + "|"]
        for method, s in per_method.items():
            lines.append(f"| {method} | " + " | ".join(_cell(s["per_class"][c]["auroc"]) for c in CLASSES) + " |")
        lines.append("")
    return "\n".join(lines)


def _convert_test_set(name: str, out: Path) -> Path:
    """The preset's records converted with the importer options it declares (done once)."""
    spec = compose("train", [f"test_sets={name}", f"paths.root_dir={REPO}"]).extra_tests[name]
    if not (out / "exams.csv").is_file():
        convert(spec.root, out, options_from_config(spec.get("records") or {}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ckpt", required=True)
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument("--shards", type=Path, help="a converted, labelled shard folder")
    inputs.add_argument("--test-set", help="a preset of conf/test_sets (a labelled record folder)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--sources", nargs="*", default=None, help="databases to hold out (default: every one "
                                                                   "with at least 20 labelled exams)")
    parser.add_argument("--work", type=Path, default=Path("outputs/transfer"))
    parser.add_argument("--finetune", nargs="*", default=[], metavar="OVERRIDE",
                        help="train.py overrides for the fine-tuning runs, e.g. module.freeze_backbone=true")
    parser.add_argument("--schemes", nargs="+", choices=("kfold", "loso"), default=["kfold", "loso"])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.test_set:
        args.shards = _convert_test_set(args.test_set, args.work / "shards")
    index = build_code15_index(args.shards, missing_labels="keep", extra_columns=("database",))
    sources = args.sources
    if sources is None:
        names, counts = np.unique(np.asarray(index.columns["database"], str), return_counts=True)
        sources = [n for n, c in zip(names, counts) if c >= 20 and n not in ("", "nan")]
    schemes = {f"{args.folds}-fold cross-validation (stratified by class, whole patients)":
               [{"split": "kfold", "folds": args.folds, "fold": k} for k in range(args.folds)],
               "leave one database out": [{"split": "holdout", "holdout_column": "database", "holdout_value": s}
                                        for s in sources]}
    results = {}
    for name, splits in schemes.items():
        slug = "kfold" if "fold" in name else "loso"
        if slug in args.schemes:
            results[name] = scores(run_scheme(slug, splits, args.ckpt, args.shards, args.work, args.finetune))
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown(results, args.ckpt, command))
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=float))
    print(markdown(results, args.ckpt, command))


if __name__ == "__main__":
    main()

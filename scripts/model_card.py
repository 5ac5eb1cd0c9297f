"""The model card written beside a shipped model (scripts/build_pretrained.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ecglit.constants import CLASSES
from ecglit.data.synthetic import GENERATOR_VERSION  # this checkout's, which trains the model

NAME = "synthetic_resnet_small"


def _cell(cell: dict) -> str:
    if cell.get("value") is None:
        return "n/a"
    return f"{cell['value']:.3f} [{cell['ci_low']:.2f}-{cell['ci_high']:.2f}]"


def _members(members: list[tuple[int, Path]]) -> list[str]:
    """One table row per (seed, training run): the member's own real-record result, at its own thresholds."""
    rows = []
    for seed, run in members:
        macro = json.loads((run / "test_realdata_metrics.json").read_text())["overall"]["macro"]
        rows.append(f"| {seed} | {_cell(macro['auroc'])} | {_cell(macro['f1'])} |")
    return rows


def _weak_class(name: str, cell: dict) -> str:
    f1, auroc = cell["f1"]["value"], cell["auroc"]["value"]
    why = ("its real positives rank above the negatives but score below the threshold chosen on synthetic data: "
           "recalibrate on local data (`python -m ecglit.calibrate`) or adapt the model to unlabelled local exams "
           "(`predict.py adapt_batchnorm=true`)" if auroc >= 0.9
           else f"the synthetic {name} does not yet carry over to real records")
    return (f"- **{name}: F1 {f1:.2f} on the real records at the shipped threshold** (AUROC {auroc:.2f}): {why}; "
            "see docs/synthetic-vs-real.md.")


def model_card(run: Path, command: str, seeds: list[int], members: list[tuple[int, Path]] | None = None) -> str:
    """The card of the model scored in ``run`` (test_metrics.json, test_realdata_metrics.json); ``members``:
    an ensemble's (seed, training run) pairs."""
    test = json.loads((run / "test_metrics.json").read_text())
    real = json.loads((run / "test_realdata_metrics.json").read_text())
    overall = real["overall"]
    rows = [f"| {c} | {_cell(overall['per_class'][c]['auroc'])} | {_cell(overall['per_class'][c]['f1'])} | "
            f"{_cell(overall['per_class'][c]['recall'])} | {_cell(overall['per_class'][c]['specificity'])} | "
            f"{overall['support'][c]['positives']}/{overall['support'][c]['negatives']} |" for c in CLASSES]
    per_source = [f"| {name} | {s['n_exams']} | {_cell(s['macro']['auroc'])} | {_cell(s['macro']['f1'])} |"
                  for name, s in real["per_source"].items()]
    thresholds = ", ".join(f"{c} {t:.3g}" for c, t in test["thresholds"].items())
    return "\n".join([
        f"# Model card: `{NAME}`", "",
        f"Built {dt.date.today().isoformat()} by `{command}` (seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}); use it as "
        f"`python predict.py ckpt={NAME} input=<records> output=predictions.csv`.", "",
        "## What it is", "",
        *([f"- Network: an ensemble of {len(seeds)} `resnet_small` networks (ecglit's ResNet1d: stem 16, units "
           "16/32/64/128 filters, kernel 13, 452k parameters each), trained by the same recipe from seeds "
           f"{', '.join(map(str, seeds))}; its probability is the mean of theirs (`ecglit/models/ensemble.py`). "
           "Weights stored in float16 (the model was scored after that rounding; it computes in float32). "
           "Input 12 leads x 4096 samples at 400 Hz in 1e-4 V (input scale 1)."] if members else
          ["- Network: `resnet_small` (ecglit's ResNet1d: stem 16, units 16/32/64/128 filters, kernel 13, 452k "
           "parameters), input 12 leads x 4096 samples at 400 Hz in 1e-4 V (input scale 1)."]),
        "- Outputs: six independent probabilities 1dAVb, RBBB, LBBB, SB, AF, ST; labels at the thresholds "
        f"chosen (max F1 per class{', for the ensemble itself' if members else ''}) on synthetic validation: "
        f"{thresholds}.",
        f"- Training data: only ecglit's synthetic ECGs (generator v{GENERATOR_VERSION}, "
        "`conf/experiment/synthetic_to_real.yaml`), "
        "with batch augmentation (`conf/augment/default.yaml`). No real record was used for training, "
        "checkpoint selection or thresholds.",
        "- Label definitions: PhysioNet/AHA (`label_definitions=physionet`): SB is sinus rhythm < 60 bpm, ST "
        "> 100 bpm, 1dAVb PR > 200 ms, LBBB QRS >= 120 ms, RBBB the right-bundle pattern (rSR' in "
        "V1, a broad terminal S in I and V6), complete or incomplete, as CPSC/CinC label it. Under "
        "CODE's definitions (SB < 50 bpm, complete RBBB only) its SB and RBBB outputs answer a different question.", "",
        "## Results on real records (zero-shot)", "",
        f"`../shared/realdata`: {real['n_labelled']} labelled of {real['n_exams']} records (PhysioNet/CinC "
        "2020-2021, CPSC 2018, PTB-XL; see its README). Per class only where annotated; 95% bootstrap "
        "intervals over records.", "",
        "| class | AUROC | F1 | sensitivity | specificity | positives/negatives |", "|---|---|---|---|---|---|",
        *rows,
        f"| **macro** | **{_cell(overall['macro']['auroc'])}** | **{_cell(overall['macro']['f1'])}** | "
        f"{_cell(overall['macro']['recall'])} | {_cell(overall['macro']['specificity'])} | |", "",
        "Per source:", "", "| source | records | macro AUROC | macro F1 |", "|---|---|---|---|", *per_source, "",
        *(["Each member alone (its own thresholds, from its training run):", "",
           "| seed | macro AUROC | macro F1 |", "|---|---|---|", *_members(members), ""] if members else []),
        f"Synthetic test split: macro AUROC {test['macro']['auroc']:.4f}, macro F1 "
        f"{test['macro']['f1']:.3f}.", "",
        "## Limitations", "",
        "- Research use only. Not a medical device; not validated for clinical decisions.",
        *[_weak_class(c, overall["per_class"][c]) for c in CLASSES
          if (overall["per_class"][c]["f1"]["value"] or 0.0) < 0.5],
        *([f"- Cost: each prediction runs all {len(members)} members, about {len(members)} times the time of one "
           "network."] if members else []),
        "- Few real positives per class (9-39): the intervals above are wide. Real-record performance on other "
        "sources, devices and populations will differ; thresholds chosen on synthetic data may need "
        "recalibration (`python -m ecglit.calibrate`) or fine-tuning (`experiment=finetune`) on local data. "
        "Re-estimating the BatchNorm statistics on a few dozen unlabelled exams (`predict.py adapt_batchnorm=true`) "
        "raised macro F1 to 0.71 out of fold, also on databases left out (docs/transfer-realdata.md).",
        "- Six classes only: other findings (flutter, pacing, ischaemia, ...) are not reported and may be "
        "mistaken for one of the six.",
        "- Trained on 10 s (or 7 s) records at 400 Hz; longer records are centre-cropped by the importers.", ""])

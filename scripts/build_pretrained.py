"""Rebuild the shipped model: train it with its experiment, then export it into ecglit/pretrained/.

    python scripts/build_pretrained.py                       # experiment=synthetic_to_real, seed 0
    python scripts/build_pretrained.py --seed 1 --out-dir outputs/pretrained_check   # a rebuild to compare

It runs ``python train.py experiment=synthetic_to_real seed=S`` (trained only on ecglit's synthetic ECGs;
the real records of ../shared/realdata are scored as an extra test set and never used to choose anything),
then writes a slim copy of the best checkpoint (weights, thresholds, hyper-parameters, provenance) as
``<out-dir>/synthetic_resnet_small.ckpt`` and its model card ``synthetic_resnet_small.md`` with the
real-record results of that run. The default out-dir is the package's own ``ecglit/pretrained``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ecglit.constants import CLASSES  # noqa: E402
from ecglit.data.synthetic import GENERATOR_VERSION  # noqa: E402  (this checkout's, which trains the model)
from ecglit.models.checkpoint import export_weights  # noqa: E402

NAME = "synthetic_resnet_small"
EXPERIMENT = "synthetic_to_real"


def _cell(cell: dict) -> str:
    if cell.get("value") is None:
        return "n/a"
    return f"{cell['value']:.3f} [{cell['ci_low']:.2f}-{cell['ci_high']:.2f}]"


def model_card(run: Path, command: str, seed: int) -> str:
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
        f"Built {dt.date.today().isoformat()} by `{command}` (seed {seed}); use it as "
        f"`python predict.py ckpt={NAME} input=<records> output=predictions.csv`.", "",
        "## What it is", "",
        "- Network: `resnet_small` (ecglit's ResNet1d: stem 16, units 16/32/64/128 filters, kernel 13, 452k "
        "parameters), input 12 leads x 4096 samples at 400 Hz in 1e-4 V (input scale 1).",
        "- Outputs: six independent probabilities 1dAVb, RBBB, LBBB, SB, AF, ST; labels at the thresholds "
        f"chosen (max F1 per class) on synthetic validation: {thresholds}.",
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
        f"Synthetic test split of the same run: macro AUROC {test['macro']['auroc']:.3f}, macro F1 "
        f"{test['macro']['f1']:.3f}.", "",
        "## Limitations", "",
        "- Research use only. Not a medical device; not validated for clinical decisions.",
        *[f"- **{c}: F1 {overall['per_class'][c]['f1']['value']:.2f} on the real records at the shipped threshold** "
          f"(AUROC {overall['per_class'][c]['auroc']['value']:.2f}): the synthetic {c} does not yet carry over to "
          "real records; see docs/synthetic-vs-real.md." for c in CLASSES
          if (overall['per_class'][c]['f1']['value'] or 0.0) < 0.5],
        "- Few real positives per class (9-39): the intervals above are wide. Real-record performance on other "
        "sources, devices and populations will differ; thresholds chosen on synthetic data may need "
        "recalibration (`python -m ecglit.calibrate`) or fine-tuning (`experiment=finetune`) on local data.",
        "- Six classes only: other findings (flutter, pacing, ischaemia, ...) are not reported and may be "
        "mistaken for one of the six.",
        "- Trained on 10 s (or 7 s) records at 400 Hz; longer records are centre-cropped by the importers.", ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", type=Path, default=None, help="where the training run goes "
                                                                    "(default outputs/pretrained/seed<S>)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "ecglit" / "pretrained")
    parser.add_argument("--skip-training", action="store_true", help="export an existing run")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for train.py")
    args = parser.parse_args()
    run = args.run_dir or REPO / "outputs" / "pretrained" / f"seed{args.seed}"
    train_cmd = [sys.executable, "train.py", f"experiment={EXPERIMENT}", f"seed={args.seed}", "logger=csv",
                 f"hydra.run.dir={run}", *args.overrides]
    if not args.skip_training:
        subprocess.run(train_cmd, cwd=REPO, check=True)
    best = json.loads((run / "test_metrics.json").read_text())["checkpoint"]
    # the command that rebuilds this model: where the run and the file go does not change it
    command = "python scripts/build_pretrained.py" + (f" --seed {args.seed}" if args.seed else "") + \
        "".join(f" {o}" for o in args.overrides)
    out = export_weights(best, args.out_dir / f"{NAME}.ckpt", overwrite=True,
                         provenance={"command": command, "experiment": EXPERIMENT, "seed": args.seed,
                                     "generator_version": GENERATOR_VERSION,
                                     "built": dt.date.today().isoformat()})
    (args.out_dir / f"{NAME}.md").write_text(model_card(run, command, args.seed))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and its model card")


if __name__ == "__main__":
    main()

"""Ablation of the synthetic-to-real recipe: what each change does to the real-record AUROC.

    python scripts/real_ablation.py --seeds 1 2 3 --out docs/real-ablation.json

Each row is ``train.py experiment=synthetic_to_real`` with a short schedule (``--epochs``, ``--n``) and some
parts switched off; every run scores ../shared/realdata as an extra test set (never used for choices). The
table (per-class real AUROC, macro AUROC and macro F1: mean and spread over the seeds) is printed and saved
as JSON; docs/synthetic-vs-real.md shows it. Runs already finished (their test_realdata_metrics.json exists
in ``--work``) are not run again, so the script can be stopped and restarted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
OFF_RANDOMISATION = ["data.generator.rotation_scale=1.0", "data.generator.vector_anisotropy=0",
                     "data.generator.precordial_variability=0", "data.generator.beat_jitter=0",
                     "data.generator.morphology_spread=0", "data.generator.motion_artifact_rate=0"]
OFF_NEGATIVES = ["data.generator.flutter_fraction=0", "data.generator.svt_fraction=0",
                 "data.generator.paced_fraction=0"]
# row name -> overrides on top of experiment=synthetic_to_real
ROWS: dict[str, list[str]] = {
    "full recipe (generator v3 + augmentation)": [],
    "- augmentation": ["augment=none"],
    "- domain randomisation (rotation, anisotropy, precordial, beat jitter, morphology spread, motion)":
        OFF_RANDOMISATION,
    "- non-sinus negatives (flutter, SVT, paced)": OFF_NEGATIVES,
    "- fine AF (f-waves 0.02-0.15 mV per axis)": ["data.generator.af_amp_mv=[0.02,0.15]"],
    "CODE label definitions (SB < 50 bpm, complete RBBB only)": ["data.generator.label_definitions=code"],
    "- all of the above (no augmentation, no randomisation, no new negatives, coarse AF)":
        ["augment=none", *OFF_RANDOMISATION, *OFF_NEGATIVES, "data.generator.af_amp_mv=[0.02,0.15]"],
}


def run(name: str, overrides: list[str], seed: int, args: argparse.Namespace) -> dict | None:
    slug = f"row{list(ROWS).index(name)}_seed{seed}"
    run_dir = args.work / slug
    metrics = run_dir / "test_realdata_metrics.json"
    if not metrics.is_file():
        cmd = [sys.executable, "train.py", "experiment=synthetic_to_real", f"seed={seed}",
               f"trainer.max_epochs={args.epochs}", f"data.n={args.n}", "logger=csv",
               "callbacks.rich_progress_bar=null", f"hydra.run.dir={run_dir}", *overrides]
        print(" ".join(cmd[1:]), flush=True)
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        if proc.returncode != 0 or not metrics.is_file():
            print(f"  failed: {proc.stderr[-1500:]}", flush=True)
            return None
    report = json.loads(metrics.read_text())["overall"]
    return {"auroc": {c: report["per_class"][c]["auroc"]["value"] for c in CLASSES},
            "macro_auroc": report["macro"]["auroc"]["value"], "macro_f1": report["macro"]["f1"]["value"]}


def _mean_sd(values: list[float]) -> str:
    v = np.array([x for x in values if x is not None], float)
    if len(v) == 0:
        return "n/a"
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def table(results: dict[str, list[dict]]) -> str:
    head = "| change | " + " | ".join(CLASSES) + " | macro AUROC | macro F1 | seeds |"
    lines = [head, "|---" * (len(CLASSES) + 4) + "|"]
    for name, runs in results.items():
        runs = [r for r in runs if r is not None]
        cells = [_mean_sd([r["auroc"][c] for r in runs]) for c in CLASSES]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_mean_sd([r['macro_auroc'] for r in runs])} | "
                     f"{_mean_sd([r['macro_f1'] for r in runs])} | {len(runs)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n", type=int, default=16000)
    parser.add_argument("--rows", type=int, nargs="*", default=None, help="row numbers to run (default all)")
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "real_ablation")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "real-ablation.json")
    args = parser.parse_args()
    names = [n for k, n in enumerate(ROWS) if args.rows is None or k in args.rows]
    results = {name: [run(name, ROWS[name], seed, args) for seed in args.seeds] for name in names}
    command = "python scripts/real_ablation.py" + "".join(f" {a}" for a in sys.argv[1:])
    args.out.write_text(json.dumps({"command": command, "epochs": args.epochs, "n": args.n, "seeds": args.seeds,
                                    "results": results}, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()

"""Rebuild the shipped model: train its members, join them, export it into ecglit/pretrained/.

    python scripts/build_pretrained.py                 # seeds 0 1 2: an ensemble of three (~60 min, 2 cores)
    python scripts/build_pretrained.py --seeds 3 4 5 --out-dir outputs/pretrained_check # a rebuild to compare
    python scripts/build_pretrained.py --seeds 0            # one network, no ensemble (~25 min)

Each seed runs ``python train.py experiment=synthetic_to_real seed=S`` (trained only on ecglit's synthetic
ECGs; the real records of ../shared/realdata are scored as an extra test set and never used to choose
anything) into ``<run-root>/seed<S>``. With several seeds, their best checkpoints become one
:class:`ecglit.models.ensemble.Ensemble` (the mean of their probabilities), its weights rounded to float16
(the file stays under 5 MB), its thresholds chosen (max F1 per class) on the synthetic validation split of
the first seed's run, and it is scored on that run's synthetic test split and extra test sets, in
``<run-root>/ensemble``. Then a slim checkpoint ``<out-dir>/synthetic_resnet_small.ckpt`` and its model card
``synthetic_resnet_small.md`` are written (default out-dir: the package's own ``ecglit/pretrained``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from scripts.model_card import NAME, model_card  # noqa: E402

from ecglit.data.synthetic import GENERATOR_VERSION  # noqa: E402  (this checkout's, which trains the model)
from ecglit.models.checkpoint import export_weights, save_classifier  # noqa: E402

EXPERIMENT = "synthetic_to_real"
DEFAULT_SEEDS = (0, 1, 2)


def score_ensemble(member_ckpts: list[str], first_run: Path, out: Path) -> Any:
    """The ensemble of ``member_ckpts`` (float16-rounded), thresholds chosen on ``first_run``'s synthetic
    validation split, scored on its test split and extra test sets into ``out``; returns the module."""
    import hydra
    import torch
    from omegaconf import OmegaConf

    from ecglit.evaluation.task import predict_split
    from ecglit.evaluation.test_report import write_test_metrics
    from ecglit.evaluation.test_sets import run_test_sets
    from ecglit.inference.predictor import Predictor
    from ecglit.metrics.classification import classification_metrics
    from ecglit.metrics.thresholds import select_thresholds
    from ecglit.models.checkpoint import ensemble_of, round_weights_to_float16

    module = round_weights_to_float16(ensemble_of(member_ckpts))
    saved = OmegaConf.load(first_run / ".hydra" / "config.yaml")  # that run's data and extra test sets
    saved.paths.root_dir, saved.paths.output_dir = str(REPO), str(out)  # Hydra's runtime paths, here
    data_cfg = OmegaConf.create(OmegaConf.to_container(saved.data, resolve=True))
    data_cfg.input_scale = 1.0  # the Predictor applies the checkpoint's scale
    datamodule = hydra.utils.instantiate(data_cfg)
    predictor = Predictor.from_module(module)
    val_probs, val_labels = predict_split(datamodule, predictor, "val")
    with torch.no_grad():
        module.thresholds.copy_(select_thresholds(val_probs, val_labels))
    module.hparams["threshold_source"] = "validation"  # as for one network: max F1 on synthetic validation
    predictor = Predictor.from_module(module)
    test_probs, test_labels = predict_split(datamodule, predictor, "test")
    report = classification_metrics(test_probs, test_labels, module.thresholds, module.class_names)
    report["thresholds"] = dict(zip(module.class_names, module.thresholds.tolist(), strict=True))
    report["n_exams"] = len(test_probs)
    out.mkdir(parents=True, exist_ok=True)
    write_test_metrics(report, None, out / "test_metrics.json")
    run_test_sets(predictor, OmegaConf.to_container(saved.extra_tests, resolve=True), out)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS),
                        help="one training run per seed; several make an ensemble (default: 0 1 2)")
    parser.add_argument("--run-root", type=Path, default=REPO / "outputs" / "pretrained",
                        help="where the training runs go (<run-root>/seed<S>)")
    parser.add_argument("--out-dir", type=Path, default=REPO / "ecglit" / "pretrained")
    parser.add_argument("--skip-training", action="store_true", help="export existing runs")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for train.py")
    args = parser.parse_args()
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f"--seeds repeats a seed: {args.seeds}")
    runs = [args.run_root / f"seed{seed}" for seed in args.seeds]
    if not args.skip_training:
        for seed, run in zip(args.seeds, runs):
            subprocess.run([sys.executable, "train.py", f"experiment={EXPERIMENT}", f"seed={seed}",
                            "logger=csv", f"hydra.run.dir={run}", *args.overrides], cwd=REPO, check=True)
    best = [json.loads((run / "test_metrics.json").read_text())["checkpoint"] for run in runs]
    # the command that rebuilds this model: where the runs and the file go does not change it
    command = "python scripts/build_pretrained.py" + \
        ("" if tuple(args.seeds) == DEFAULT_SEEDS else " --seeds " + " ".join(map(str, args.seeds))) + \
        "".join(f" {o}" for o in args.overrides)
    provenance = {"command": command, "experiment": EXPERIMENT, "seeds": args.seeds,
                  "generator_version": GENERATOR_VERSION, "built": dt.date.today().isoformat()}
    out_ckpt = args.out_dir / f"{NAME}.ckpt"
    if len(runs) == 1:
        out = export_weights(best[0], out_ckpt, overwrite=True, provenance=provenance)
        card = model_card(runs[0], command, args.seeds)
    else:
        scored = args.run_root / "ensemble"
        module = score_ensemble(best, runs[0], scored)
        out = save_classifier(module, out_ckpt, provenance, overwrite=True, float16=True)
        card = model_card(scored, command, args.seeds, members=list(zip(args.seeds, runs)))
    (args.out_dir / f"{NAME}.md").write_text(card)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB) and its model card")


if __name__ == "__main__":
    main()

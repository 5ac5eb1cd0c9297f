"""Median-beat morphology of one class's real positives against the generator's positives, side by side.

    .venv/bin/python scripts/class_morphology.py LBBB [--n 200] [--seed 0] [--out /work/runs/diagnosis]

The check behind generator changes of one class's shape (e.g. v4's LBBB loop, docs/real-diagnosis.md):
per lead QRS peak-to-peak, R and S, T amplitude, frontal axis and QRS duration, median [IQR], measured
with the same established tools on both sides (scripts/diagnose_real_features.py). The real side is read
as the ``realdata`` test set reads it and cached in ``--out`` by scripts/diagnose_real.py's loader; the
synthetic side is ``--n`` exams of ``--seed`` generated with every exam a positive of the class
(PhysioNet label definitions), the labelled positives measured. Needs the ``dev`` extra (neurokit2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diagnose_real import DEFAULT_OUT, DEFAULT_REAL, load_real, measure  # noqa: E402

from ecglit.constants import CLASSES  # noqa: E402

FEATURES = ("ptp_DI", "ptp_DII", "ptp_aVL", "ptp_V1", "ptp_V2", "ptp_V3", "ptp_V5", "ptp_V6", "r_DI", "r_V6",
            "s_V1", "s_V2", "v1_late_max", "i_late_min", "t_DI", "t_V1", "t_V6", "frontal_axis_deg",
            "ecglit_qrs_ms", "ecglit_pr_ms", "ecglit_hr_bpm")


def synthetic_positives(cls: str, n: int, seed: int) -> pd.DataFrame:
    from ecglit.data.synthetic import GENERATOR_VERSION, SyntheticConfig, generate_batch

    prevalence = {c: 1.0 if c == cls else 0.0 for c in CLASSES}
    signals, _, clean, _ = generate_batch(seed, np.arange(n), SyntheticConfig(label_definitions="physionet",
                                                                              prevalence=prevalence))
    table = pd.DataFrame(measure(signals[clean[:, CLASSES.index(cls)] == 1]))
    table.attrs["generator_version"] = GENERATOR_VERSION
    return table


def summary(values: pd.Series) -> str:
    values = values.dropna()
    if values.empty:
        return "n/a"
    return f"{values.median():.2f} [{values.quantile(0.25):.2f}, {values.quantile(0.75):.2f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cls", choices=CLASSES)
    parser.add_argument("--n", type=int, default=200, help="synthetic exams generated (all positives)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="cache of the real records' features")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    ids, x, table = load_real(args.real, args.out)
    positive = (table[f"true_{args.cls}"] == 1).to_numpy()
    real = pd.DataFrame(measure(x[positive]))
    syn = synthetic_positives(args.cls, args.n, args.seed)
    version = syn.attrs["generator_version"]
    print(f"| {args.cls} positives, median [IQR] | real (n={len(real)}) | generator v{version} "
          f"(n={len(syn)}, seed {args.seed}) |")
    print("|---|---|---|")
    for name in FEATURES:
        print(f"| {name} | {summary(real[name])} | {summary(syn[name])} |")


if __name__ == "__main__":
    main()

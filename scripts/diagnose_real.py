"""Why a model trained on ecglit's synthetic ECGs fails on real records, measured class by class.

    .venv/bin/python scripts/diagnose_real.py [OUT] [--predictions CSV] [--ckpt CKPT] [--n-synthetic 1200]

OUT defaults to /work/runs/diagnosis; it must lie outside the repository. neurokit2 comes with the ``dev``
extra.

Reads the 269 real records exactly as the ``realdata`` test set does (conf/test_sets/realdata.yaml: gain
overrides, not-annotated cells), generates synthetic exams with PhysioNet label definitions, and measures
both with established tools (scripts/diagnose_real_features.py: wfdb XQRS/GQRS, neurokit2). Writes to
``--out`` (never into the repository), reusing what an earlier run cached there:

- ``real_signals.npz``, ``real_features.csv``, ``synthetic_v<generator>_seed<seed>/*.csv`` (caches, one
  file per 100 synthetic exams; delete them to re-measure);
- ``validation.csv``: each measurement against the synthetic ground truth (HR, PR, QRS, f-waves, rhythm);
- ``comparison.csv``: per class and feature, median [IQR] of real positives (missed / caught by the
  model), real negatives (false positives / true negatives) and synthetic positives / negatives;
- ``missed_and_false_positives.csv``: the real records the model got wrong, with their features;
- ``per_source.csv``: per class and source, positives, misses and key features;
- ``figures/<class>.png``: the lowest-scored real positives, typical synthetic positives, the
  highest-scored real negatives (false positives when above the threshold);
- ``probes.csv``, ``probe_probabilities.csv``: the real exams re-scored by ``--ckpt`` after changing one
  property of all of them alike (amplitude, filtering, added f-waves): what the model's scores depend on;
- ``report.md``: all of it as tables.
The model's own probabilities on the synthetic exams, and the probes, need ``--ckpt`` (skipped without it).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's ecglit, not whichever the venv points at

from diagnose_real_features import measure_exam  # noqa: E402  (scripts/ is on sys.path when run)
from diagnose_real_probes import run_probes  # noqa: E402
from diagnose_real_report import CLASS_FEATURES, write_report  # noqa: E402

from ecglit.constants import CLASSES, SAMPLE_RATE  # noqa: E402
from ecglit.plotting.ecg12 import plot_ecg12_grid, record_window  # noqa: E402

DEFAULT_OUT = Path("/work/runs/diagnosis")
DEFAULT_PREDICTIONS = Path("/work/runs/eval_baseline/test_realdata_predictions.csv")
DEFAULT_CKPT = Path("/work/runs/baseline_pn/checkpoints/last.ckpt")
DEFAULT_REAL = REPO.parent / "shared" / "realdata"
CHUNK = 100
# Same recording twice (identical measured features): counted once where records are picked for figures.
DUPLICATES = {"Q0048": "A0101", "E07510": "E07509"}
ORIGIN_GROUPS = {"CPSC2018 (via CinC)": "CPSC", "CPSC2018 (raw .mat)": "CPSC",
                 "CPSC2018-extra (via CinC)": "CPSC-extra", "Georgia 12-lead (via CinC)": "Georgia",
                 "PTB-XL (via CinC)": "PTB-XL", "PTB-XL": "PTB-XL",
                 "Chapman-Shaoxing/Ningbo (via CinC 2021)": "Chapman/Ningbo", "PTB diagnostic": "PTB"}
# CinC 2020/2021 SNOMED CT codes found in labels.csv, by the challenges' abbreviations (dx_mapping tables).
SNOMED = dict(pair.split(":") for pair in """
10370003:pacing 111975006:LQT 164861001:MIs 164865005:MI 164867002:OldMI 164873001:LVH 164889003:AF
164890007:AFL 164909002:LBBB 164917005:QAb 164930006:STIAb 164934002:TAb 164947007:LPR 17338001:VPB
251146004:LQRSV 251170000:BPAC 251187003:AED 251259000:HTV 253352002:LAA 270492004:IAVB
284470004:PAC 365413008:PRWP 39732003:LAD 413844008:CMI 425623009:LIs 426177001:SB 426434006:AnMIs
426627000:Brady 426783006:NSR 427084000:STach 427172004:PVC 427393009:SA 428750005:NSSTTA
445118002:LAnFB 446358003:RAH 55827005:LVHV 55930002:STC 59118001:RBBB 59931005:TInv 63593006:SVPB
67741000119109:LAE 698252002:NSIVCB 713422000:ATach 713426002:IRBBB 713427006:CRBBB 89792004:RVH
""".split())
SYNTHETIC_META = ("hr_bpm", "pr_ms", "qrs_ms", "rhythm", "av_conduction", "ventricular_conduction",
                  "record_seconds", "noise_level", "gain", "p_amp_mv", "af_f0_hz", "af_amp_mv", "has_pac",
                  "has_pvc")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ------------------------------------------------------------------ real records
def read_real_records(root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """ids, (N, 4096, 12) float32 exams and (N, 6) labels (NaN = not annotated), read as the test set does."""
    from omegaconf import OmegaConf

    from ecglit.evaluation.test_sets import TestSetSpec, open_test_set

    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "conf" / "test_sets" / "realdata.yaml")["realdata"])
    cfg["root"] = str(root)
    source = open_test_set(TestSetSpec.from_config("realdata", cfg))
    ids, xs, ys = [], [], []
    for batch in source.batches():
        ids += list(batch.ids)
        xs.append(batch.x)
        ys.append(batch.labels)
    for name, why in source.skipped:
        log(f"skipped {name}: {why}")
    return ids, np.concatenate(xs), np.concatenate(ys)


def record_info(root: Path) -> pd.DataFrame:
    """labels.csv keyed by the test set's exam id: origin group, diagnoses in words, scale trust."""
    table = pd.read_csv(root / "labels.csv", dtype={"raw_labels": str})
    table["id"] = table["header"].fillna(table["signal"]).str.rsplit(".", n=1).str[0]
    table["origin_group"] = table["origin"].map(ORIGIN_GROUPS).fillna(table["origin"])
    table["diagnoses"] = [",".join(SNOMED.get(c.strip(), c.strip()) for c in str(r).split(",") if c.strip())
                          if isinstance(r, str) else "" for r in table["raw_labels"]]
    # the CinC 2020 copies of Georgia say 4880/mV; the test set reads them at 1000/mV, a guess (README)
    table["scale_uncertain"] = table["note"].fillna("").str.contains("Georgia header gain 4880")
    return table.set_index("id")[["record", "origin_group", "diagnoses", "scale_uncertain"]]


def load_real(root: Path, out: Path) -> tuple[list[str], np.ndarray, pd.DataFrame]:
    cache = out / "real_signals.npz"
    if cache.is_file():
        data = np.load(cache, allow_pickle=False)
        ids, x, y = [str(i) for i in data["ids"]], data["x"], data["y"]
    else:
        log(f"reading the real records in {root}")
        ids, x, y = read_real_records(root)
        np.savez_compressed(cache, ids=np.array(ids), x=x, y=y)
    table = pd.DataFrame(y, columns=[f"true_{c}" for c in CLASSES])
    table.insert(0, "id", ids)
    return ids, x, table


def measure(signals: np.ndarray) -> list[dict]:
    rows = []
    for x in signals:
        start, stop = record_window(x)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rows.append(measure_exam(x[start:stop], SAMPLE_RATE))
    return rows


def real_features(root: Path, out: Path, predictions: Path) -> tuple[np.ndarray, pd.DataFrame]:
    ids, x, table = load_real(root, out)
    cache = out / "real_features.csv"
    if cache.is_file():
        feats = pd.read_csv(cache)
    else:
        log(f"measuring {len(ids)} real exams")
        feats = pd.DataFrame(measure(x))
        feats.insert(0, "id", ids)
        feats.to_csv(cache, index=False)
    preds = pd.read_csv(predictions)
    missing = set(ids) - set(preds["id"])
    if missing:
        raise SystemExit(f"{predictions}: no prediction for {len(missing)} exams, e.g. {sorted(missing)[:3]}")
    preds = preds.drop(columns=[c for c in preds if c.startswith("true_")])
    real = table.merge(preds, on="id").merge(feats, on="id").join(record_info(root), on="id")
    real["duplicate_of"] = real["record"].map(DUPLICATES)
    return x, real


# ------------------------------------------------------------------ synthetic exams
def synthetic_features(n: int, seed: int, out: Path, ckpt: Path | None) -> pd.DataFrame:
    """Measured features, true meta and clean labels of synthetic exams 0..n-1 (cached per chunk)."""
    from ecglit.data.synthetic import GENERATOR_VERSION, SyntheticConfig, generate_batch

    cfg = SyntheticConfig(label_definitions="physionet")
    folder = out / f"synthetic_v{GENERATOR_VERSION}_seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    predictor = None
    if ckpt is not None and ckpt.is_file():
        from ecglit.inference.predictor import Predictor

        predictor = Predictor.from_checkpoint(ckpt)
    parts = []
    for start in range(0, n, CHUNK):
        part = folder / f"{start:06d}.csv"
        if not part.is_file():
            log(f"synthetic exams {start}-{min(start + CHUNK, n) - 1} (seed {seed}, "
                f"generator v{GENERATOR_VERSION})")
            idx = np.arange(start, min(start + CHUNK, n))
            signals, _, clean, metas = generate_batch(seed, idx, cfg)
            columns = {"index": idx, **{f"meta_{k}": [m[k] for m in metas] for k in SYNTHETIC_META},
                       **{f"true_{c}": clean[:, j] for j, c in enumerate(CLASSES)}}
            if predictor is not None:
                probs = predictor.predict_batch(signals)
                columns.update({f"prob_{c}": probs[:, j] for j, c in enumerate(predictor.class_names)})
            table = pd.concat([pd.DataFrame(columns), pd.DataFrame(measure(signals))], axis=1)
            table.to_csv(part, index=False)
        parts.append(pd.read_csv(part))
    syn = pd.concat(parts, ignore_index=True).copy()
    syn.attrs.update(seed=seed, generator_version=GENERATOR_VERSION)
    return syn


def synthetic_signals(seed: int, indices: list[int]) -> np.ndarray:
    from ecglit.data.synthetic import SyntheticConfig, generate_batch

    return generate_batch(seed, indices, SyntheticConfig(label_definitions="physionet"))[0]


# ------------------------------------------------------------------ figures
def _title(kind: str, row: pd.Series, cls: str) -> str:
    name = row.get("record") if isinstance(row.get("record"), str) else f"synthetic #{int(row['index'])}"
    where = f" ({row['origin_group']})" if isinstance(row.get("origin_group"), str) else ""
    p = row.get(f"prob_{cls}")
    prob = f"p({cls})={p:.3f}" if p is not None and pd.notna(p) else ""
    return (f"{kind}: {name}{where} {prob}  HR {row['hr_bpm']:.0f}  QRS {row['ecglit_qrs_ms']:.0f} ms  "
            f"RR irr {row['rr_irregularity']:.2f}  {row.get('diagnoses', '') or ''}")[:150]


def typical_synthetic(syn: pd.DataFrame, cls: str, k: int = 2) -> pd.DataFrame:
    """Synthetic exams positive for ``cls`` only, 10 s long, nearest the class's median HR and QRS."""
    others = [c for c in CLASSES if c != cls]
    pool = syn[(syn[f"true_{cls}"] == 1) & (syn[[f"true_{c}" for c in others]].sum(axis=1) == 0)
               & (syn["meta_record_seconds"] == 10.0)]
    if pool.empty:
        pool = syn[syn[f"true_{cls}"] == 1]
    centre = pool[["hr_bpm", "ecglit_qrs_ms"]].median()
    spread = pool[["hr_bpm", "ecglit_qrs_ms"]].std().replace(0, 1)
    distance = (((pool[["hr_bpm", "ecglit_qrs_ms"]] - centre) / spread) ** 2).sum(axis=1)
    return pool.loc[distance.sort_values().index[:k]]


def class_figure(cls: str, real: pd.DataFrame, x_real: np.ndarray, syn: pd.DataFrame, seed: int,
                 path: Path, dpi: int) -> Path:
    """Rows: the 2 lowest-scored real positives, 2 typical synthetic positives, the 2 top false positives."""
    unique = real[real["duplicate_of"].isna()]
    pos = unique[unique[f"true_{cls}"] == 1].sort_values(f"prob_{cls}").head(2)
    neg = unique[unique[f"true_{cls}"] == 0].sort_values(f"prob_{cls}", ascending=False).head(2)
    typical = typical_synthetic(syn, cls)
    panels = [(x_real[i], _title("REAL +, missed", r, cls)) for i, r in pos.iterrows()]
    sigs = synthetic_signals(seed, [int(i) for i in typical["index"]])
    panels += [(s, _title("SYNTHETIC +", r, cls)) for s, (_, r) in zip(sigs, typical.iterrows())]
    panels += [(x_real[i], _title("REAL -, false positive" if r[f"label_{cls}"] == 1
                                  else "REAL -, top-scored", r, cls)) for i, r in neg.iterrows()]
    return plot_ecg12_grid([p[0] for p in panels], [p[1] for p in panels], path, ncols=2, dpi=dpi)


def probes(ckpt: Path, x_real: np.ndarray, real: pd.DataFrame, out: Path) -> pd.DataFrame | None:
    """Re-scored real exams under each probe (cached); checks that 'as recorded' matches the CSV."""
    cache = out / "probes.csv"
    if cache.is_file():
        return pd.read_csv(cache)
    if not ckpt.is_file():
        return None
    from ecglit.inference.predictor import Predictor

    log(f"probes: re-scoring the real exams with {ckpt}")
    summary, per_exam = run_probes(Predictor.from_checkpoint(ckpt), x_real, real)
    same = per_exam[per_exam["probe"] == "as recorded"].set_index("id")
    drift = max(float((same[f"prob_{c}"] - real.set_index("id")[f"prob_{c}"]).abs().max()) for c in CLASSES)
    summary["max_abs_diff_as_recorded_vs_csv"] = drift
    if drift > 1e-3:
        log(f"WARNING: the checkpoint does not reproduce the predictions CSV (max |diff| {drift:.3g})")
    per_exam.to_csv(out / "probe_probabilities.csv", index=False)
    summary.to_csv(cache, index=False)
    return summary


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", type=Path, default=DEFAULT_OUT, help="output folder (outside the repo)")
    ap.add_argument("--real", type=Path, default=DEFAULT_REAL)
    ap.add_argument("--predictions", type=Path, default=DEFAULT_PREDICTIONS)
    ap.add_argument("--ckpt", type=Path, default=DEFAULT_CKPT,
                    help="scores the synthetic exams and runs the probes, if it exists")
    ap.add_argument("--n-synthetic", type=int, default=1200)
    ap.add_argument("--seed", type=int, default=1, help="synthetic seed (training used 0)")
    ap.add_argument("--dpi", type=int, default=55, help="figure resolution (6 panels of 10 s each)")
    args = ap.parse_args(argv)
    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        raise SystemExit(f"--out {out} is inside the repository; write diagnosis outputs elsewhere")
    if not (args.real / "labels.csv").is_file():
        raise SystemExit(f"{args.real}: no labels.csv (the real records of ../shared/realdata)")
    if not args.predictions.is_file():
        raise SystemExit(f"{args.predictions}: predictions CSV not found "
                         "(python evaluate.py ckpt_path=CKPT test_sets=realdata)")
    out.mkdir(parents=True, exist_ok=True)
    x_real, real = real_features(args.real, out, args.predictions)
    syn = synthetic_features(args.n_synthetic, args.seed, out, args.ckpt)
    (out / "figures").mkdir(exist_ok=True)
    for cls in CLASS_FEATURES:
        class_figure(cls, real, x_real, syn, args.seed, out / "figures" / f"{cls}.png", args.dpi)
    report = write_report(real, syn, out, probes(args.ckpt, x_real, real, out))
    log(f"wrote {report} and {len(CLASS_FEATURES)} figures in {out / 'figures'}")


if __name__ == "__main__":
    main()

"""ecglit vs plain PyTorch on this machine, side by side: training, inference, data pipeline, memory,
synthetic generation, and achieved GFLOP/s against the machine's measured matmul peak.

    python benchmarks/run.py            # full: 10k/50k/100k exams on disk (~20 GB for a while), ~13 min idle
    python benchmarks/run.py --quick    # < 5 min: 2k/5k/10k exams, fewer steps and exams

Writes benchmarks/results.json and a results table of BENCHMARKS.md: a full run the one between the
``results`` markers, a quick run its own block (``quick-results`` markers), never the full one. Every
comparison runs both sides in fresh processes, alternated A B A B; ratios are medians over rounds.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_backends
import bench_bound
import bench_data
import bench_infer
import bench_peak
import bench_synthetic
import bench_train
import common
from common import BENCH_DIR, PAPER_GFLOP, REPO, load, machine
from report import write_markdown

SETTINGS = {
    "quick": {"sizes": [2000, 5000, 10000], "data_batches": 40, "worker_counts": [0, 1, 2],
              "train": [{"batch_size": 64, "steps": 3, "warmup": 1, "rounds": 2}],
              "infer_exams": 256, "infer_rounds": 2, "peak_seconds": 2.0, "quiet_max_wait": 20},
    "full": {"sizes": [10000, 50000, 100000], "data_batches": 100, "worker_counts": [0, 1, 2, 4],
             "train": [{"batch_size": 64, "steps": 10, "warmup": 2, "rounds": 2},
                       {"batch_size": 32, "steps": 12, "warmup": 2, "rounds": 2}],
             "infer_exams": 1024, "infer_rounds": 3, "peak_seconds": 4.0, "variants": True,
             "quiet_max_wait": 600},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, finishes in under 5 minutes")
    parser.add_argument("--work-dir", type=Path, default=None, help="where data sets go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results.json")
    parser.add_argument("--markdown", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument("--keep-data", action="store_true", help="do not delete the generated data sets")
    args = parser.parse_args()
    mode = "quick" if args.quick else "full"
    s = SETTINGS[mode]
    common.QUIET_MAX_WAIT = s["quiet_max_wait"]
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="ecglit-bench-"))
    command = "python benchmarks/run.py" + (" --quick" if args.quick else "")
    started = time.time()
    results: dict = {"mode": mode, "command": command, "machine": machine(), "load_start": load(),
                     "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started))}
    print(f"ecglit benchmarks ({mode}), load average {results['load_start']}; data in {work}", flush=True)
    try:
        print("[1/5] matmul peak", flush=True)
        results["peak_quiet"] = common.wait_for_quiet()
        results["peak"] = bench_peak.run(seconds=s["peak_seconds"])
        print("[2/5] synthetic generation", flush=True)
        results["synthetic"] = bench_synthetic.run(quick=args.quick)
        print("[3/5] data pipeline and memory", flush=True)
        results["data"] = bench_data.run(work / "data", s["sizes"], s["worker_counts"], s["data_batches"], keep=True)
        train_data = work / "data" / f"n{min(s['sizes'])}"
        print("[4/5] training", flush=True)
        results["train"] = [bench_train.run(train_data, work_dir=work / f"train{t['batch_size']}", **t)
                            for t in s["train"]]
        print("[5/5] inference", flush=True)
        checkpoint = results["train"][0]["checkpoint"]
        results["infer"] = bench_infer.run(checkpoint, train_data, work, exams=s["infer_exams"],
                                           rounds=s["infer_rounds"])
        if s.get("variants"):
            print("[+] every inference backend x precision, one process", flush=True)
            results["infer_variants"] = bench_backends.run()
            print("[+] what bounds inference: convolutions alone, int8", flush=True)
            results["infer_bound"] = bench_bound.run()
    finally:
        if not args.keep_data and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        elif not args.keep_data:
            shutil.rmtree(work / "data", ignore_errors=True)
    summarise(results)
    results["minutes"] = round((time.time() - started) / 60, 1)
    results["load_end"] = load()
    args.out.write_text(json.dumps(results, indent=2))
    write_markdown(results, args.markdown, mode)
    print(f"wrote {args.out} and {args.markdown} ({results['minutes']} min)", flush=True)


def summarise(r: dict) -> None:
    """The headline numbers the issue asks for, at the top level of results.json."""
    train, infer, data, peak = r["train"][0], r["infer"], r["data"], r["peak"]
    r["train_speedup"] = train["speedup"]
    r["infer_speedup"] = infer["speedup"]
    r["data_over_train"] = data["best_datamodule_exams_per_s"] / train["ecglit_exams_per_s"]
    r["rss_mb"] = data["rss_mb"]
    r["rss_spread"] = data["rss_spread"]
    r["infer_max_abs_prob_diff"] = infer["max_abs_prob_diff"]
    r["infer_label_agreement"] = infer["label_agreement"]
    r["achieved"] = {
        "train_plain_gflop_per_s": train["plain_gflop_per_s"], "train_ecglit_gflop_per_s": train["ecglit_gflop_per_s"],
        "infer_plain_gflop_per_s": infer["plain_gflop_per_s"], "infer_ecglit_gflop_per_s": infer["ecglit_gflop_per_s"],
        "train_plain_of_fp32_peak": train["plain_gflop_per_s"] / peak["fp32_peak_gflop_per_s"],
        "train_ecglit_of_bf16_peak": train["ecglit_gflop_per_s"] / peak["bf16_peak_gflop_per_s"],
        "infer_plain_of_fp32_peak": infer["plain_gflop_per_s"] / peak["fp32_peak_gflop_per_s"],
        "infer_ecglit_of_bf16_peak": infer["ecglit_gflop_per_s"] / peak["bf16_peak_gflop_per_s"],
        "gflop_per_exam_forward": PAPER_GFLOP,
    }
    r["targets"] = {"train_speedup>=1.5": r["train_speedup"] >= 1.5, "infer_speedup>=4": r["infer_speedup"] >= 4,
                    "data_over_train>=10": r["data_over_train"] >= 10, "rss_within_10pct": r["rss_spread"] <= 0.10,
                    "infer_prob_diff<=1e-2": r["infer_max_abs_prob_diff"] <= 1e-2,
                    "infer_labels>=99.9%": r["infer_label_agreement"] >= 0.999}


if __name__ == "__main__":
    main()

"""Data pipeline: ECGDataModule over shards on disk (several num_workers) vs a raw sequential h5py read,
and peak memory of the pipeline for data sets of growing size.

The largest data set is generated once (``ecglit.data.synthetic.materialize``, all cores) in shards of
gcd(sizes) exams; the smaller ones are directories of symbolic links to its first shards, each with
its own exams.csv (only its exams) and shard-scan cache, so every size is a complete data set on disk.
"""

from __future__ import annotations

import csv
import math
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from common import load, run_child


def make_datasets(work: Path, sizes: list[int], seed: int = 2024) -> tuple[dict[int, Path], dict[str, float]]:
    """Directories holding ``sizes`` exams each; returns them and the generation/scan timings."""
    from ecglit.data.scan import scan_shards
    from ecglit.data.synthetic import materialize

    sizes = sorted(sizes)
    shard, largest = math.gcd(*sizes), sizes[-1]  # every size is a whole number of shards
    full = work / f"n{largest}"
    start = time.perf_counter()
    if not (full / "exams.csv").exists():
        materialize(full, largest, seed, shard_size=shard, progress=False, overwrite=True)
    generate_s = time.perf_counter() - start
    with open(full / "exams.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    dirs: dict[int, Path] = {largest: full}
    for n in sizes[:-1]:
        d = work / f"n{n}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        for k in range(n // shard):
            (d / f"exams_part{k}.hdf5").symlink_to(full / f"exams_part{k}.hdf5")
        ids = set(range(1, n + 1))  # materialize numbers exams 1..n in shard order
        with open(d / "exams.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if int(r["exam_id"]) in ids)
        dirs[n] = d
    start = time.perf_counter()
    for d in dirs.values():
        scan_shards(d)  # the one-off index scan (cached), done here so the measurements below see a warm cache
    return dirs, {"generated_exams": largest, "generate_s": generate_s, "generate_exams_per_s": largest / generate_s,
                  "scan_s": time.perf_counter() - start}


def datamodule_rate(root: Path, workers: int, batches: int, batch_size: int = 64) -> dict[str, Any]:
    return run_child(["benchmarks/datamodule_worker.py", "datamodule", str(root), "--workers", str(workers),
                      "--batches", str(batches), "--batch-size", str(batch_size)])


def raw_rate(root: Path, batches: int, batch_size: int = 64) -> dict[str, Any]:
    return run_child(["benchmarks/datamodule_worker.py", "raw", str(root), "--batches", str(batches),
                      "--batch-size", str(batch_size)])


def run(work: Path, sizes: list[int], worker_counts: list[int], batches: int, rss_workers: int = 2,
        keep: bool = False) -> dict[str, Any]:
    """Throughput (smallest and largest data set) and memory (every size) of the pipeline."""
    work.mkdir(parents=True, exist_ok=True)
    dirs, generation = make_datasets(work, sizes)
    out: dict[str, Any] = {"generation": generation, "sizes": sorted(sizes), "batches": batches,
                           "throughput": {}, "memory": {}, "load_before": load()}
    try:
        for n in (min(sizes), max(sizes)):
            rates = {f"datamodule_workers{w}": datamodule_rate(dirs[n], w, batches)["exams_per_s"]
                     for w in worker_counts}
            rates["raw_h5py_sequential"] = raw_rate(dirs[n], batches)["exams_per_s"]
            out["throughput"][str(n)] = rates
            print(f"  data {n} exams: " + ", ".join(f"{k} {v:.0f}/s" for k, v in rates.items()), flush=True)
        for n in sorted(sizes):
            m = datamodule_rate(dirs[n], rss_workers, batches)
            out["memory"][str(n)] = {k: m[k] for k in ("rss_main_mb", "rss_worker_mb", "pss_total_mb", "setup_s",
                                                       "exams_per_s", "train_exams")}
            print(f"  memory {n} exams ({rss_workers} workers): main peak RSS {m['rss_main_mb']:.0f} MB, "
                  f"main+workers PSS {m['pss_total_mb']:.0f} MB", flush=True)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    rss = [out["memory"][str(n)]["rss_main_mb"] for n in sorted(sizes)]
    pss = [out["memory"][str(n)]["pss_total_mb"] for n in sorted(sizes)]
    out["rss_mb"] = {str(n): r for n, r in zip(sorted(sizes), rss)}
    out["rss_spread"] = max(rss) / min(rss) - 1  # largest relative to the smallest
    out["pss_spread"] = max(pss) / min(pss) - 1
    largest = out["throughput"][str(max(sizes))]
    out["best_datamodule_exams_per_s"] = max(v for k, v in largest.items() if k.startswith("datamodule"))
    out["median_datamodule_exams_per_s"] = statistics.median(v for k, v in largest.items() if k.startswith("datamodule"))
    out["load_after"] = load()
    return out

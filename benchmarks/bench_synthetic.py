"""Speed of the synthetic generator: generation only, and materialising to disk (CODE-15% shards).

    .venv/bin/python benchmarks/bench_synthetic.py [--quick]

``run(quick)`` returns a dict (also used by benchmarks/run.py). Wall-clock rates depend on what else
runs on the machine, so CPU milliseconds per exam and the load average are reported alongside.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script from the repository
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ecglit.data.synthetic import generate_batch, materialize
from ecglit.data.synthetic.materialize import BATCH_SIZE


def _generation(n: int, seed: int = 123) -> dict:
    generate_batch(seed, range(BATCH_SIZE))  # warm-up (imports, caches)
    wall, cpu = time.perf_counter(), time.process_time()
    for start in range(0, n, BATCH_SIZE):
        generate_batch(seed, range(start, min(start + BATCH_SIZE, n)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"exams": n, "exams_per_s": n / wall, "cpu_ms_per_exam": 1e3 * cpu / n}


def _materialise(n: int, workers: int, seed: int = 321) -> dict:
    with tempfile.TemporaryDirectory(prefix="ecglit-bench-") as tmp:
        wall = time.perf_counter()
        out = materialize(Path(tmp) / "synthetic", n, seed, workers=workers, progress=False)
        wall = time.perf_counter() - wall
        size = sum(p.stat().st_size for p in out.iterdir())
    return {"exams": n, "workers": workers, "exams_per_s": n / wall, "mb_written": size / 1e6}


def run(quick: bool = False) -> dict:
    """Measure and print; returns {"generation": ..., "materialise_1_worker": ..., "materialise_all_cores": ...}."""
    cores = os.cpu_count() or 1
    n_gen, n_mat = (512, 1000) if quick else (4096, 10000)
    result = {
        "cores": cores,
        "load_average_before": os.getloadavg()[0],
        "generation": _generation(n_gen),
        "materialise_1_worker": _materialise(n_mat // 2, 1),
        "materialise_all_cores": _materialise(n_mat, cores),
        "load_average_after": os.getloadavg()[0],
    }
    g, m1, mall = result["generation"], result["materialise_1_worker"], result["materialise_all_cores"]
    print(f"synthetic generation (1 process): {g['exams_per_s']:.0f} exams/s, {g['cpu_ms_per_exam']:.2f} CPU ms/exam")
    print(f"materialise, 1 worker:            {m1['exams_per_s']:.0f} exams/s")
    print(f"materialise, {cores} workers:           {mall['exams_per_s']:.0f} exams/s "
          f"({mall['mb_written']:.0f} MB written)")
    print(f"load average before/after: {result['load_average_before']:.1f} / {result['load_average_after']:.1f}")
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    args = parser.parse_args()
    res = run(quick=args.quick)
    if args.json:
        print(json.dumps(res, indent=2))

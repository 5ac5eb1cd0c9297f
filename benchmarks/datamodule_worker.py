"""One data-pipeline measurement in a fresh process: ecglit's ECGDataModule over shards on disk, or a raw
sequential h5py read of the same shards.

    python benchmarks/datamodule_worker.py datamodule DIR --workers 2 --batches 100 --batch-size 64
    python benchmarks/datamodule_worker.py raw DIR --batches 100 --batch-size 64
Reports exams/s after the first batch, peak RSS (MB) of this process and of its largest worker, and the
largest sampled PSS of this process plus its workers (shared pages counted once).
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import h5py
import numpy as np
from common import peak_rss_mb, report


def pss_mb(pid: int | str = "self") -> float:
    """Proportional set size (MB): shared pages (libraries, copy-on-write) split among the processes."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0.0
    return next((int(ln.split()[1]) / 1024 for ln in text.splitlines() if ln.startswith("Pss:")), 0.0)


def pipeline_pss_mb(loader) -> float:
    """PSS of this process plus its DataLoader workers."""
    workers = getattr(loader, "_workers", [])
    return pss_mb() + sum(pss_mb(w.pid) for w in workers if w.pid)


def datamodule(root: Path, workers: int, batches: int, batch_size: int) -> dict:
    from ecglit.data.datamodule import ECGDataModule

    start = time.perf_counter()
    dm = ECGDataModule(root, batch_size=batch_size, num_workers=workers, split="random", seed=0)
    dm.prepare_data()
    dm.setup("fit")
    setup_s = time.perf_counter() - start
    stamps, n, checksum, pss = [time.perf_counter()], 0, 0.0, 0.0
    loader = iter(dm.train_dataloader())
    for i in range(batches):
        if i % 10 == 5:
            pss = max(pss, pipeline_pss_mb(loader))
        try:
            x, _ = next(loader)
        except StopIteration:  # fewer exams than asked: a new epoch
            loader = iter(dm.train_dataloader())
            x, _ = next(loader)
        checksum += float(x[:, 0, 0].sum())  # touch the data
        n += len(x)
        stamps.append(time.perf_counter())
    del loader
    dm.teardown("fit")
    return {"stamps": stamps, "exams": n, "setup_s": setup_s, "train_exams": len(dm.dataset("train")),
            "pss_total_mb": pss}


def raw(root: Path, batches: int, batch_size: int) -> dict:
    stamps, n = [time.perf_counter()], 0
    for path in sorted(root.glob("exams_part*.hdf5")):
        with h5py.File(path, "r") as f:
            x = f["tracings"]
            for start in range(0, x.shape[0], batch_size):
                block = np.ascontiguousarray(x[start:start + batch_size].transpose(0, 2, 1))
                n += len(block)
                stamps.append(time.perf_counter())
                if len(stamps) > batches:
                    return {"stamps": stamps, "exams": n}
    return {"stamps": stamps, "exams": n}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["datamodule", "raw"])
    p.add_argument("root", type=Path)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    a = p.parse_args()
    out = (datamodule(a.root, a.workers, a.batches, a.batch_size) if a.mode == "datamodule"
           else raw(a.root, a.batches, a.batch_size))
    stamps = out["stamps"]
    out["exams_per_s"] = (out["exams"] - a.batch_size) / (stamps[-1] - stamps[1]) if len(stamps) > 2 else 0.0
    out["rss_main_mb"] = peak_rss_mb()
    # the largest child (DataLoader workers have been joined by now)
    out["rss_worker_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    del out["stamps"]
    report(out)


if __name__ == "__main__":
    main()

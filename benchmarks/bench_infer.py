"""Inference throughput: ecglit's predict path (predict.py defaults) vs the plain eager float32 loop.

Both load the same checkpoint of the paper's network and predict the same exams from the same shards at
the same batch size, in separate processes, alternated A B A B. Rates leave out the first batch (model
load, compilation); the one-off cost is reported separately (round 0 compiles with an empty cache).

The checkpoint comes from the training benchmark, a few steps in: its BatchNorm running averages still
hold mostly their initial values, which no trained network has. So its BatchNorm statistics are first
re-estimated on exams of the data set (cumulative average, the "precise BN" step), which gives the
accuracy check a network that behaves like a trained one in eval mode.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import h5py
import torch
from common import PAPER_GFLOP, load, run_child, steady_rate, wait_for_quiet
from torch import nn


def calibrate_batchnorm(checkpoint: str, data_dir: Path, out: Path, exams: int = 256) -> str:
    """A copy of ``checkpoint`` whose BatchNorm statistics are averaged over ``exams`` exams of data_dir."""
    from ecglit.models.checkpoint import load_classifier

    module = load_classifier(checkpoint)
    scale = float(module.hparams.get("input_scale", 1.0))
    for m in module.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
            m.train()
    shard = min(data_dir.glob("exams_part*.hdf5"))
    with h5py.File(shard, "r") as f, torch.no_grad():
        for start in range(0, min(exams, f["tracings"].shape[0]), 64):
            x = torch.from_numpy(f["tracings"][start:start + 64]).transpose(1, 2).contiguous() * scale
            module(x)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state["state_dict"] = {k: v for k, v in module.state_dict().items()}
    torch.save(state, out)
    return str(out)


def run(checkpoint: str, data_dir: Path, out_dir: Path, exams: int = 512, batch_size: int = 64, rounds: int = 2,
        backend: str | None = None, precision: str | None = None) -> dict[str, Any]:
    options = (["--backend", backend] if backend else []) + (["--precision", precision] if precision else [])
    checkpoint = calibrate_batchnorm(checkpoint, data_dir, out_dir / "calibrated.ckpt")
    rounds_out = []
    for r in range(rounds):
        quiet = wait_for_quiet()
        load_before = load()
        base = run_child(["benchmarks/plain_pytorch.py", "infer", str(data_dir), "--ckpt", checkpoint,
                          "--batch-size", str(batch_size), "--exams", str(exams)])
        # a fresh compile cache: round 0 compiles from scratch, later rounds find it (as repeated predict.py runs do)
        ours = run_child(["benchmarks/ecglit_predict.py", checkpoint, str(data_dir), str(out_dir / f"pred{r}.csv"),
                          "--exams", str(exams), "--batch-size", str(batch_size), *options],
                         env={"TORCHINDUCTOR_CACHE_DIR": str(out_dir / "inductor-cache")})
        base_rate = steady_rate(base["stamps"], batch_size, 1)
        our_rate = steady_rate(ours["stamps"], batch_size, 1)
        rounds_out.append({"plain_exams_per_s": base_rate, "ecglit_exams_per_s": our_rate, "ratio": our_rate / base_rate,
                           "plain_process_s": base["process_wall_s"], "ecglit_process_s": ours["process_wall_s"],
                           "ecglit_first_batch_s": ours["stamps"][1] - ours["stamps"][0],
                           "backend": ours["resolved"], "precision": ours["resolved_precision"],
                           "max_abs_prob_diff": ours["max_abs_prob_diff"], "label_agreement": ours["label_agreement"],
                           "check_exams": ours["check_exams"], "load_before": load_before, "load_after": load(), **quiet})
        print(f"  infer round {r}: plain {base_rate:.1f} exams/s, ecglit {our_rate:.1f} exams/s "
              f"({our_rate / base_rate:.2f}x, {ours['resolved']} {ours['resolved_precision']}), "
              f"max |dp| {ours['max_abs_prob_diff']:.2g}, load {load_before:.1f}->{load():.1f}", flush=True)
    plain = statistics.median(x["plain_exams_per_s"] for x in rounds_out)
    ours = statistics.median(x["ecglit_exams_per_s"] for x in rounds_out)
    return {"exams": exams, "batch_size": batch_size, "rounds": rounds_out, "plain_exams_per_s": plain,
            "ecglit_exams_per_s": ours, "speedup": statistics.median(x["ratio"] for x in rounds_out),
            "plain_gflop_per_s": plain * PAPER_GFLOP, "ecglit_gflop_per_s": ours * PAPER_GFLOP,
            "max_abs_prob_diff": max(x["max_abs_prob_diff"] for x in rounds_out),
            "label_agreement": min(x["label_agreement"] for x in rounds_out)}

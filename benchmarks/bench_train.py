"""Training throughput: ecglit's ``train.py`` (Lightning, fast CPU settings) vs the plain PyTorch loop.

Both train the paper's network from the same shards, at the same batch size, for the same number of
steps, in separate processes, alternated A B A B so that whatever else runs on the machine hits both.
Rates leave out the first ``warmup`` steps (allocation, oneDNN primitive creation).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PAPER_GFLOP, PYTHON, REPO, env_for_child, load, run_child, steady_rate, wait_for_quiet


def ecglit_train(data_dir: Path, out_dir: Path, batch_size: int, steps: int, trainer: str = "cpu_fast",
                 extra: tuple[str, ...] = ()) -> dict[str, Any]:
    """One ``python train.py`` run of ``steps`` steps; returns its step timestamps and its checkpoint."""
    timer_file = out_dir / "steps.json"
    overrides = [
        "model=resnet_paper", "data=code15", f"data.root={data_dir}", f"data.batch_size={batch_size}",
        f"trainer={trainer}", f"+trainer.max_steps={steps}", "trainer.max_epochs=1000", "trainer.limit_val_batches=0",
        "trainer.log_every_n_steps=1000", "test=false", "optimized_metric=null", "logger=none", "callbacks=none", "module.scheduler=null",
        "+callbacks.step_timer._target_=step_timer.StepTimer", f"+callbacks.step_timer.out={timer_file}",
        f"hydra.run.dir={out_dir}", f"trainer.default_root_dir={out_dir}", *extra,
    ]
    start = time.perf_counter()
    proc = subprocess.run([PYTHON, "train.py", *overrides], cwd=REPO, env=env_for_child(), capture_output=True, check=False,
                          text=True, timeout=3600)
    if proc.returncode != 0 or not timer_file.exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"train.py failed (exit {proc.returncode}): {' '.join(overrides)}\n{tail}")
    result = json.loads(timer_file.read_text())
    result["process_wall_s"] = time.perf_counter() - start
    result["checkpoint"] = str(next(iter(sorted(out_dir.rglob("*.ckpt"))), ""))
    return result


def plain_train(data_dir: Path, batch_size: int, steps: int) -> dict[str, Any]:
    return run_child(["benchmarks/plain_pytorch.py", "train", str(data_dir), "--batch-size", str(batch_size),
                      "--steps", str(steps)])


def run(data_dir: Path, batch_size: int = 64, steps: int = 10, warmup: int = 2, rounds: int = 2,
        trainer: str = "cpu_fast", work_dir: Path | None = None) -> dict[str, Any]:
    """ABAB rounds; returns per-round rates, their ratios, the median ratio and the last checkpoint."""
    work = Path(work_dir or tempfile.mkdtemp(prefix="ecglit-bench-train-"))
    rounds_out = []
    checkpoint = ""
    for r in range(rounds):
        quiet = wait_for_quiet()
        load_before = load()
        base = plain_train(data_dir, batch_size, warmup + steps)
        ours = ecglit_train(data_dir, work / f"round{r}", batch_size, warmup + steps, trainer)
        checkpoint = ours["checkpoint"] or checkpoint
        base_rate = steady_rate(base["stamps"], batch_size, warmup)
        our_rate = steady_rate(ours["stamps"], batch_size, warmup)
        base_faults = (base["faults"][-1] - base["faults"][warmup]) / steps
        our_faults = (ours["faults"][-1] - ours["faults"][warmup]) / steps
        rounds_out.append({"plain_exams_per_s": base_rate, "ecglit_exams_per_s": our_rate,
                           "ratio": our_rate / base_rate, "plain_process_s": base["process_wall_s"],
                           "plain_page_faults_per_step": base_faults, "ecglit_page_faults_per_step": our_faults,
                           "ecglit_process_s": ours["process_wall_s"], "precision": ours.get("precision"),
                           "load_before": load_before, "load_after": load(), **quiet})
        print(f"  train round {r}: plain {base_rate:.1f} exams/s, ecglit {our_rate:.1f} exams/s "
              f"({our_rate / base_rate:.2f}x), load {load_before:.1f}->{load():.1f}", flush=True)
    plain = statistics.median(x["plain_exams_per_s"] for x in rounds_out)
    ours = statistics.median(x["ecglit_exams_per_s"] for x in rounds_out)
    return {"batch_size": batch_size, "steps": steps, "warmup": warmup, "trainer": trainer, "rounds": rounds_out,
            "plain_exams_per_s": plain, "ecglit_exams_per_s": ours,
            "speedup": statistics.median(x["ratio"] for x in rounds_out),
            "plain_gflop_per_s": plain * 3 * PAPER_GFLOP, "ecglit_gflop_per_s": ours * 3 * PAPER_GFLOP,
            "checkpoint": checkpoint}

"""Shared helpers of the benchmarks: subprocess runs that report JSON, rates, machine facts, load."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
PAPER_GFLOP = 3.652  # forward GFLOP per exam of the paper's network (FlopCounterMode; training ~3x)
RESULT_PREFIX = "BENCH_RESULT "
QUIET_MAX_WAIT = 600.0  # seconds a measurement round waits for other jobs to finish (run.py --quick: less)


def load() -> float:
    """1-minute load average (the machine is shared: a high value means noisy timings)."""
    return round(os.getloadavg()[0], 2)


def busy_cores(seconds: float = 2.0) -> float:
    """Cores kept busy by everything on the machine over the next ``seconds`` (from /proc/stat)."""
    def snapshot() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait
    total0, idle0 = snapshot()
    time.sleep(seconds)
    total1, idle1 = snapshot()
    return (os.cpu_count() or 1) * (1 - (idle1 - idle0) / max(total1 - total0, 1))


def wait_for_quiet(max_busy: float = 0.3, max_wait: float | None = None) -> dict[str, float]:
    """Wait (at most ``max_wait`` s) until other jobs keep fewer than ``max_busy`` cores busy, so that a
    measurement round starts on an idle machine; returns what was seen. Both sides of a comparison wait
    alike, so this does not favour either; it only makes rounds less noisy on a shared machine."""
    max_wait = QUIET_MAX_WAIT if max_wait is None else max_wait
    start = time.perf_counter()
    busy = busy_cores()
    while busy > max_busy and time.perf_counter() - start < max_wait:
        time.sleep(10)
        busy = busy_cores()
    return {"busy_cores_at_start": round(busy, 2), "waited_s": round(time.perf_counter() - start, 1)}


def env_for_child(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR), str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.setdefault("WANDB_MODE", "disabled")
    env.update(extra or {})
    return env


def run_child(args: list[str], timeout: float = 1800, env: dict[str, str] | None = None,
              cwd: Path = REPO) -> dict[str, Any]:
    """Run ``python args...``; return the JSON it printed after RESULT_PREFIX, plus wall time and peak
    RSS of the child's processes (ru_maxrss of the largest one)."""
    start = time.perf_counter()
    proc = subprocess.run([PYTHON, *args], cwd=cwd, env=env_for_child(env), capture_output=True, check=False, text=True,
                          timeout=timeout)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-30:])
        raise RuntimeError(f"benchmark child {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(lines[-1][len(RESULT_PREFIX):])
    result["process_wall_s"] = wall
    return result


def report(result: dict[str, Any]) -> None:
    """What a child prints for :func:`run_child`."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def steady_rate(stamps: list[float], items_per_step: int, warmup: int) -> float:
    """Items per second between the end of step ``warmup`` and the last step (compile/warm-up excluded)."""
    if len(stamps) <= warmup + 1:
        raise ValueError(f"need more than {warmup + 1} timestamps, got {len(stamps)}")
    return items_per_step * (len(stamps) - 1 - warmup) / (stamps[-1] - stamps[warmup])


def peak_rss_mb() -> float:
    """Peak RSS of this process (VmHWM), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """CPU model, cores, ISA flags that matter here, memory, library versions."""
    import numpy
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                            "numpy": numpy.__version__, "platform": platform.platform(),
                            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        text = cpuinfo.read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "?")
        flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines() if ln.startswith("flags")), [])
        info["cpu"] = model
        info["isa"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f in flags]
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = next(ln for ln in meminfo.read_text().splitlines() if ln.startswith("MemTotal"))
        info["memory_gb"] = round(int(total.split()[1]) / 2**20, 1)
    for name in ("lightning", "onnxruntime", "h5py"):
        try:
            info[name] = __import__(name).__version__
        except ImportError:
            pass
    info["onednn"] = torch.backends.mkldnn.is_available()
    return info

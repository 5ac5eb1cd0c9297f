"""This machine's dense matrix-multiply peak (GFLOP/s), float32 and bfloat16, all torch threads.

Three kernels per dtype, the best one counts: ``torch.mm`` (MKL for float32, oneDNN for bf16), a 1x1
``conv1d`` and a k=16 ``conv1d`` (an implicit GEMM, the network's own kind of kernel), both oneDNN (MKL's
sgemm takes a slower code path on AMD CPUs, oneDNN does not).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F


def _best_rate(fn, flop: float, seconds: float) -> float:
    fn()
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        fn()
        best = max(best, flop / (time.perf_counter() - start) / 1e9)
    return best


@torch.inference_mode()
def run(seconds: float = 3.0, n: int = 2048) -> dict[str, float]:
    out: dict[str, float] = {"threads": torch.get_num_threads()}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        x, w = torch.randn(1, n, n, dtype=dtype), torch.randn(n, n, 1, dtype=dtype)
        flop = 2.0 * n**3
        out[f"{name}_mm_gflop_per_s"] = _best_rate(lambda a=a, b=b: torch.mm(a, b), flop, seconds)
        out[f"{name}_conv1x1_gflop_per_s"] = _best_rate(lambda x=x, w=w: F.conv1d(x, w), flop, seconds)
        xk, wk = torch.randn(8, 256, 4096 + 15, dtype=dtype), torch.randn(256, 256, 16, dtype=dtype)
        out[f"{name}_conv16_gflop_per_s"] = _best_rate(lambda xk=xk, wk=wk: F.conv1d(xk, wk), 2.0 * 8 * 256 * 256 * 16 * 4096,
                                                       seconds)
        out[f"{name}_peak_gflop_per_s"] = max(out[f"{name}_{k}_gflop_per_s"] for k in ("mm", "conv1x1", "conv16"))
    print(f"  matmul peak: fp32 {out['fp32_peak_gflop_per_s']:.0f} GFLOP/s, bf16 {out['bf16_peak_gflop_per_s']:.0f}"
          f" GFLOP/s ({out['threads']} threads)", flush=True)
    return out


if __name__ == "__main__":
    print(run())

"""What the hardware computes natively, and the training precision that follows from it."""

from __future__ import annotations

import torch


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes bfloat16 natively (else bf16 is emulated and slower than float32)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def training_precision(precision: str | int, accelerator: str) -> str | int:
    """Lightning's ``precision`` for a run: ``auto`` becomes ``bf16-mixed`` where the accelerator the run
    will use computes bf16 natively (AVX512-BF16/AMX CPUs, bf16 GPUs; ~2x the float32 step on the paper's
    network, same validation metrics: BENCHMARKS.md), else ``32-true``. Other values are returned as given."""
    if str(precision) != "auto":
        return precision
    accelerator = str(accelerator)
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        device = torch.device("cuda")
    elif accelerator in ("cpu", "auto"):
        device = torch.device("cpu")
    else:  # mps, tpu, ...: keep Lightning's safe default
        return "32-true"
    return "bf16-mixed" if native_bf16(device) else "32-true"

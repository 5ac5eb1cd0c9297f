"""What the hardware computes natively, the training precision that follows from it, and CPU memory tuning."""

from __future__ import annotations

import ctypes
import sys

import torch

_ALLOCATOR_TUNED = False


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


def retain_freed_memory() -> bool:
    """Make glibc malloc keep freed memory for reuse instead of returning it to the OS.

    Activations of the paper's network are 30-130 MB each; glibc serves blocks over 32 MB with mmap and
    unmaps them on free, so every batch page-faults (and the kernel zeroes) gigabytes anew: 15-25% of a
    CPU training step, and the main reason batch 64 was slower per exam than batch 32 (BENCHMARKS.md).
    Process-wide; the memory stays with the process (its peak RSS no longer shrinks). Returns whether
    it applied (Linux with glibc only).
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # mallopt parameters from <malloc.h>
        ok = libc.mallopt(m_mmap_max, 0) == 1 and libc.mallopt(m_trim_threshold, 2**62) == 1
    except (OSError, AttributeError):  # not glibc (musl, ...)
        return False
    _ALLOCATOR_TUNED = ok
    return ok

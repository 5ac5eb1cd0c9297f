"""Inference backends: how a batch (B, 12, 4096) becomes logits (B, C).

A backend is built once from the network, the device and the precision, then called per batch. Add an
optimised one (compiled, ONNX Runtime, ...) by registering a factory in ``BACKENDS``; the Predictor picks
it by name (``backend=...`` in conf/predict.yaml).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Protocol

import torch
from torch import nn

from ecglit.errors import ConfigError

PRECISIONS = {"32": None, "32-true": None, "bf16": torch.bfloat16, "bf16-mixed": torch.bfloat16,
              "16": torch.float16, "16-mixed": torch.float16}


class Backend(Protocol):
    device: torch.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (B, 12, 4096) float32 -> (B, C) float32 logits
        ...


class EagerBackend:
    """The PyTorch module as is, in eval mode, optionally under autocast (bf16 / fp16)."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "32") -> None:
        if str(precision) not in PRECISIONS:
            raise ConfigError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        self.device = device
        self.dtype = PRECISIONS[str(precision)]
        self.model = model.to(device).eval()

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        autocast = (torch.autocast(self.device.type, dtype=self.dtype) if self.dtype is not None
                    else nullcontext())
        with autocast:
            return self.model(x).float()


BACKENDS: dict[str, Callable[[nn.Module, torch.device, str], Backend]] = {"eager": EagerBackend}


def make_backend(name: str, model: nn.Module, device: torch.device, precision: str = "32") -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown inference backend {name!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[name](model, device, precision)

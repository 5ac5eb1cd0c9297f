"""Inference backends: how a batch (B, 12, 4096) becomes logits (B, C).

A backend is built once from the network, the device, the precision and the largest batch, then called
per batch. The Predictor picks one by name (``backend=...`` in conf/predict.yaml):

- ``eager``: the module as is (PyTorch eager), in eval mode.
- ``compiled``: ``torch.compile`` (Inductor) with freezing: weights become constants, so BatchNorm and
  casts fuse into the neighbouring kernels and oneDNN gets pre-packed weights. The graph is specialised
  to one batch size; shorter batches are zero-padded to it (rows are independent in eval mode).
- ``onnx``: the network exported to ONNX (TorchScript exporter) and run by ONNX Runtime; float32 only.
- ``auto`` (predict.py's default): ``compiled`` with ``precision=auto`` for networks of at least
  ``AUTO_COMPILE_GFLOP`` per exam (the paper's is 3.65), ``eager`` float32 for smaller ones, where the
  one-off compilation (~10-30 s) would cost more than it saves.

Precisions (all backends but onnx):

- ``32``: float32 throughout.
- ``bf16`` / ``16``: the convolutions of the main path (96 % of the paper network's FLOPs) run in
  bfloat16 / float16 (inputs and noise-shaped weights rounded, float32 accumulation); everything else
  stays float32: the first convolution (it sees the raw signal), 1x1 (skip) convolutions, BatchNorm, the
  residual sums and the head. On a trained paper network this keeps probabilities within 1.7e-3 of
  float32 (labels identical) where plain autocast drifts by 9e-3 (BENCHMARKS.md), at nearly the same
  speed once compiled.
- ``bf16-autocast`` / ``16-autocast``: plain ``torch.autocast`` around the whole forward.
- ``auto``: ``bf16`` where the hardware computes it natively (CPUs with AVX512-BF16/AMX, CUDA GPUs
  with bf16 support), else ``32``.
"""

from __future__ import annotations

import copy
import io
import logging
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ecglit.constants import LEADS, N_SAMPLES
from ecglit.errors import ConfigError
from ecglit.utils.hardware import native_bf16, retain_freed_memory

log = logging.getLogger(__name__)

# precision name -> (low-precision dtype or None, how it is applied: "convs" | "autocast" | None)
PRECISIONS: dict[str, tuple[torch.dtype | None, str | None]] = {
    "32": (None, None), "32-true": (None, None),
    "bf16": (torch.bfloat16, "convs"), "bf16-mixed": (torch.bfloat16, "convs"),
    "16": (torch.float16, "convs"), "16-mixed": (torch.float16, "convs"),
    "bf16-autocast": (torch.bfloat16, "autocast"), "16-autocast": (torch.float16, "autocast"),
}
AUTO_COMPILE_GFLOP = 1.0  # forward GFLOP per exam from which backend=auto compiles


class Backend(Protocol):
    device: torch.device

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (B, 12, 4096) float32 -> (B, C) float32 logits
        ...


# --- precision ----------------------------------------------------------------------------------
def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` or ``32`` for ``device``; other names are checked and returned as given."""
    precision = str(precision)
    if precision == "auto":
        return "bf16" if native_bf16(device) else "32"
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be 'auto' or one of {sorted(PRECISIONS)}, got {precision!r}")
    return precision


def noise_shaped_round(weight: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Round a (out, in, k) kernel to ``dtype`` carrying each tap's rounding error into the next tap
    (first-order error diffusion). The errors of neighbouring taps then cancel on slowly varying inputs,
    as ECGs and their feature maps are: on the paper's network this halves the output error due to
    weight rounding (BENCHMARKS.md) at no run-time cost."""
    w = weight.detach().float()
    out = torch.empty_like(w, dtype=dtype)
    carry = torch.zeros_like(w[..., 0])
    for k in range(w.shape[-1]):
        wanted = w[..., k] + carry
        out[..., k] = wanted.to(dtype)
        carry = wanted - out[..., k].float()
    return out


class LowPrecisionConv1d(nn.Module):
    """A Conv1d computed in ``dtype`` (noise-shaped weights stored in it) with float32 input and output."""

    def __init__(self, conv: nn.Conv1d, dtype: torch.dtype) -> None:
        super().__init__()
        self.conv, self.dtype = conv, dtype  # the original keeps padding/stride/repr
        self.register_buffer("weight", noise_shaped_round(conv.weight, dtype))
        self.pads = tuple(getattr(conv, "same_pads", (0, 0)))  # SamePadConv1d pads before convolving

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pads != (0, 0):
            x = F.pad(x, self.pads)
        y = self.conv._conv_forward(x.to(self.dtype), self.weight, None).float()
        return y if self.conv.bias is None else y + self.conv.bias.float()[:, None]


def lower_precision_copy(model: nn.Module, dtype: torch.dtype) -> nn.Module:
    """A copy of ``model`` whose Conv1d layers run in ``dtype``, except the first one (it reads the raw
    signal) and 1x1 convolutions (the skip connections: cheap, and the most sensitive per FLOP)."""
    model = copy.deepcopy(model).eval()
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv1d)]
    for i, (name, conv) in enumerate(convs):
        if i == 0 or conv.kernel_size == (1,) or conv.padding_mode != "zeros":
            continue
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, LowPrecisionConv1d(conv, dtype))
    return model


def _apply_precision(model: nn.Module, precision: str) -> tuple[nn.Module, Callable[[], Any]]:
    """(module to run, context factory to run it in) for a resolved precision."""
    dtype, how = PRECISIONS[precision]
    if how == "convs":
        return lower_precision_copy(model, dtype), nullcontext
    if how == "autocast":
        device_type = next(model.parameters()).device.type
        return model, lambda: torch.autocast(device_type, dtype=dtype)
    return model, nullcontext


def forward_gflop(model: nn.Module) -> float:
    """Forward GFLOP of one exam (counted on the meta device: no memory, no compute)."""
    from torch.utils.flop_counter import FlopCounterMode

    meta = copy.deepcopy(model).to("meta").eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta(torch.zeros(1, len(LEADS), N_SAMPLES, device="meta"))
    return counter.get_total_flops() / 1e9


# --- backends -----------------------------------------------------------------------------------
class EagerBackend:
    """The PyTorch module as is, in eval mode, in the given precision."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "32",
                 batch_size: int | None = None) -> None:
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.model, self._context = _apply_precision(model.to(device).eval(), self.precision)

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        with self._context():
            return self.model(x.to(self.device, non_blocking=True)).float()


class CompiledBackend:
    """``torch.compile`` (Inductor, freezing) of the module in the given precision, one batch shape."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "auto",
                 batch_size: int | None = None) -> None:
        self.device = device
        self.precision = resolve_precision(precision, device)
        self.batch_size = batch_size  # None: the first batch's size
        model, self._context = _apply_precision(model.to(device).eval(), self.precision)
        if device.type == "cpu":
            retain_freed_memory()
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # one input shape: cuDNN's per-shape search pays off
        self.model = torch.compile(model, dynamic=False, options={"freezing": True})

    @torch.inference_mode()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        if self.batch_size is None:
            self.batch_size = len(x)
        outputs = []
        for start in range(0, len(x), self.batch_size):
            chunk = x[start:start + self.batch_size]
            n = len(chunk)
            if n < self.batch_size:  # same shape every call: no recompilation for the last batch
                chunk = torch.cat([chunk, chunk.new_zeros((self.batch_size - n, *chunk.shape[1:]))])
            with self._context():
                outputs.append(self.model(chunk)[:n].float())
        return torch.cat(outputs) if outputs else torch.zeros(0)


class OnnxBackend:
    """ONNX Runtime on the exported network (float32; CPU, or CUDA when onnxruntime-gpu is installed)."""

    def __init__(self, model: nn.Module, device: torch.device, precision: str = "32",
                 batch_size: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as err:
            raise ConfigError("backend=onnx needs onnxruntime (pip install 'ecglit[export]')") from err
        if precision not in ("32", "32-true", "auto"):
            raise ConfigError(f"backend=onnx runs float32 only, got precision={precision!r}")
        self.device, self.precision = device, "32"
        model = copy.deepcopy(model).cpu().eval()
        buffer = io.BytesIO()
        example = torch.zeros(batch_size or 1, len(LEADS), N_SAMPLES)
        torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17)
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = (["CUDAExecutionProvider"] if device.type == "cuda" else []) + ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=providers)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run(None, {"x": x})[0]).float()


def auto_backend(model: nn.Module, device: torch.device, precision: str = "auto",
                 batch_size: int | None = None) -> Backend:
    """``compiled`` for networks of >= AUTO_COMPILE_GFLOP per exam, else ``eager``; ``precision=auto``
    resolves to bf16 (where native) for the compiled path and float32 for the eager one."""
    gflop = forward_gflop(model)
    if gflop >= AUTO_COMPILE_GFLOP:
        log.info("backend=auto: %.2f GFLOP per exam -> compiled, precision %s", gflop, precision)
        return CompiledBackend(model, device, precision, batch_size)
    log.info("backend=auto: %.3f GFLOP per exam -> eager", gflop)
    return EagerBackend(model, device, "32" if precision == "auto" else precision, batch_size)


BackendFactory = Callable[..., Backend]
BACKENDS: dict[str, BackendFactory] = {"eager": EagerBackend, "compiled": CompiledBackend, "onnx": OnnxBackend,
                                       "auto": auto_backend}


def make_backend(name: str, model: nn.Module, device: torch.device, precision: str = "32",
                 batch_size: int | None = None) -> Backend:
    """Build backend ``name`` (see BACKENDS) for ``model`` on ``device``; ``batch_size`` is the largest batch."""
    if name not in BACKENDS:
        raise ConfigError(f"unknown inference backend {name!r}; available: {sorted(BACKENDS)}")
    return BACKENDS[name](model, device, str(precision), batch_size)

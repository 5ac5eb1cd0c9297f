"""Inference backends (ecglit/inference/backends.py): the optimised paths agree with eager float32.

Acceptance 2 of issue 7: probabilities within 1e-2 of eager float32 and identical labels on >= 99.9% of
exams. The default-run tests check the path on a tiny network trained here for seconds; the slow ones on
resnet_small trained on 2048 exams and on the paper's network.
"""

from __future__ import annotations

from pathlib import Path

import copy

import numpy as np
import pytest
import torch
from torch import nn

from helpers.bf16 import native_bf16_only

from ecglit.data.synthetic import generate_batch
from ecglit.errors import ConfigError
from ecglit.metrics.thresholds import select_thresholds
from ecglit.inference.backends import (
    BACKENDS,
    CompiledBackend,
    EagerBackend,
    LowPrecisionConv1d,
    forward_gflop,
    lower_precision_copy,
    make_backend,
    resolve_precision,
)
from ecglit.inference.predictor import Predictor
from ecglit.models.resnet import ResNet1d

CPU = torch.device("cpu")
SMALL = {"stem_filters": 16, "filters": [16, 32, 64, 128], "kernel_size": 13}  # conf/model/resnet_small.yaml
TINY = {"stem_filters": 4, "filters": [8], "seq_lengths": [64], "kernel_size": 7}
TINY_4UNITS = {"stem_filters": 8, "filters": [8, 8, 16, 16], "kernel_size": 7}  # conf/model/resnet_tiny.yaml


def exams(seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic exams as the network sees them: (n, 12, 4096) and labels (n, 6)."""
    x, y, _, _ = generate_batch(seed, range(n))
    return torch.from_numpy(x).transpose(1, 2).contiguous(), torch.from_numpy(y)


def test_lower_precision_copy_keeps_first_and_1x1_convs_float32() -> None:
    net = ResNet1d(**SMALL).eval()
    low = lower_precision_copy(net, torch.bfloat16)
    assert isinstance(low.stem[0], nn.Conv1d) and low.stem[0].weight.dtype == torch.float32  # reads the signal
    for unit, original in zip(low.units, net.units, strict=True):
        assert isinstance(unit.conv1, LowPrecisionConv1d) and unit.conv1.weight.dtype == torch.bfloat16
        assert isinstance(unit.conv2, LowPrecisionConv1d)
        assert not isinstance(unit.skip_conv, LowPrecisionConv1d)  # 1x1 skip convolutions stay float32
        assert isinstance(original.conv1, nn.Conv1d) and not isinstance(original.conv1, LowPrecisionConv1d)
    assert low.head.weight.dtype == torch.float32


def cpu_has_native_bf16() -> bool:
    """Independent of ecglit (and of oneDNN): the CPU flags the kernel reports."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def test_precision_names() -> None:
    assert resolve_precision("32", CPU) == "32"
    assert resolve_precision("auto", CPU) == ("bf16" if cpu_has_native_bf16() else "32")
    with pytest.raises(ConfigError, match="precision"):
        resolve_precision("fp8", CPU)
    with pytest.raises(ConfigError, match="backend"):
        make_backend("tensorrt", ResNet1d(**TINY), CPU)
    with pytest.raises(ConfigError, match="float32"):
        make_backend("onnx", ResNet1d(**TINY), CPU, "bf16")
    assert set(BACKENDS) >= {"eager", "compiled", "onnx", "auto"}


def test_auto_backend_compiles_only_big_networks() -> None:
    assert forward_gflop(ResNet1d()) == pytest.approx(3.652, abs=1e-3)  # the paper's network
    assert isinstance(make_backend("auto", ResNet1d(**TINY), CPU, "auto"), EagerBackend)
    big = make_backend("auto", ResNet1d(), CPU, "auto", batch_size=8)  # compiles lazily, on the first call
    assert isinstance(big, CompiledBackend)


def test_onnx_matches_eager_float32() -> None:
    pytest.importorskip("onnxruntime")
    net = ResNet1d(**TINY).eval()
    x, _ = exams(1, 5)
    onnx = make_backend("onnx", net, CPU, "32", batch_size=4)
    eager = make_backend("eager", net, CPU, "32")
    np.testing.assert_allclose(onnx(x).numpy(), eager(x).numpy(), rtol=1e-4, atol=1e-5)


def trained_classifier(arch: dict, n: int, epochs: int, seed: int = 0) -> tuple[nn.Module, torch.Tensor]:
    """A ResNet1d trained on ``n`` synthetic exams (bf16 autocast where native, as trainer=cpu_fast), its BatchNorm
    statistics then averaged over the training exams (after so few steps the running averages still
    mostly hold their initial values), and max-F1 thresholds chosen on other exams, as train.py does."""
    torch.manual_seed(seed)
    net = ResNet1d(**arch)
    x, y = exams(11, n)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    # bf16 autocast as trainer=cpu_fast where the CPU computes bf16 natively; elsewhere emulated bf16 training
    # takes tens of minutes, and what these tests compare is the bf16 *inference* path anyway
    for _ in range(epochs):
        for i in torch.randperm(len(x)).split(32):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_has_native_bf16()):
                loss = nn.functional.binary_cross_entropy_with_logits(net(x[i]).float(), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    with torch.no_grad():
        for chunk in x.split(64):
            net(chunk)
    net.eval()
    xv, yv = exams(12, 256)
    with torch.inference_mode():
        thresholds = select_thresholds(torch.sigmoid(torch.cat([net(c) for c in xv.split(64)])), yv)
    return net, thresholds


def _agreement(net: nn.Module, thresholds: torch.Tensor, x: torch.Tensor, backend: str, precision: str):
    exact = Predictor(copy.deepcopy(net), thresholds, backend="eager", precision="32", batch_size=64, device="cpu")
    fast = Predictor(copy.deepcopy(net), thresholds, backend=backend, precision=precision, batch_size=64,
                     device="cpu")
    stored = x.transpose(1, 2).numpy()  # the Predictor takes the stored (B, 4096, 12) layout
    p_exact, p_fast = exact.predict_batch(stored), fast.predict_batch(stored)
    same = (exact.labels(p_exact) == fast.labels(p_fast)).all(axis=1)
    return float(np.abs(p_fast - p_exact).max()), float(same.mean())


@pytest.fixture(scope="module")
def tiny_classifier():
    return trained_classifier(TINY_4UNITS, 768, 5)


# compiling costs ~30 s on 2 CPU cores: the compiled variants run in the slow suite (CI runs it too)
@pytest.mark.parametrize("backend", ["eager", pytest.param("compiled", marks=pytest.mark.slow)])
def test_bf16_path_matches_float32(tiny_classifier, backend: str) -> None:
    """A tiny network trained for seconds: probabilities within 1e-2. Its labels agree on >= 99%: such a
    weak classifier puts many exams right at its thresholds (the 99.9% criterion: slow test below)."""
    net, thresholds = tiny_classifier
    max_diff, agreement = _agreement(net, thresholds, exams(13, 400)[0], backend, "bf16")
    assert max_diff <= 1e-2
    assert agreement >= 0.99


@pytest.mark.slow
@native_bf16_only
def test_bf16_compiled_matches_float32_on_a_trained_network() -> None:
    """Acceptance 2 of issue 7 on resnet_small trained on 2048 exams: max |dp| <= 1e-2 and identical labels
    on >= 99.9% of 1000 exams. (The paper's network trained 150 steps: BENCHMARKS.md.)"""
    net, thresholds = trained_classifier(SMALL, 2048, 5)
    max_diff, agreement = _agreement(net, thresholds, exams(13, 1000)[0], "compiled", "bf16")
    assert max_diff <= 1e-2
    assert agreement >= 0.999


@pytest.mark.slow
def test_compiled_pads_short_batches(tiny_classifier) -> None:
    net, _ = tiny_classifier
    x, _ = exams(14, 11)
    backend = make_backend("compiled", net, CPU, "32", batch_size=8)
    full, short = backend(x[:8]), backend(x[8:])  # 3 rows, padded to 8 inside: no recompilation
    assert short.shape == (3, 6)
    reference = make_backend("eager", net, CPU, "32")
    torch.testing.assert_close(torch.cat([full, short]), reference(x), rtol=1e-4, atol=1e-5)


@pytest.mark.slow
@native_bf16_only
def test_paper_network_bf16_compiled_matches_float32() -> None:
    """The paper's network, its BatchNorm statistics set on synthetic exams, on 512 exams."""
    torch.manual_seed(0)
    net = ResNet1d()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = None  # cumulative average of the batches below
    with torch.no_grad():
        for seed in (21, 22):
            net(exams(seed, 64)[0])
    net.eval()
    xv, yv = exams(23, 256)
    with torch.inference_mode():
        thresholds = select_thresholds(torch.sigmoid(torch.cat([net(c) for c in xv.split(64)])), yv)
    max_diff, agreement = _agreement(net, thresholds, exams(24, 512)[0], "compiled", "bf16")
    assert max_diff <= 1e-2
    assert agreement >= 0.99  # an untrained network puts many exams at its thresholds; see BENCHMARKS.md

"""What bounds inference of the paper's network on this CPU: its convolutions timed one by one, and int8.

    python benchmarks/bench_bound.py [--batch-size 64] [--rounds 3] [--no-int8]

1. Every convolution of the network (its real input shapes, 'same' padding included) is timed alone with
   oneDNN at batch 64, in float32 and in bfloat16. The sum of the convolution times as ecglit's bf16 path
   runs them (main path bf16; the first and the 1x1 skip convolutions float32), with nothing else in the
   network, is the fastest that path could be: ``bf16_conv_bound_speedup`` against the whole eager float32
   network measured in the same process.
2. int8 through ONNX Runtime (static QDQ quantisation, per-channel int8 weights, uint8 activations
   calibrated on synthetic exams; AVX512-VNNI): its speed and its probability error against float32, for
   the whole network and for each convolution quantised alone. Needs onnxruntime.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_backends import calibrated_paper_network
from torch import nn

from ecglit.data.synthetic import generate_batch
from ecglit.models.layers import SamePadConv1d


def _seconds(fn, rounds: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def conv_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, nn.Conv1d, tuple[int, ...]]]:
    """(name, module, padded input shape) of every Conv1d, in forward order."""
    found, hooks = [], []
    for name, m in net.named_modules():
        if isinstance(m, nn.Conv1d):
            pads = m.same_pads if isinstance(m, SamePadConv1d) else (0, 0)
            hooks.append(m.register_forward_pre_hook(
                lambda mod, args, name=name, pads=pads: found.append(
                    (name, mod, (*args[0].shape[:2], args[0].shape[2] + sum(pads))))))
    with torch.inference_mode():
        net(x)
    for h in hooks:
        h.remove()
    return found


@torch.inference_mode()
def conv_bound(net: nn.Module, x: torch.Tensor, rounds: int) -> dict:
    whole_fp32 = _seconds(lambda: net(x), rounds)
    layers, fp32_total, mixed_total, bf16_total = [], 0.0, 0.0, 0.0
    for name, conv, shape in conv_shapes(net, x):
        flop = 2.0 * conv.out_channels * conv.in_channels * conv.kernel_size[0] * shape[0] * (
            (shape[2] - conv.kernel_size[0]) // conv.stride[0] + 1)
        times = {}
        for dtype in (torch.float32, torch.bfloat16):
            xi, w = torch.randn(shape, dtype=dtype), conv.weight.detach().to(dtype)
            times[dtype] = _seconds(lambda xi=xi, w=w, s=conv.stride[0]: F.conv1d(xi, w, stride=s), rounds)
        stays_fp32 = name == "stem.0" or conv.kernel_size[0] == 1  # as lower_precision_copy decides
        fp32_total += times[torch.float32]
        mixed_total += times[torch.float32] if stays_fp32 else times[torch.bfloat16]
        bf16_total += times[torch.bfloat16]
        layers.append({"name": name, "gflop_per_exam": flop / shape[0] / 1e9, "fp32_gflop_per_s": flop / times[torch.float32] / 1e9,
                       "bf16_gflop_per_s": flop / times[torch.bfloat16] / 1e9, "bf16_in_ecglit": not stays_fp32})
    n = x.shape[0]
    out = {"batch_size": n, "eager_fp32_exams_per_s": n / whole_fp32, "fp32_convs_only_exams_per_s": n / fp32_total,
           "bf16_convs_only_exams_per_s": n / mixed_total, "bf16_conv_bound_speedup": whole_fp32 / mixed_total,
           "all_bf16_conv_bound_speedup": whole_fp32 / bf16_total,
           "conv_share_of_eager_fp32": fp32_total / whole_fp32, "layers": layers}
    print(f"  eager fp32 {out['eager_fp32_exams_per_s']:.1f} exams/s; its convolutions alone: fp32 "
          f"{out['fp32_convs_only_exams_per_s']:.1f} ({100 * out['conv_share_of_eager_fp32']:.0f}% of the time), "
          f"as ecglit's bf16 path runs them {out['bf16_convs_only_exams_per_s']:.1f} exams/s = at most "
          f"{out['bf16_conv_bound_speedup']:.2f}x (every convolution in bf16: "
          f"{out['all_bf16_conv_bound_speedup']:.2f}x)", flush=True)
    for layer in layers:
        print(f"    {layer['name']:<18} {layer['gflop_per_exam']:5.3f} GFLOP/exam  fp32 {layer['fp32_gflop_per_s']:5.0f}  "
              f"bf16 {layer['bf16_gflop_per_s']:5.0f} GFLOP/s", flush=True)
    return out


@torch.inference_mode()
def fake_int8_split(net: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Which half of int8 costs accuracy: max |dp| with only the convolutions' weights rounded to int8
    (per output channel), and with only their inputs rounded to 8 bits (per tensor, this batch's range)."""
    reference = torch.sigmoid(net(x))

    def weights_only() -> nn.Module:
        q = copy.deepcopy(net)
        for m in q.modules():
            if isinstance(m, nn.Conv1d):
                scale = m.weight.abs().amax(dim=(1, 2), keepdim=True) / 127
                m.weight.copy_((m.weight / scale).round().clamp(-127, 127) * scale)
        return q

    def activations_only() -> nn.Module:
        q = copy.deepcopy(net)

        def round_input(module: nn.Module, args: tuple) -> tuple:
            lo, hi = float(args[0].min()), float(args[0].max())
            scale = (hi - lo) / 255
            return (torch.round((args[0] - lo) / scale).clamp(0, 255) * scale + lo,)
        for m in q.modules():
            if isinstance(m, nn.Conv1d):
                m.register_forward_pre_hook(round_input)
        return q

    return {name: float((torch.sigmoid(build()(x)) - reference).abs().max())
            for name, build in (("weights_only", weights_only), ("activations_only", activations_only))}


def int8(net: nn.Module, x: torch.Tensor, rounds: int, per_layer: bool = True) -> dict:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:  # 4 batches of other synthetic exams, the exported batch size
            self.batches = iter([{"x": generate_batch(40 + k, range(len(x)))[0].transpose(0, 2, 1).copy()}
                                 for k in range(4)])

        def get_next(self):
            return next(self.batches, None)

    tmp = Path(tempfile.mkdtemp(prefix="ecglit-int8-"))
    torch.onnx.export(net, (x,), tmp / "fp32.onnx", dynamo=False, input_names=["x"], output_names=["logits"])
    quant_pre_process(str(tmp / "fp32.onnx"), str(tmp / "pre.onnx"))
    xn = x.numpy()
    with torch.inference_mode():
        reference = torch.sigmoid(net(x)).numpy()

    def measure(path: Path) -> tuple[float, float]:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        rate = len(xn) / _seconds(lambda: session.run(None, {"x": xn}), rounds)
        p = 1 / (1 + np.exp(-session.run(None, {"x": xn})[0]))
        return rate, float(np.abs(p - reference).max())

    def quantise(nodes: list[str] | None) -> Path:
        quantize_static(str(tmp / "pre.onnx"), str(tmp / "int8.onnx"), Calibration(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_quantize=nodes)
        return tmp / "int8.onnx"

    fp32_rate, _ = measure(tmp / "fp32.onnx")
    int8_rate, int8_diff = measure(quantise(None))
    with torch.inference_mode():
        eager_rate = len(xn) / _seconds(lambda: net(x), rounds)
    split = fake_int8_split(net, x)
    out = {"eager_fp32_exams_per_s": eager_rate, "onnx_fp32_exams_per_s": fp32_rate, "onnx_int8_exams_per_s": int8_rate,
           "int8_speedup": int8_rate / eager_rate, "int8_max_abs_prob_diff": int8_diff,
           "int8_weights_only_max_abs_prob_diff": split["weights_only"],
           "int8_activations_only_max_abs_prob_diff": split["activations_only"]}
    print(f"  ONNX Runtime: fp32 {fp32_rate:.1f}, int8 {int8_rate:.1f} exams/s = {out['int8_speedup']:.2f}x eager "
          f"fp32 ({eager_rate:.1f}); int8 max |dp| {int8_diff:.1e} (int8 weights alone {split['weights_only']:.1e}, "
          f"8-bit activations alone {split['activations_only']:.1e})", flush=True)
    if per_layer:
        import onnx

        convs = [node.name for node in onnx.load(str(tmp / "pre.onnx")).graph.node if node.op_type == "Conv"]
        out["one_layer_int8_max_abs_prob_diff"] = {c: measure(quantise([c]))[1] for c in convs}
        print("  one convolution in int8, the rest fp32, max |dp|: " + ", ".join(
            f"{c.strip('/').replace('/Conv', '')} {d:.1e}" for c, d in out["one_layer_int8_max_abs_prob_diff"].items()),
            flush=True)
    return out


def run(batch_size: int = 64, rounds: int = 3, with_int8: bool = True) -> dict:
    net = calibrated_paper_network()
    x = torch.from_numpy(generate_batch(33, range(batch_size))[0]).transpose(1, 2).contiguous()
    out = {"convs": conv_bound(net, x, rounds)}
    if with_int8:
        try:
            out["int8"] = int8(net, x, rounds)
        except ImportError as e:
            print(f"  int8 skipped: {e}", flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-int8", action="store_true")
    args = parser.parse_args()
    run(args.batch_size, args.rounds, not args.no_int8)

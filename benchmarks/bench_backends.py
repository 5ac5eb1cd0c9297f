"""Every inference backend x precision on the paper's network, side by side in one process (round-robin
over batches, so load changes hit all alike), with its accuracy against eager float32.

    python benchmarks/bench_backends.py [--rounds 4] [--batch-size 64] [--threads N]

The network's BatchNorm statistics are set on synthetic exams (a random network with its initial
statistics is not representative of a trained one); accuracy is the largest probability difference
against eager float32 on the same exams.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from ecglit.data.synthetic import generate_batch
from ecglit.inference.backends import make_backend
from ecglit.models.resnet import ResNet1d

VARIANTS = [("eager", "32"), ("eager", "bf16-autocast"), ("eager", "bf16"), ("onnx", "32"), ("compiled", "32"),
            ("compiled", "bf16-autocast"), ("compiled", "bf16")]


def calibrated_paper_network(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    net = ResNet1d()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm1d):
            m.momentum = None
    with torch.no_grad():
        for s in (31, 32):
            net(torch.from_numpy(generate_batch(s, range(64))[0]).transpose(1, 2).contiguous())
    return net.eval()


def run(rounds: int = 4, batch_size: int = 64, variants: list[tuple[str, str]] | None = None) -> dict:
    variants = variants or VARIANTS
    net = calibrated_paper_network()
    x = torch.from_numpy(generate_batch(33, range(batch_size))[0]).transpose(1, 2).contiguous()
    backends, setup = {}, {}
    for name, precision in variants:
        start = time.perf_counter()
        backend = make_backend(name, net, torch.device("cpu"), precision, batch_size)
        backend(x)  # compile / export / first oneDNN primitives
        backends[(name, precision)], setup[(name, precision)] = backend, time.perf_counter() - start
    reference = torch.sigmoid(backends[("eager", "32")](x))
    seconds = dict.fromkeys(backends, 0.0)
    for _ in range(rounds):
        for key, backend in backends.items():
            start = time.perf_counter()
            backend(x)
            seconds[key] += time.perf_counter() - start
    base = seconds[("eager", "32")]
    out = {}
    for key, backend in backends.items():
        diff = float((torch.sigmoid(backend(x)) - reference).abs().max())
        out[f"{key[0]}:{key[1]}"] = {"exams_per_s": rounds * batch_size / seconds[key], "vs_eager_fp32": base / seconds[key],
                                     "setup_s": setup[key], "max_abs_prob_diff": diff}
        print(f"  {key[0]:>8} {key[1]:<14} {out[f'{key[0]}:{key[1]}']['exams_per_s']:7.1f} exams/s "
              f"{base / seconds[key]:5.2f}x  setup {setup[key]:5.1f} s  max |dp| {diff:.1e}", flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    run(args.rounds, args.batch_size)

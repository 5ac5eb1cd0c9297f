"""Where the time goes: torch.profiler tables for the paper's network, the profiles BENCHMARKS.md cites.

    python benchmarks/profile_paper.py [--threads 1] [--batch-size 64] [--rows 12]

1. a training step in eager float32 (the plain PyTorch baseline);
2. the same step under bf16 autocast (trainer=cpu_fast);
3. an inference batch through backend=compiled precision=bf16 (predict.py's default for this network).
A single thread by default: the tables are then stable on a shared machine.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from ecglit.inference.backends import make_backend
from ecglit.models.resnet import ResNet1d


def training_step(net: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, bf16: bool) -> None:
    opt.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        logits = net(x)
    nn.functional.binary_cross_entropy_with_logits(logits.float(), y).backward()
    opt.step()


def show(title: str, fn, rows: int) -> None:
    fn()  # warm-up
    faults, start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    wall = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(f"\n## {title}: {wall:.2f} s (under the profiler), {faults / 1e3:.0f}k minor page faults\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=45))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rows", type=int, default=12)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = torch.randn(args.batch_size, 12, 4096), (torch.rand(args.batch_size, 6) < 0.1).float()
    for bf16 in (False, True):
        net = ResNet1d()
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        show(f"training step, batch {args.batch_size}, {'bf16 autocast' if bf16 else 'eager float32'}",
             lambda net=net, opt=opt, bf16=bf16: training_step(net, opt, x, y, bf16), args.rows)
    backend = make_backend("compiled", ResNet1d().eval(), torch.device("cpu"), "bf16", args.batch_size)
    backend(x)  # compile
    show(f"inference batch {args.batch_size}, backend=compiled precision=bf16", lambda: backend(x), args.rows)


if __name__ == "__main__":
    main()

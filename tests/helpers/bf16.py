"""A mark for the slow tests that compute in bfloat16 at scale."""

import pytest
import torch

from ecglit.utils.hardware import native_bf16

# Where the CPU has no AVX512-BF16/AMX, torch emulates bf16 at about 100x the float32 time (3.2 s against
# 34 ms per exam on the paper's network, 2-core AMD EPYC): hours for one of these tests. The default suite
# still checks the bf16 paths on a tiny network; these run where bf16 is native (a bf16 CPU, or a GPU).
native_bf16_only = pytest.mark.skipif(
    not native_bf16(torch.device("cpu")),
    reason="bf16 is emulated on this CPU (no AVX512-BF16/AMX): about 100x float32, hours for this test")

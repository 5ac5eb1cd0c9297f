"""Conv1d and max pooling with TensorFlow's padding='same' rule, so even kernels match Keras exactly.

TensorFlow pads asymmetrically when the total padding is odd: the extra sample goes on the right.
For kernel 16 at stride 1 that is 7 left / 8 right; at stride 4 on a length divisible by 4 it is 6 / 6.
PyTorch's `padding='same'` agrees at stride 1 (it also puts the extra sample on the right) but refuses
strides > 1, which every unit's second conv needs. So the pads are computed here once, at construction,
from the (known) input length: forward has no shape logic at all, which keeps the modules trivially
traceable and exportable.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ecglit.errors import ConfigError


def tf_same_pads(in_length: int, kernel_size: int, stride: int = 1) -> tuple[int, int]:
    """Left and right padding TensorFlow uses for padding='same' (output length ceil(in / stride))."""
    if in_length < 1 or kernel_size < 1 or stride < 1:
        raise ConfigError(
            f"'same' padding needs positive sizes, got in_length={in_length}, "
            f"kernel_size={kernel_size}, stride={stride}"
        )
    out_length = math.ceil(in_length / stride)
    pad_total = max((out_length - 1) * stride + kernel_size - in_length, 0)
    pad_left = pad_total // 2
    return pad_left, pad_total - pad_left


class SamePadConv1d(nn.Conv1d):
    """`nn.Conv1d` with TensorFlow 'same' padding for a fixed input length (any kernel, any stride).

    Output length is ceil(in_length / stride). Zero padding is applied with `F.pad`, then the
    convolution runs with padding=0, so the weights and state_dict are those of a plain Conv1d.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        in_length: int,
        stride: int = 1,
        bias: bool = False,
    ) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=bias)
        self.in_length = in_length
        self.out_length = math.ceil(in_length / stride)
        self.same_pads = tf_same_pads(in_length, kernel_size, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.same_pads))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, in_length={self.in_length}, same_pads={self.same_pads}"


class SamePadMaxPool1d(nn.Module):
    """`MaxPooling1D(pool, strides=pool, padding='same')` of TensorFlow for a fixed input length.

    TensorFlow pads max pooling with -inf (the padding never wins), so that is what is done here.
    When the length is divisible by the pool size there is no padding at all.
    """

    def __init__(self, pool_size: int, in_length: int) -> None:
        super().__init__()
        self.pool_size = pool_size
        self.in_length = in_length
        self.out_length = math.ceil(in_length / pool_size)
        self.same_pads = tf_same_pads(in_length, pool_size, pool_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.same_pads != (0, 0):  # decided at construction, not by the data
            x = F.pad(x, self.same_pads, value=float("-inf"))
        return F.max_pool1d(x, self.pool_size, self.pool_size)

    def extra_repr(self) -> str:
        return f"pool_size={self.pool_size}, in_length={self.in_length}, same_pads={self.same_pads}"

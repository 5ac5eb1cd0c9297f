"""The 1-D ResNet of Ribeiro et al. (Nat Commun 2020), layer for layer as the Keras `model.py`.

Defaults reproduce the paper's network: kernel 16 with TensorFlow's asymmetric 'same' padding,
stem Conv -> BN -> ReLU, four pre-activation residual units (1024,128), (256,196), (64,256), (16,320),
dropout 0.2, Keras BatchNorm settings and Keras `he_normal` initialisation; 6,421,910 trainable
parameters. The head returns logits (the Keras model ends in a sigmoid; apply it in the loss).

Switching to the ecg-age-prediction PyTorch port: kernel_size=17, stem_activation="none",
bn_momentum=0.1, bn_eps=1e-5, init="torch_default" (see conf/model/resnet_port.yaml).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ecglit.errors import ConfigError
from ecglit.models.layers import SamePadConv1d, SamePadMaxPool1d

# Activations selectable for the stem; "none" reproduces the PyTorch port (Conv -> BN only).
STEM_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "none": nn.Identity,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "silu": nn.SiLU,
    "leaky_relu": nn.LeakyReLU,
}
INITS: tuple[str, ...] = ("he_normal", "torch_default")
# std of a unit normal truncated to [-2, 2]; TF's VarianceScaling divides by it so that the truncated
# samples keep the variance 2 / fan_in that he_normal promises.
_TRUNCNORM_STD = 0.87962566103423978


class ResidualUnit(nn.Module):
    """One pre-activation residual unit of the Keras model, carrying the pair (x, y).

    skip:  y -> MaxPool(ds, 'same') if ds > 1 -> 1x1 conv (no bias) if the channel count changes
    main:  x -> conv(k) -> BN -> ReLU -> dropout -> conv(k, stride=ds)
    then   x = main + skip;  y = x;  x = dropout(relu(BN(x)));  return (x, y)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        in_length: int,
        downsample: int,
        kernel_size: int,
        dropout: float,
        bn_momentum: float,
        bn_eps: float,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        self.skip_pool = SamePadMaxPool1d(downsample, in_length) if downsample > 1 else nn.Identity()
        self.skip_conv = (
            nn.Conv1d(in_channels, out_channels, 1, bias=False)
            if in_channels != out_channels
            else nn.Identity()
        )
        self.conv1 = SamePadConv1d(in_channels, out_channels, kernel_size, in_length)
        self.bn1 = norm_layer(norm, out_channels, bn_eps, bn_momentum)
        self.relu1 = nn.ReLU()
        self.dropout1 = nn.Dropout(dropout)
        self.conv2 = SamePadConv1d(out_channels, out_channels, kernel_size, in_length, stride=downsample)
        self.bn2 = norm_layer(norm, out_channels, bn_eps, bn_momentum)
        self.relu2 = nn.ReLU()
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = self.skip_conv(self.skip_pool(y))
        x = self.dropout1(self.relu1(self.bn1(self.conv1(x))))
        x = self.conv2(x) + y
        y = x
        x = self.dropout2(self.relu2(self.bn2(x)))
        return x, y


NORMS: tuple[str, ...] = ("batch", "group")
NORM_GROUPS = 8  # groups per layer: 2 channels each in the 16-channel stem, 16 in a 128-channel unit


def norm_layer(norm: str, channels: int, eps: float, momentum: float) -> nn.Module:
    """BatchNorm (the paper's), or GroupNorm: statistics of each exam alone, in training and prediction
    alike, so nothing learnt about one population's feature statistics is applied to another."""
    if norm == "group":
        return nn.GroupNorm(math.gcd(NORM_GROUPS, channels), channels, eps=eps)
    return nn.BatchNorm1d(channels, eps=eps, momentum=momentum)


def _as_int_tuple(name: str, values: Sequence[int]) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{name} must be a list of integers, got {values!r}") from err


def _downsample_factors(n_samples: int, seq_lengths: tuple[int, ...]) -> tuple[int, ...]:
    factors, previous = [], n_samples
    for i, length in enumerate(seq_lengths):
        if previous % length != 0:
            raise ConfigError(
                f"seq_lengths[{i}]={length} does not divide the previous length {previous}: each unit "
                f"downsamples by an integer factor (lengths {[n_samples, *seq_lengths]})"
            )
        factors.append(previous // length)
        previous = length
    return tuple(factors)


def _check_args(
    n_leads: int, n_classes: int, n_samples: int, stem_filters: int, filters: tuple[int, ...],
    seq_lengths: tuple[int, ...], kernel_size: int, width: float, dropout: float,
    stem_activation: str, bn_momentum: float, bn_eps: float, init: str, norm: str = "batch",
) -> None:
    for name, value in (("n_leads", n_leads), ("n_classes", n_classes), ("n_samples", n_samples),
                        ("stem_filters", stem_filters)):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")
    if len(filters) != len(seq_lengths) or not filters:
        raise ConfigError(
            f"filters and seq_lengths need the same, non-zero length (one entry per residual unit), "
            f"got {len(filters)} filters {list(filters)} and "
            f"{len(seq_lengths)} seq_lengths {list(seq_lengths)}"
        )
    if min(filters) < 1 or min(seq_lengths) < 1:
        raise ConfigError(
            f"filters and seq_lengths must be positive, got {list(filters)} and {list(seq_lengths)}"
        )
    if kernel_size < 1:
        raise ConfigError(f"kernel_size must be >= 1, got {kernel_size}")
    if not width > 0:
        raise ConfigError(f"width must be > 0, got {width}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"dropout is a drop probability in [0, 1), got {dropout}")
    if stem_activation not in STEM_ACTIVATIONS:
        raise ConfigError(
            f"stem_activation must be one of {sorted(STEM_ACTIVATIONS)}, got {stem_activation!r}"
        )
    if not 0.0 < bn_momentum <= 1.0:
        raise ConfigError(f"bn_momentum is PyTorch's (1 - Keras momentum), in (0, 1], got {bn_momentum}")
    if not bn_eps > 0:
        raise ConfigError(f"bn_eps must be > 0, got {bn_eps}")
    if init not in INITS:
        raise ConfigError(f"init must be one of {list(INITS)}, got {init!r}")
    if norm not in NORMS:
        raise ConfigError(f"norm must be one of {list(NORMS)}, got {norm!r}")


def keras_he_normal_(weight: torch.Tensor) -> torch.Tensor:
    """Keras `he_normal` (TF2): normal truncated at 2 std, scaled so the final std is sqrt(2 / fan_in).

    fan_in is in_channels * kernel_size for Conv1d weights and in_features for Linear, as in Keras.
    """
    fan_in = weight[0].numel()
    std = math.sqrt(2.0 / fan_in) / _TRUNCNORM_STD
    return nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-2.0 * std, b=2.0 * std)


class ResNet1d(nn.Module):
    """Ribeiro et al.'s ECG ResNet; input (B, n_leads, n_samples) -> logits (B, n_classes).

    Args:
        n_leads, n_classes, n_samples: input channels, outputs, input length (fixed: the head is dense).
        stem_filters: channels of the stem convolution (64 in the paper).
        filters, seq_lengths: one entry per residual unit; each unit downsamples by
            previous length / its length (must be an integer). Longer lists make deeper nets.
        kernel_size: every non-1x1 conv; even kernels use TensorFlow's asymmetric 'same' padding.
        width: multiplies stem_filters and filters (rounded, at least 1).
        dropout: drop probability (Keras `dropout_keep_prob=0.8` means 0.2).
        stem_activation: one of STEM_ACTIVATIONS; "none" is the PyTorch port's stem.
        bn_momentum, bn_eps: PyTorch convention. Keras momentum 0.99 is PyTorch 0.01 (the default
            here), Keras eps is 1e-3. PyTorch's own defaults are bn_momentum=0.1, bn_eps=1e-5.
        init: "he_normal" (Keras: truncated normal, conv/linear weights; zero bias; BN gamma 1,
            beta 0) or "torch_default" (PyTorch's kaiming-uniform defaults, as in the port).
        norm: "batch" (the paper's BatchNorm) or "group" (GroupNorm, per-exam statistics; bn_eps applies).

    The head flattens the last unit's output time-major, as Keras' Flatten does on (B, L, C), so a
    Keras Dense kernel (L*C, n_classes) loads as `head.weight = kernel.T` without permutation.
    """

    def __init__(
        self,
        n_leads: int = 12,
        n_classes: int = 6,
        n_samples: int = 4096,
        stem_filters: int = 64,
        filters: Sequence[int] = (128, 196, 256, 320),
        seq_lengths: Sequence[int] = (1024, 256, 64, 16),
        kernel_size: int = 16,
        width: float = 1.0,
        dropout: float = 0.2,
        stem_activation: str = "relu",
        bn_momentum: float = 0.01,
        bn_eps: float = 1e-3,
        init: str = "he_normal",
        norm: str = "batch",
    ) -> None:
        super().__init__()
        filters = _as_int_tuple("filters", filters)
        seq_lengths = _as_int_tuple("seq_lengths", seq_lengths)
        _check_args(n_leads, n_classes, n_samples, stem_filters, filters, seq_lengths, kernel_size,
                    width, dropout, stem_activation, bn_momentum, bn_eps, init, norm)
        downsample = _downsample_factors(n_samples, seq_lengths)
        channels = [max(1, round(c * width)) for c in (stem_filters, *filters)]

        self.n_samples = n_samples
        self.kernel_size = kernel_size
        self.seq_lengths = seq_lengths
        self.downsample = downsample
        self.channels = tuple(channels)

        self.stem = nn.Sequential(
            SamePadConv1d(n_leads, channels[0], kernel_size, n_samples),
            norm_layer(norm, channels[0], bn_eps, bn_momentum),
            STEM_ACTIVATIONS[stem_activation](),
        )
        in_lengths = (n_samples, *seq_lengths[:-1])
        self.units = nn.ModuleList(
            ResidualUnit(channels[i], channels[i + 1], in_lengths[i], downsample[i], kernel_size,
                         dropout, bn_momentum, bn_eps, norm)
            for i in range(len(seq_lengths))
        )
        self.head = nn.Linear(seq_lengths[-1] * channels[-1], n_classes)
        if init == "he_normal":
            self._init_keras()

    def _init_keras(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)):
                keras_he_normal_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm1d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def receptive_field(self) -> int:
        """Samples of input that one position of the last unit sees through the main (conv) path."""
        field, jump = 1 + (self.kernel_size - 1), 1  # the stem conv
        for ds in self.downsample:
            field += 2 * (self.kernel_size - 1) * jump  # conv1 at stride 1, conv2 at stride ds
            jump *= ds
        return field

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last residual unit, (B, channels[-1], seq_lengths[-1])."""
        x = self.stem(x)
        y = x
        for unit in self.units:
            x, y = unit(x, y)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.forward_features(x)
        # Keras flattens (B, L, C) row-major: time-major order.
        return self.head(features.transpose(1, 2).flatten(1))

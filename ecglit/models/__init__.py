"""Networks: plain nn.Modules, input (B, 12, 4096) -> logits (B, 6)."""

from ecglit.models.resnet import ResNet1d

__all__ = ["ResNet1d"]

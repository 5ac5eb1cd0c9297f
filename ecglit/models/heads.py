"""Which layers of a network are its head: what fine-tuning trains when the backbone is frozen, runs at
its own learning rate, or re-initialises.

A network's head is its ``head`` module (every ecglit ResNet's final Linear); an :class:`Ensemble`'s are
its members' heads, so an ensemble fine-tunes like its members, each on its own features.
"""

from __future__ import annotations

from torch import nn


def head_modules(net: nn.Module) -> dict[str, nn.Module]:
    """``{qualified name: module}`` of the head(s) of ``net``; empty when it has none."""
    head = getattr(net, "head", None)
    if isinstance(head, nn.Module):
        return {"head": head}
    members = getattr(net, "members", None)
    if isinstance(members, nn.ModuleList) and len(members) > 0 \
            and all(isinstance(getattr(m, "head", None), nn.Module) for m in members):
        return {f"members.{i}.head": m.head for i, m in enumerate(members)}
    return {}


def in_head(name: str, heads: dict[str, nn.Module]) -> bool:
    """Whether the parameter or module ``name`` (qualified within the network) belongs to one of ``heads``."""
    return any(name == h or name.startswith(h + ".") for h in heads)

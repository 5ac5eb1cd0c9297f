"""Build callbacks and loggers from their named config groups (each entry with a ``_target_``)."""

from __future__ import annotations

from typing import Any

import hydra
from omegaconf import DictConfig


def instantiate_group(cfg: DictConfig | None) -> list[Any]:
    """Instantiate every entry of a named-dict config group; ``None`` or empty gives []."""
    if not cfg:
        return []
    if not isinstance(cfg, DictConfig):
        raise TypeError(f"expected a named config group (mapping of name -> config), got {type(cfg).__name__}")
    return [hydra.utils.instantiate(c) for c in cfg.values() if isinstance(c, DictConfig) and "_target_" in c]

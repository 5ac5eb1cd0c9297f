"""The allowlist of what a configuration (or a checkpoint's hyper-parameters) may build.

A checkpoint is data: its hyper-parameters name the network, optimizer and scheduler by ``_target_``
strings, and whoever wrote the file chose those strings. So nothing is imported by name. A network must be
registered here (ecglit's own are; add yours with :func:`register_network`), an optimizer must be a class of
``torch.optim``, a scheduler a class of ``torch.optim.lr_scheduler``; their arguments must be plain values
(no nested ``_target_``, ``_partial_`` or ``_args_``). Anything else is refused with a ConfigError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ecglit.errors import ConfigError
from ecglit.models.ensemble import ENSEMBLE_TARGET, Ensemble
from ecglit.models.resnet import ResNet1d

NETWORKS: dict[str, type[nn.Module]] = {}
_HYDRA_KEYS = ("_target_", "_partial_", "_args_", "_recursive_", "_convert_")


def register_network(cls: type[nn.Module], name: str | None = None) -> type[nn.Module]:
    """Allow ``cls`` as a network ``_target_`` (its dotted path, or ``name``). Usable as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ConfigError(f"only nn.Module classes can be registered as networks, got {cls!r}")
    NETWORKS[name or f"{cls.__module__}.{cls.__qualname__}"] = cls
    return cls


register_network(ResNet1d)
register_network(Ensemble)


def _check_plain(value: Any, where: str) -> None:
    """Plain data only: numbers, strings, bools, None, lists and string-keyed dicts without Hydra keys."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ConfigError(f"{where} has a non-string key {key!r}")
            if key in _HYDRA_KEYS:
                raise ConfigError(f"{where}.{key} is not allowed here: only the top-level _target_ is built")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_plain(item, f"{where}[{i}]")
    elif not (value is None or isinstance(value, (bool, int, float, str))):
        raise ConfigError(f"{where} holds a {type(value).__name__}, expected plain values")


def _split_target(cfg: Mapping[str, Any], what: str) -> tuple[str, dict[str, Any]]:
    if not isinstance(cfg, Mapping) or not isinstance(cfg.get("_target_"), str):
        raise ConfigError(f"{what} config needs a _target_ string, got {cfg!r}")
    kwargs = {k: v for k, v in cfg.items() if k != "_target_"}
    _check_plain(kwargs, what)
    return cfg["_target_"], kwargs


def _torch_class(target: str, module: Any, prefix: str, base: type, what: str) -> type:
    name = target.removeprefix(prefix)
    cls = getattr(module, name, None) if target.startswith(prefix) and name.isidentifier() else None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{what} {target!r} is not allowed: only classes of {prefix.rstrip('.')} are built")
    return cls


def _call(cls: type, kwargs: dict[str, Any], what: str, *args: Any) -> Any:
    try:
        return cls(*args, **kwargs)
    except TypeError as err:  # unknown or missing arguments: a configuration error, not a bug
        raise ConfigError(f"{what} {cls.__name__}: {err}") from None
    except ValueError as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"{what} {cls.__name__}: {err}") from None


def build_network(cfg: Mapping[str, Any], **overrides: Any) -> nn.Module:
    """A registered network from ``{_target_: dotted name, **kwargs}`` (``overrides`` win)."""
    target, kwargs = _split_target(cfg, "network")
    cls = NETWORKS.get(target)
    if cls is None:
        raise ConfigError(f"network {target!r} is not a registered ecglit network (registered: "
                          f"{sorted(NETWORKS)}; see ecglit.models.registry.register_network)")
    if cls is Ensemble:
        return _call(_build_ensemble, {**kwargs, **overrides}, "network")
    return _call(cls, {**kwargs, **overrides}, "network")


def _build_ensemble(member: str, member_kwargs: Mapping[str, Any] | None = None, n_members: int = 2,
                    n_classes: int = 6) -> Ensemble:
    """An :class:`Ensemble` of ``n_members`` registered networks ``member`` built with ``member_kwargs``."""
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
        raise ConfigError(f"n_members must be a positive integer, got {n_members!r}")
    if member == ENSEMBLE_TARGET:
        raise ConfigError("an ensemble's members cannot be ensembles")
    config = {"_target_": member, **dict(member_kwargs or {})}
    return Ensemble([build_network(config, n_classes=n_classes) for _ in range(n_members)])


def build_optimizer(cfg: Mapping[str, Any], params: Iterable[nn.Parameter] | Iterable[dict]
                    ) -> torch.optim.Optimizer:
    """A ``torch.optim`` optimizer from ``{_target_: torch.optim.Name, **kwargs}``."""
    target, kwargs = _split_target(cfg, "optimizer")
    cls = _torch_class(target, torch.optim, "torch.optim.", torch.optim.Optimizer, "optimizer")
    return _call(cls, kwargs, "optimizer", params)


def build_scheduler(cfg: Mapping[str, Any], optimizer: torch.optim.Optimizer) -> Any:
    """A ``torch.optim.lr_scheduler`` scheduler from ``{_target_: torch.optim.lr_scheduler.Name, ...}``."""
    target, kwargs = _split_target(cfg, "scheduler")
    base = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    cls = _torch_class(target, torch.optim.lr_scheduler, "torch.optim.lr_scheduler.", base, "scheduler")
    return _call(cls, kwargs, "scheduler", optimizer)


def check_buildable(net: Mapping[str, Any], optimizer: Mapping[str, Any] | None,
                    scheduler: Mapping[str, Any] | None) -> None:
    """Raise ConfigError unless every ``_target_`` is allowed (without building anything)."""
    target, _ = _split_target(net, "network")
    if target not in NETWORKS:
        build_network(net)  # raises with the registered names
    if optimizer:
        _torch_class(_split_target(optimizer, "optimizer")[0], torch.optim, "torch.optim.",
                     torch.optim.Optimizer, "optimizer")
    if scheduler:
        base = (torch.optim.lr_scheduler.LRScheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
        _torch_class(_split_target(scheduler, "scheduler")[0], torch.optim.lr_scheduler,
                     "torch.optim.lr_scheduler.", base, "scheduler")

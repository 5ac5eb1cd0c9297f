"""ecglit's Hydra configs: the structured configs they use, and composing them in Python.

The YAML files are the checkout's top-level ``conf/`` folder; an installed package ships the same folder
as ``ecglit/conf`` (:func:`ecglit.utils.cli.config_dir` finds either). Two nodes come from Python and must be
in Hydra's ConfigStore before a config is composed: the programs (:mod:`ecglit.cli`) call
:func:`register_configs`, and so must code that composes the configs itself, or use :func:`compose`.

- ``ecglit_synthetic_generator``: the schema of the generator options (``data.generator`` in training,
  ``generator`` in ``ecglit.data.synthesize``), the dataclass
  :class:`~ecglit.data.synthetic.config.SyntheticConfig`: every option can be overridden without ``+``,
  values are type-checked and a misspelt key fails with the list of valid ones.
- ``ecglit_open_mapping``: an empty mapping that takes new keys (``report.annotators.cardio=cardio.csv``)
  although Hydra closes the rest of the config.
"""

from __future__ import annotations

from collections.abc import Sequence

from omegaconf import DictConfig

from ecglit.data.synthetic.config import register_schema
from ecglit.utils.cli import config_dir, register_open_mapping


def register_configs() -> None:
    """Store ecglit's structured configs in Hydra's ConfigStore (idempotent; see the module docstring)."""
    register_schema()
    register_open_mapping()


def compose(config_name: str, overrides: Sequence[str] = (), return_hydra_config: bool = False) -> DictConfig:
    """The config ``conf/<config_name>.yaml`` with ``overrides``, as the program would see it (without
    running it); raises Hydra's exceptions for bad overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(config_dir())):
        return hydra_compose(config_name, overrides=list(overrides), return_hydra_config=return_hydra_config)

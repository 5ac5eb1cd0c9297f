"""Where ecglit's Hydra configs live, the structured configs they use, and composing them in Python.

The YAML files are the checkout's top-level ``conf/`` folder; an installed package ships the same folder
as ``ecglit/conf`` (pyproject.toml maps one onto the other). Two nodes come from Python, registered in
Hydra's ConfigStore by :func:`register_configs` (every entry point calls it, and so must code that composes
the configs itself, or use :func:`compose`):

- ``ecglit_synthetic_generator``: the schema of the generator options (``data.generator`` in training,
  ``generator`` in ``ecglit.data.synthesize``), built from the dataclass
  :class:`~ecglit.data.synthetic.config.SyntheticConfig`: every option can be overridden without ``+``,
  values are type-checked and a misspelt key fails with the list of valid ones.
- ``ecglit_open_mapping``: an empty mapping that takes new keys (``report.annotators.cardio=cardio.csv``)
  although Hydra closes the rest of the config.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> Path:
    """The folder of train.yaml & co.: ``ecglit/conf`` when installed, else the checkout's ``conf/``."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"ecglit's Hydra configs are neither in {PACKAGE_DIR / 'conf'} (installed "
                            f"package) nor in {PACKAGE_DIR.parent / 'conf'} (checkout)")


def register_configs() -> None:
    """Store ecglit's structured configs in Hydra's ConfigStore (idempotent; see the module docstring)."""
    from hydra.core.config_store import ConfigStore

    from ecglit.data.synthetic.config import SyntheticConfig

    store = ConfigStore.instance()
    store.store(name="ecglit_synthetic_generator", node=SyntheticConfig)
    store.store(name="ecglit_open_mapping", node=OmegaConf.create({}, flags={"struct": False}))


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

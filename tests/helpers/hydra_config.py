"""Composing the train config in tests as train.py would see it."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

REPO = Path(__file__).resolve().parents[2]


def compose_train(overrides: list[str], tmp_path: Path) -> DictConfig:
    """The train config as train.py would see it, with outputs and data under tmp_path."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = cfg.hydra.runtime.output_dir = str(tmp_path / "run")
        cfg.paths.data_dir = str(tmp_path / "data")
    HydraConfig.instance().set_config(cfg)
    return cfg

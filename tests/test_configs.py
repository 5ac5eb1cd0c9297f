"""Every config group option composes, and the composed objects can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose("train", overrides=overrides, return_hydra_config=True)


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiment_configs_compose(experiment):
    cfg = _compose([f"experiment={experiment}"])
    assert cfg.model._target_.startswith("ecglit.models.")
    assert cfg.module._target_ == "ecglit.models.ecg_module.ECGClassifier"


@pytest.mark.parametrize("group", ["logger", "callbacks", "trainer", "debug"])
def test_group_options_compose(group):
    for option in _options(group):
        _compose([f"{group}={option}"])


def test_default_is_synthetic_small_resnet_with_offline_wandb(monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = _compose([])
    assert cfg.data._target_ == "ecglit.data.synthetic_datamodule.SyntheticDataModule"
    assert cfg.model._target_ == "ecglit.models.resnet.ResNet1d"
    assert cfg.logger.wandb.mode == "offline"  # no account needed, nothing sent
    monkeypatch.setenv("WANDB_MODE", "online")
    assert _compose([]).logger.wandb.mode == "online"
    assert cfg.callbacks.model_checkpoint.save_last is True
    assert cfg.callbacks.early_stopping.patience == 9

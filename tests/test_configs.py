"""Every config group option composes, and the composed objects can be built."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

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


def _leaves(node, prefix=()):
    """(path, value) of every leaf of a plain YAML mapping (the defaults list left out)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k != "defaults":
                yield from _leaves(v, (*prefix, k))
    else:
        yield prefix, node


@pytest.mark.parametrize("group", ["logger", "callbacks", "trainer", "debug", "augment", "test_sets", "data",
                                   "model"])
def test_group_options_compose_to_their_files(group):
    # every value written in an option's YAML file ends up at its place in the composed config
    for option in _options(group):
        text = (CONF / group / f"{option}.yaml").read_text()
        raw = OmegaConf.to_container(OmegaConf.create(text), resolve=False) or {}
        package = next((line.split("@package", 1)[1].strip() for line in text.splitlines() if "@package" in line),
                       group)
        base = () if package == "_global_" else tuple(package.split("."))
        cfg = OmegaConf.to_container(_compose([f"{group}={option}"]), resolve=False)
        leaves = list(_leaves(raw))
        for path, value in leaves:
            node = cfg
            for key in (*base, *path):
                assert isinstance(node, dict) and key in node, f"{group}={option}: {'.'.join((*base, *path))} missing"
                node = node[key]
            assert node == value, f"{group}={option}: {'.'.join((*base, *path))} is {node!r}, file says {value!r}"


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

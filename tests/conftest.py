"""Test-wide settings: W&B off unless a test asks for it, and its files kept out of $HOME and the repo."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


def pytest_configure(config: pytest.Config) -> None:
    # Tests compose the configs with Hydra's API, as the programs do: the structured configs they use
    # must be in Hydra's ConfigStore (the programs register them in ecglit.utils.cli.run_hydra_program).
    from ecglit.configs import register_configs

    register_configs()


@pytest.fixture(autouse=True, scope="session")
def _isolated_wandb(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("wandb-home")
    env = {
        "WANDB_MODE": "disabled",
        "WANDB_SILENT": "true",
        "WANDB_DIR": str(home),
        "WANDB_CACHE_DIR": str(home / "cache"),
        "WANDB_CONFIG_DIR": str(home / "config"),
        "WANDB_DATA_DIR": str(home / "data"),
        "WANDB_START_METHOD": "thread",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"reference material not found at {SHARED} (the ../shared folder beside the repository)")
    return SHARED


@pytest.fixture(scope="session")
def realdata(shared_dir: Path) -> Path:
    """The real records of ../shared/realdata (skips when absent)."""
    root = shared_dir / "realdata"
    if not (root / "labels.csv").is_file():
        pytest.skip(f"real records not found at {root}")
    return root


@pytest.fixture(scope="session")
def expected(realdata: Path) -> dict[str, dict[str, str]]:
    """labels.csv rows keyed by the signal path without extension (unique, unlike record names)."""
    with open(realdata / "labels.csv") as f:
        return {r["signal"].split(" ")[0].rsplit(".", 1)[0]: r for r in csv.DictReader(f)}

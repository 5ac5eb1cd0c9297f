"""One W&B group per Hydra multirun, so the jobs of a sweep sit together in the W&B UI.

Each job of a multirun already gets its own W&B run: ``ecglit.training.train`` calls ``wandb.finish()``
after every job (pitfall 1 of ../shared/design/lightning-hydra.md). This module only names them.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

MAX_NAME = 120  # W&B shows long names truncated anyway


def sweep_group_name(task_name: str, sweep_dir: str | Path) -> str:
    """``<task_name>-<sweep dir name>``, e.g. ``ablate_kernel-2026-05-01_12-00-00``."""
    return f"{task_name}-{Path(sweep_dir).name}"


def apply_sweep_wandb_group(cfg: DictConfig) -> bool:
    """In a Hydra multirun, set ``logger.wandb.group`` to the sweep and name the run after the job.

    Leaves a group chosen by the user alone (anything but the default ``${task_name}``), and does
    nothing outside a multirun (single runs, ``wandb agent`` runs) or without a W&B logger.
    Returns whether the config was changed.
    """
    if not HydraConfig.initialized():
        return False
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode != RunMode.MULTIRUN:
        return False
    wandb_cfg = (cfg.get("logger") or {}).get("wandb")
    if not wandb_cfg:
        return False
    task_name = str(cfg.get("task_name", "train"))
    with open_dict(wandb_cfg):
        if wandb_cfg.get("group") in (None, task_name):
            wandb_cfg.group = sweep_group_name(task_name, hydra_cfg.sweep.dir)
        if wandb_cfg.get("name") is None:
            job_num = OmegaConf.select(hydra_cfg, "job.num", default=0, throw_on_missing=False)
            wandb_cfg.name = run_name(job_num, list(hydra_cfg.overrides.task))
    return True


def run_name(job_num: int, overrides: list[str]) -> str:
    """``<job number>:<overrides>`` without path-valued overrides (data dirs say nothing about the run)."""
    shown = [o for o in overrides if "/" not in o.partition("=")[2]]
    return f"{job_num}:{','.join(shown)}"[:MAX_NAME] if shown else str(job_num)

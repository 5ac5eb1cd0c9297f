"""Evaluate a model: `python evaluate.py report=ribeiro2020` (the paper's Table 2), `ckpt_path=... data=...`
(a checkpoint on a dataset) or `report.predictions=[...] report.labels=...` (prediction files)."""

import hydra
from omegaconf import DictConfig

from ecglit.evaluation.task import evaluate
from ecglit.utils.cli import exit_on_user_error


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
@exit_on_user_error("evaluate.py")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()

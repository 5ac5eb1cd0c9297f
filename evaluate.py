"""Evaluate a model: `python evaluate.py report=ribeiro2020` (the paper's Table 2), `ckpt_path=... data=...`
(a checkpoint on a dataset) or `report.predictions=[...] report.labels=...` (prediction files)."""

import sys

import hydra
from omegaconf import DictConfig

from ecglit.errors import EcglitError
from ecglit.evaluation.task import evaluate


@hydra.main(version_base="1.3", config_path="conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    try:
        evaluate(cfg)
    except EcglitError as err:  # bad input or config: the message names the file/setting and the cause
        sys.exit(f"evaluate.py: {type(err).__name__}: {err}")


if __name__ == "__main__":
    main()

"""Train an ECG classifier: `python train.py model=resnet_small` (see README for more)."""

import hydra
from omegaconf import DictConfig

from ecglit.training import metric_value, train
from ecglit.utils.cli import exit_on_user_error


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
@exit_on_user_error("train.py")
def main(cfg: DictConfig) -> float | None:
    result = train(cfg)
    return metric_value(result["metrics"], cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()

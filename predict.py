"""Predict with a trained classifier: `python predict.py ckpt=PATH input=PATH output=FILE.csv [plot=true]`.

`input` is a shard folder, a CODE-test HDF5 or a folder of ECG records (converted on the fly); see
conf/predict.yaml.
"""

import hydra
from omegaconf import DictConfig

from ecglit.inference.task import run_prediction
from ecglit.utils.cli import exit_on_user_error


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
@exit_on_user_error("predict.py")
def main(cfg: DictConfig) -> None:
    n = run_prediction(cfg)
    print(f"{n} prediction(s) written to {cfg.output}")


if __name__ == "__main__":
    main()

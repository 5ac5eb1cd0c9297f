"""Predict with a trained classifier: `python predict.py ckpt=PATH input=PATH output=FILE.csv [plot=true]`.

`input` is a shard folder, a CODE-test HDF5 or a folder of ECG records (converted on the fly); see
conf/predict.yaml.
"""

import logging
import sys

import hydra
from omegaconf import DictConfig

from ecglit.errors import EcglitError
from ecglit.inference.task import run_prediction

log = logging.getLogger("predict")


@hydra.main(version_base="1.3", config_path="conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    try:
        n = run_prediction(cfg)
    except EcglitError as e:  # a message for the user, not a traceback
        log.error("%s", e)
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"{n} prediction(s) written to {cfg.output}")


if __name__ == "__main__":
    main()

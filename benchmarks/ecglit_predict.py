"""The ecglit side of the inference benchmark: predict.py's path (Predictor + shard source + CSV writer)
with predict.py's default settings (conf/predict.yaml) unless overridden, timed per batch.

    python benchmarks/ecglit_predict.py CKPT DIR OUT.csv --exams 512 [--backend B] [--precision P]

After timing it predicts the first ``--check`` exams again with the eager float32 backend and reports
the largest probability difference and the share of exams whose six labels all agree.
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import replace

import numpy as np
import torch
from common import REPO, report
from omegaconf import OmegaConf

from ecglit.inference.predictor import Predictor
from ecglit.data.sources import open_source
from ecglit.inference.task import write_predictions


def main() -> None:
    defaults = OmegaConf.load(REPO / "conf" / "predict.yaml")
    p = argparse.ArgumentParser()
    p.add_argument("ckpt"), p.add_argument("root"), p.add_argument("out")
    p.add_argument("--exams", type=int, default=512)
    p.add_argument("--backend", default=str(defaults.backend))
    p.add_argument("--precision", default=str(defaults.precision))
    p.add_argument("--batch-size", type=int, default=int(defaults.batch_size))
    p.add_argument("--check", type=int, default=128)
    a = p.parse_args()

    start = time.perf_counter()
    predictor = Predictor.from_checkpoint(a.ckpt, batch_size=a.batch_size, device="cpu", precision=a.precision,
                                          backend=a.backend)
    source = open_source(a.root, a.batch_size)
    n_batches = -(-a.exams // a.batch_size)
    limited = replace(source, total=n_batches * a.batch_size,
                      batches=lambda: itertools.islice(source.batches(), n_batches))
    stamps = [time.perf_counter()]
    predict_batch = predictor.predict_batch

    def timed(x):
        probs = predict_batch(x)
        stamps.append(time.perf_counter())
        return probs

    predictor.predict_batch = timed
    n = write_predictions(predictor, limited, a.out, progress=False)
    wall = time.perf_counter() - start

    # accuracy of this path against eager float32 on the first exams (not timed)
    x = np.concatenate([b.x for b in itertools.islice(source.batches(), -(-a.check // a.batch_size))])[:a.check]
    fast = predict_batch(x)
    reference = Predictor.from_checkpoint(a.ckpt, batch_size=a.batch_size, device="cpu", precision="32",
                                          backend="eager")
    exact = reference.predict_batch(x)
    same_labels = (predictor.labels(fast) == reference.labels(exact)).all(axis=1)
    report({"stamps": stamps, "batch_size": a.batch_size, "exams": n, "backend": a.backend,
            "precision": a.precision, "resolved": type(predictor.backend).__name__,
            "resolved_precision": getattr(predictor.backend, "precision", None),
            "wall_s_including_load_and_compile": wall, "torch_threads": torch.get_num_threads(),
            "check_exams": len(x), "max_abs_prob_diff": float(np.abs(fast - exact).max()),
            "label_agreement": float(same_labels.mean())})


if __name__ == "__main__":
    main()

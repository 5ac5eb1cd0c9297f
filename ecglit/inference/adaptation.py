"""Label-free adaptation of a classifier to a population: its BatchNorm statistics re-estimated on exams
read from disk (:func:`ecglit.models.batchnorm.adapt_batchnorm`, AdaBN).

One path for every entry point: ``predict.py adapt_batchnorm=true`` (on the exams it predicts, or on
``adapt_on``), ``python -m ecglit.calibrate adapt_batchnorm=true`` (on the calibration set) and extra test
sets with ``adapt_batchnorm: true`` (each on its own exams, ``train.py``/``evaluate.py``). Measured on
the real records of ../shared with the shipped synthetic model (docs/transfer-realdata.md): adapting on a
few dozen exams or more that mix the abnormalities the way the data to predict does raises ranking and F1
at the shipped thresholds, and statistics from other databases' exams carry to a new one; adapting on a
set of one kind of exam (a single database dominated by one abnormality) moves the statistics towards that
abnormality and hurts.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ecglit.errors import ConfigError, DataError
from ecglit.inference.predictor import Predictor, network_input
from ecglit.models.batchnorm import adapt_batchnorm, batchnorm_layers

log = logging.getLogger(__name__)
# Below this many exams the statistics are noisy. The shipped model adapted on random mixes of the real
# records of ../shared and predicting them at its thresholds, macro F1 / AUROC: 16 exams 0.67 / 0.958,
# 32 0.69 / 0.959, 64 0.69 / 0.961, all 252 0.69 / 0.964 (zero-shot 0.66 / 0.956; docs/synthetic-vs-real.md).
MIN_ADAPTATION_EXAMS = 32


def adapt_to_exams(net: nn.Module, batches: Callable[[], Iterable[np.ndarray]], input_scale: float,
                   batch_size: int, where: str | Path | None = None, device: str | torch.device = "cpu") -> int:
    """Re-estimate the BatchNorm statistics of ``net`` on the exams that ``batches()`` yields (stored layout,
    (B, 4096, 12) in 1e-4 V; called twice, for the two passes), re-batched to ``batch_size``. Exams with a
    non-finite sample are left out. Returns the number of exams used; ``where`` names the input in errors.
    """
    if not batchnorm_layers(net):
        raise ConfigError(f"adapt_batchnorm=true: the network ({type(net).__name__}) has no BatchNorm layer "
                          "(a GroupNorm network normalises each exam by itself already)")

    finite = 0

    def chunks() -> Iterator[torch.Tensor]:
        nonlocal finite
        pending: list[np.ndarray] = []
        for x in batches():
            x = np.asarray(x, np.float32)
            x = x[np.isfinite(x).all(axis=(1, 2))]
            finite += len(x)
            pending.extend(x)
            while len(pending) >= batch_size:
                yield network_input(np.stack(pending[:batch_size]), input_scale).to(device)
                pending = pending[batch_size:]
        if pending:
            yield network_input(np.stack(pending), input_scale).to(device)

    try:
        n = adapt_batchnorm(net, chunks)
    except DataError as err:
        if finite or err.path is not None:  # the reader's own error, which names its file
            raise
        raise DataError(where, "no readable exam to adapt the BatchNorm statistics on") from None
    if n < MIN_ADAPTATION_EXAMS:
        log.warning("BatchNorm statistics re-estimated on only %d exams of %s: below %d they are noisy and "
                    "can make the model worse", n, where, MIN_ADAPTATION_EXAMS)
    return n


def adapted_predictor(predictor: Predictor, batches: Callable[[], Iterable[np.ndarray]],
                      where: str | Path | None = None) -> tuple[Predictor, int]:
    """A copy of ``predictor`` (same thresholds, settings and backend) whose model's BatchNorm statistics are
    re-estimated on ``batches`` (as :func:`adapt_to_exams`), and the number of exams used; ``predictor`` is
    left as it was."""
    model = copy.deepcopy(predictor.model)
    n = adapt_to_exams(model, batches, predictor.input_scale, predictor.batch_size, where, predictor.device)
    adapted = Predictor(model, predictor.thresholds, predictor.class_names, predictor.input_scale,
                        predictor.batch_size, predictor.device, predictor.precision, predictor.backend_name)
    adapted.label_definitions, adapted.threshold_source = predictor.label_definitions, predictor.threshold_source
    return adapted, n

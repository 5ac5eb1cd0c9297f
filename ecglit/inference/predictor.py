"""Batched prediction with a trained classifier, streaming: batches in, probabilities out.

Input batches are in the stored layout, ``(B, 4096, 12)`` float32 in 1e-4 V (what shards and the
importers hold); the Predictor transposes them to (B, 12, 4096), applies the checkpoint's
``input_scale`` and runs the backend. Nothing is accumulated unless you ask for it
(:meth:`predict_arrays`), so memory does not grow with the input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ecglit.constants import CLASSES, LEADS, N_SAMPLES
from ecglit.errors import ConfigError, DataError
from ecglit.inference.backends import make_backend
from ecglit.models.checkpoint import load_classifier

# Why an exam has no prediction row when the network's output for it is not a number.
NON_FINITE_OUTPUT = ("the model's output for this exam is NaN or infinite (tracing values too large for "
                     "float32?); no probability written")


def resolve_device(device: str | torch.device | None) -> torch.device:
    """"auto" (or None): CUDA when available, else CPU; otherwise the named device."""
    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {device!r} ({err})") from None


def network_input(x: np.ndarray | torch.Tensor, input_scale: float) -> torch.Tensor:
    """Stored-layout tracings (B, 4096, 12) -> the network input (B, 12, 4096) float32 times ``input_scale``."""
    return torch.as_tensor(np.asarray(x, dtype=np.float32)).transpose(1, 2).contiguous() * input_scale


class Predictor:
    """Probabilities and thresholded labels for batches of exams.

    Args:
        model: a network or ECGClassifier giving logits (B, C) for (B, 12, 4096).
        thresholds: per-class decision thresholds (label = prob >= threshold).
        class_names: output classes in order.
        input_scale: factor applied to the stored values (the scale the model was trained with).
        batch_size: largest batch sent to the backend (bigger input batches are split).
        device: "auto", "cpu", "cuda", ...; precision: "32", "bf16", "16"; backend: see backends.py.
    """

    def __init__(self, model: nn.Module, thresholds: Sequence[float] | torch.Tensor,
                 class_names: Sequence[str] = CLASSES, input_scale: float = 1.0, batch_size: int = 64,
                 device: str | torch.device = "auto", precision: str = "32", backend: str = "eager") -> None:
        if batch_size <= 0:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        self.class_names = list(class_names)
        self.thresholds = np.asarray(torch.as_tensor(thresholds, dtype=torch.float32).cpu(), np.float32)
        if self.thresholds.shape != (len(self.class_names),):
            raise ConfigError(f"{len(self.thresholds)} thresholds for {len(self.class_names)} classes")
        self.input_scale = float(input_scale)
        self.batch_size = int(batch_size)
        self.label_definitions: dict | None = None  # what the labels mean (set from a checkpoint)
        self.threshold_source: str | None = None
        self.device = resolve_device(device)
        self.precision, self.backend_name = str(precision), backend
        self.model = model  # what the backend runs (kept for label-free adaptation: inference/adaptation.py)
        self.backend = make_backend(backend, model, self.device, self.precision, self.batch_size)

    @classmethod
    def from_module(cls, module: Any, **kwargs: Any) -> Predictor:
        """From an ECGClassifier: its thresholds buffer, class names, ``input_scale`` and label definitions."""
        hparams = getattr(module, "hparams", {}) or {}
        kwargs.setdefault("input_scale", float(hparams.get("input_scale", 1.0)))
        kwargs.setdefault("class_names", list(hparams.get("class_names", CLASSES)))
        predictor = cls(module, module.thresholds, **kwargs)
        predictor.label_definitions = hparams.get("label_definitions")
        predictor.threshold_source = hparams.get("threshold_source")
        return predictor

    @classmethod
    def from_checkpoint(cls, path: str | Path, **kwargs: Any) -> Predictor:
        """From a checkpoint, a Keras file or a shipped model's name (:func:`ecglit.models.checkpoint.load_classifier`).

        ``input_scale`` in ``kwargs`` overrides the checkpoint's (needed for a Keras file, which records none).
        """
        return cls.from_module(load_classifier(path, map_location="cpu", input_scale=kwargs.get("input_scale")),
                               **kwargs)

    @property
    def columns(self) -> list[str]:
        return [f"prob_{c}" for c in self.class_names] + [f"label_{c}" for c in self.class_names]

    def predict_batch(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """(B, 4096, 12) stored-layout tracings -> (B, C) float32 probabilities."""
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim != 3 or tuple(x.shape[1:]) != (N_SAMPLES, len(LEADS)):
            raise DataError(None, f"batch has shape {tuple(x.shape)}, expected (B, {N_SAMPLES}, "
                                  f"{len(LEADS)})")
        out = []
        for start in range(0, len(x), self.batch_size):
            chunk = network_input(x[start:start + self.batch_size], self.input_scale)
            out.append(torch.sigmoid(self.backend(chunk)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, len(self.class_names)), np.float32)

    def predict_finite(self, x: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(probs (B, C), scored (B,) bool)``: an exam is scored when all its probabilities are finite.

        Callers leave the others out and list them (:data:`NON_FINITE_OUTPUT`): a NaN is never a prediction.
        """
        probs = self.predict_batch(x)
        return probs, np.isfinite(probs).all(axis=1)

    def labels(self, probs: np.ndarray) -> np.ndarray:
        """Thresholded 0/1 labels (prob >= the class's threshold)."""
        return (probs >= self.thresholds).astype(np.int64)

    def iter_predict(self, batches: Iterable[tuple[Sequence[Any], np.ndarray]]
                     ) -> Iterator[tuple[list[Any], np.ndarray]]:
        """Stream ``(ids, x)`` batches to ``(ids, probs)``."""
        for ids, x in batches:
            ids = list(ids)
            if len(ids) != len(x):
                raise DataError(None, f"{len(ids)} ids for a batch of {len(x)} tracings")
            yield ids, self.predict_batch(x)

    def predict_arrays(self, batches: Iterable[tuple[Sequence[Any], np.ndarray]]
                       ) -> tuple[list[Any], np.ndarray]:
        """All ``(ids, x)`` batches -> (ids, probs (N, C)); accumulates the (small) outputs only."""
        all_ids: list[Any] = []
        probs: list[np.ndarray] = []
        for ids, p in self.iter_predict(batches):
            all_ids.extend(ids)
            probs.append(p)
        return all_ids, (np.concatenate(probs) if probs else np.zeros((0, len(self.class_names)), np.float32))

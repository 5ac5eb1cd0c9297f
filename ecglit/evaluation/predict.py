"""Mode (a) of evaluate.py: load a trained ECGClassifier and predict probabilities on a dataset."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from ecglit.errors import DataError

log = logging.getLogger(__name__)


def load_classifier(ckpt_path: str | Path, map_location: str = "cpu"):  # -> ECGClassifier
    """ECGClassifier from a Lightning checkpoint (weights_only load: the hparams are plain data)."""
    from ecglit.models.ecg_module import ECGClassifier  # heavy import, only needed in this mode

    path = Path(ckpt_path)
    if not path.is_file():
        raise DataError(path, "checkpoint not found")
    try:
        module = ECGClassifier.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    except (RuntimeError, KeyError, EOFError, OSError, TypeError, ValueError, pickle.UnpicklingError) as err:
        raise DataError(path, f"not a loadable ECGClassifier checkpoint ({type(err).__name__}: {err})") from err
    return module.eval()


def resolve_device(device: str | None) -> torch.device:
    """"auto" (or None): CUDA when available, else CPU; otherwise the named device."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@torch.inference_mode()
def predict_probabilities(
    module: torch.nn.Module, loader: DataLoader, device: str | torch.device | None = "auto"
) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid outputs (N, C) float32 and the dataset's labels (N, C) float32, in loader order.

    Labels are NaN where the dataset has none (e.g. CODE-test without a label CSV).
    """
    device = resolve_device(device) if not isinstance(device, torch.device) else device
    module = module.to(device).eval()
    probs, labels = [], []
    for x, y in loader:
        probs.append(torch.sigmoid(module(x.to(device))).float().cpu())
        labels.append(torch.as_tensor(y).float())
    if not probs:
        raise DataError(None, "the dataset to evaluate is empty")
    return torch.cat(probs).numpy(), torch.cat(labels).numpy()


def labels_to_int(labels: np.ndarray, source: str) -> np.ndarray:
    """The dataset's float labels as int 0/1; a clear error if any are missing or not 0/1."""
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DataError(source, f"labels {labels[row].tolist()} are missing or not 0/1 (give report.labels=CSV "
                                "for a test set without labels)", record=f"exam {row}")
    return labels.astype(np.int64)

"""On-the-fly torch Dataset of synthetic exams: item i is generated when asked, identically every time."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ecglit.data.synthetic.config import SyntheticConfig
from ecglit.data.synthetic.generator import generate_batch, generate_exam
from ecglit.errors import ConfigError


class SyntheticECGDataset(Dataset):
    """``n`` synthetic exams of dataset ``seed``; holds no signals, only the configuration.

    Items follow the ecglit contract: ``(x, y)`` with x float32 (12, 4096) (the stored (4096, 12)
    transposed, times ``input_scale``) and y float32 (6,) in CLASSES order (the labels trained on,
    noisy when label noise is configured). DataLoader workers each generate their own items; with
    ``__getitems__`` a whole batch is rendered at once.
    """

    def __init__(self, n: int, seed: int, config: SyntheticConfig | None = None, input_scale: float = 1.0) -> None:
        for name, value in (("n", n), ("seed", seed)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if not isinstance(input_scale, (int, float)) or not np.isfinite(input_scale) or input_scale <= 0:
            raise ConfigError(f"input_scale must be a positive number, got {input_scale!r}")
        self.n, self.seed = int(n), int(seed)
        self.config = SyntheticConfig() if config is None else config
        self.input_scale = float(input_scale)

    def __len__(self) -> int:
        return self.n

    def _index(self, i: int) -> int:
        i = int(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for a synthetic dataset of {self.n} exams")
        return i

    def _item(self, signal: np.ndarray, labels: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(np.ascontiguousarray(signal.T))
        if self.input_scale != 1.0:
            x = x * self.input_scale
        return x, torch.from_numpy(labels.copy())

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        exam = generate_exam(self.seed, self._index(i), self.config)
        return self._item(exam.signal, exam.labels)

    def __getitems__(self, indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        signals, labels, _, _ = generate_batch(self.seed, [self._index(i) for i in indices], self.config)
        return [self._item(s, y) for s, y in zip(signals, labels)]

    def meta(self, i: int) -> dict[str, Any]:
        """What exam i realised (HR, PR, QRS, rhythm, conduction, clean labels, ...)."""
        return generate_exam(self.seed, self._index(i), self.config).meta

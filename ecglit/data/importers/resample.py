"""Resample to 400 Hz (polyphase filter) and fit to 4096 samples (centred zero padding or cropping).

CODE pads centred with ``(4096 - n) // 2`` zeros on the left (48 for a 10 s exam). Records longer than
4096 samples (10.24 s) are cut: by default the centre 4096 samples (``long_records="crop"``); with
``long_records="windows"`` every whole, non-overlapping 4096-sample window, centred as a block, so a
60 s record gives 5 exams of the same patient.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from ecglit.constants import N_SAMPLES, SAMPLE_RATE
from ecglit.errors import ConfigError

LONG_RECORD_MODES = ("crop", "windows")
_MAX_FACTOR = 1000  # up/down terms above this are approximated (e.g. an odd rate like 257.3 Hz)


def rational_factor(fs: float, target: float = SAMPLE_RATE) -> tuple[int, int]:
    """(up, down) with target / fs = up / down, exact when the terms stay small."""
    if not np.isfinite(fs) or fs <= 0:
        raise ConfigError(f"sampling rate must be positive, got {fs}")
    ratio = Fraction(Decimal(repr(float(target)))) / Fraction(Decimal(repr(float(fs))))
    if max(ratio.numerator, ratio.denominator) > _MAX_FACTOR:
        ratio = ratio.limit_denominator(_MAX_FACTOR)
    return ratio.numerator, ratio.denominator


def resample_to(signal: np.ndarray, fs: float, target: float = SAMPLE_RATE) -> np.ndarray:
    """Resample (n, leads) from ``fs`` to ``target`` Hz along time with scipy's polyphase filter.

    ``padtype="line"`` extends each lead linearly past its ends, so a baseline offset does not ring
    at the edges as it would against the default zero extension.
    """
    up, down = rational_factor(fs, target)
    if up == down:
        return np.asarray(signal, dtype=np.float64)
    return resample_poly(signal, up, down, axis=0, padtype="line")


def window_starts(n: int, length: int = N_SAMPLES, mode: str = "crop") -> list[int]:
    """Start of each ``length`` window of an ``n``-sample signal (n > length), centred as a block."""
    if mode not in LONG_RECORD_MODES:
        raise ConfigError(f"long_records must be one of {LONG_RECORD_MODES}, got {mode!r}")
    k = 1 if mode == "crop" else n // length
    first = (n - k * length) // 2
    return [first + i * length for i in range(k)]


def fit_length(signal: np.ndarray, length: int = N_SAMPLES, mode: str = "crop") -> list[np.ndarray]:
    """(n, leads) -> list of (length, leads): one centred zero-padded copy when n <= length, else the
    centre crop (``mode="crop"``) or every whole non-overlapping window (``mode="windows"``)."""
    n = signal.shape[0]
    if n <= length:
        out = np.zeros((length, signal.shape[1]), dtype=signal.dtype)
        left = (length - n) // 2
        out[left:left + n] = signal
        return [out]
    return [signal[s:s + length] for s in window_starts(n, length, mode)]

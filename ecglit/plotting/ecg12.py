"""The clinical 12-lead ECG printout: 25 mm/s, 10 mm/mV on pink millimetre paper.

Layout: 3 rows x 4 columns (I II III | aVR aVL aVF | V1 V2 V3 | V4 V5 V6), each column a quarter of
the record in time, plus a lead II rhythm strip over the whole record; 1 mV calibration pulses at the
start of each row. Works on exams in the CODE layout ((4096, 12) in 1e-4 V, zero-padded): the
padding is found and trimmed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from ecglit.constants import LEADS, SAMPLE_RATE, UNITS_PER_MV
from ecglit.errors import DataError
from ecglit.utils.io import atomic_path

MM_PER_S, MM_PER_MV = 25.0, 10.0
ROW_MM = 32.0          # vertical distance between row baselines
CAL_MM = 8.0           # room for the calibration pulse at the start of each row
LAYOUT = (("DI", "aVR", "V1", "V4"), ("DII", "aVL", "V2", "V5"), ("DIII", "aVF", "V3", "V6"))
LABELS = {"DI": "I", "DII": "II", "DIII": "III"}
MINOR, MAJOR, TRACE = "#f7c9c9", "#ec8f8f", "#111111"
RHYTHM_LEAD = "DII"


def record_window(signal: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the recorded samples: the zero padding on both sides is trimmed."""
    active = np.flatnonzero(np.any(signal != 0, axis=1))
    if len(active) == 0:
        return 0, signal.shape[0]
    return int(active[0]), int(active[-1]) + 1


def _grid(ax: Axes, width: float, height: float) -> None:
    for step, color, lw in ((1.0, MINOR, 0.3), (5.0, MAJOR, 0.6)):
        xs = np.arange(0.0, width + 1e-6, step)
        ys = np.arange(0.0, height + 1e-6, step)
        segs = [[(x, 0.0), (x, height)] for x in xs] + [[(0.0, y), (width, y)] for y in ys]
        ax.add_collection(LineCollection(segs, colors=color, linewidths=lw, zorder=0))


def _calibration(ax: Axes, y0: float) -> None:
    xs = [1.0, 2.0, 2.0, 7.0, 7.0, 8.0]  # 1 mV (10 mm) for 0.2 s (5 mm)
    ax.plot(xs, [y0, y0, y0 + MM_PER_MV, y0 + MM_PER_MV, y0, y0], color=TRACE, lw=0.8, zorder=3)


def plot_ecg12(signal: np.ndarray, title: str | None = None, path: str | Path | None = None,
               sample_rate: int = SAMPLE_RATE, ax: Axes | None = None, dpi: int = 100) -> Figure:
    """Draw a 12-lead exam ((n, 12) in 1e-4 V, leads in ecglit.constants.LEADS order).

    Args:
        title: text above the tracing (e.g. the labels).
        path: if given, the figure is saved there (PNG, ``dpi``) and closed.
        ax: draw into this axes instead of a new figure (for multi-exam figures).
    Returns the figure.
    """
    x = np.asarray(signal, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != len(LEADS):
        raise DataError(path, f"expected a (samples, {len(LEADS)}) signal, got shape {x.shape}")
    start, stop = record_window(x)
    mv = x[start:stop] / UNITS_PER_MV
    seconds = mv.shape[0] / sample_rate
    width = CAL_MM + seconds * MM_PER_S
    height = ROW_MM * 4.5
    if ax is None:
        # A bare Figure (no pyplot): no global state, no GUI backend, nothing to close.
        fig = Figure(figsize=(width / 25.4 * 1.05, height / 25.4 * 1.05 + (0.3 if title else 0.0)))
        ax = fig.add_axes((0.01, 0.01, 0.98, 0.98 - (0.3 / fig.get_figheight() if title else 0.0)))
    fig = ax.figure
    _grid(ax, width, height)
    column_s = seconds / 4
    t = np.arange(mv.shape[0]) / sample_rate
    for row, names in enumerate(LAYOUT):
        y0 = height - ROW_MM * (row + 1)
        _calibration(ax, y0)
        for col, name in enumerate(names):
            sl = slice(round(col * column_s * sample_rate), round((col + 1) * column_s * sample_rate))
            k = LEADS.index(name)
            ax.plot(CAL_MM + t[sl] * MM_PER_S, y0 + mv[sl, k] * MM_PER_MV, color=TRACE, lw=0.6, zorder=2)
            x0 = CAL_MM + col * column_s * MM_PER_S
            ax.text(x0 + 1.0, y0 + 0.45 * ROW_MM, LABELS.get(name, name), fontsize=7, zorder=4,
                    fontweight="bold")
            if col:
                ax.plot([x0, x0], [y0 - 3, y0 + 3], color=TRACE, lw=0.8, zorder=3)
    y0 = ROW_MM * 0.5
    _calibration(ax, y0)
    k = LEADS.index(RHYTHM_LEAD)
    ax.plot(CAL_MM + t * MM_PER_S, y0 + mv[:, k] * MM_PER_MV, color=TRACE, lw=0.6, zorder=2)
    ax.text(CAL_MM + 1.0, y0 + 0.45 * ROW_MM, LABELS[RHYTHM_LEAD], fontsize=7, fontweight="bold", zorder=4)
    ax.text(width - 1.0, 1.5, "25 mm/s  10 mm/mV", fontsize=6, ha="right", va="bottom", zorder=4)
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9, loc="left", pad=3)
    if path is not None:
        save_png(fig, path, dpi=dpi)
    return fig


def save_png(fig: Figure, path: str | Path, dpi: int = 100, colors: int | None = 64) -> Path:
    """Save as PNG (optionally palette-quantised to keep files small), atomically, replacing ``path``
    (callers refuse existing files beforehand where they are the user's)."""
    path = Path(path)
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=dpi, facecolor="white")
        if colors:
            from PIL import Image

            with Image.open(tmp) as img:
                small = img.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT)
            small.save(tmp, optimize=True)
    return path


def plot_ecg12_grid(signals: Sequence[np.ndarray], titles: Sequence[str], path: str | Path, ncols: int = 2,
                    dpi: int = 80) -> Path:
    """Several exams in the 12-lead layout on one page (e.g. one per class), saved to ``path``."""
    nrows = int(np.ceil(len(signals) / ncols))
    panel_w, panel_h = (CAL_MM + 10 * MM_PER_S) / 25.4, ROW_MM * 4.5 / 25.4 + 0.35
    fig = Figure(figsize=(panel_w * ncols, panel_h * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(signals):]:
        ax.set_axis_off()
    for ax, sig, title in zip(axes.ravel(), signals, titles):
        plot_ecg12(sig, title=title, ax=ax)
    fig.subplots_adjust(left=0.005, right=0.995, top=0.97, bottom=0.005, wspace=0.02, hspace=0.12)
    return save_png(fig, path, dpi=dpi)

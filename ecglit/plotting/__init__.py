"""Plotting helpers: the clinical 12-lead printout (``plot_ecg12``)."""

from ecglit.plotting.ecg12 import plot_ecg12, plot_ecg12_grid, save_png

__all__ = ["plot_ecg12", "plot_ecg12_grid", "save_png"]

"""ecglit: Lightning + Hydra framework for deep learning on the 12-lead ECG (Ribeiro et al. 2020)."""

from ecglit.constants import CLASSES, LEADS, N_SAMPLES, SAMPLE_RATE

__all__ = ["CLASSES", "LEADS", "N_SAMPLES", "SAMPLE_RATE"]
__version__ = "0.1.0"

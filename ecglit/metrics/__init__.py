"""Multilabel classification metrics and threshold rules, shared by training, evaluation and calibration.

The lowest layer above the constants: it imports torch and torchmetrics only, so the LightningModule and
the evaluation code can both use it without importing each other.
"""

from ecglit.metrics.classification import METRICS, THRESHOLDED, classification_metrics, flatten_metrics
from ecglit.metrics.thresholds import select_thresholds

__all__ = ["METRICS", "THRESHOLDED", "classification_metrics", "flatten_metrics", "select_thresholds"]

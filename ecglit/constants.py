"""The CODE conventions every part of ecglit shares (see ../shared/design/datasets-and-models.md)."""

from __future__ import annotations

# The six non-exclusive abnormalities, in the network's output order.
CLASSES: tuple[str, ...] = ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")
# Lead order of the tracings' last axis.
LEADS: tuple[str, ...] = ("DI", "DII", "DIII", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
SAMPLE_RATE: int = 400  # Hz
N_SAMPLES: int = 4096  # samples per exam, records zero-padded symmetrically
UNITS_PER_MV: float = 10.0  # tracings are stored in 1e-4 V, so 1 mV = 10.0

# exams.csv columns of CODE-15% (Zenodo 4916206), in order.
CODE15_COLUMNS: tuple[str, ...] = (
    "exam_id", "age", "is_male", "nn_predicted_age", *CLASSES,
    "patient_id", "normal_ecg", "death", "timey", "trace_file",
)
# The thresholds the paper chose on its validation set (maximum F1 per class).
PAPER_THRESHOLDS: tuple[float, ...] = (0.124, 0.07, 0.05, 0.278, 0.390, 0.174)

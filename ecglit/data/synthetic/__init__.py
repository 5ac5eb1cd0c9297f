"""Physiological synthetic 12-lead ECGs in the CODE layout (ecglit's embedded default dataset).

Design: ../shared/design/synthetic-ecg.md. A 3-D heart vector built from Gaussian waves per beat is
projected with the Dower matrix; noise is generated per electrode; labels come from clinical rules
applied to what each exam realised. Exam ``i`` of ``seed`` is the same in every batch and process.

Public API: ``SyntheticConfig``, ``generate_exam``, ``generate_batch``, ``SyntheticExam``,
``SyntheticECGDataset``, ``materialize``.
"""

from typing import Any

from ecglit.data.synthetic.config import LABEL_DEFINITIONS, SyntheticConfig
from ecglit.data.synthetic.generator import SyntheticExam, generate_batch, generate_exam
from ecglit.data.synthetic.materialize import materialize

# Bump when the same (seed, index, config) would give a different exam, so caches are rebuilt.
# 2: PR/rate/QT fitted in one RR (no long PR on the previous T), LBBB extent = labelled QRS, T end = QT,
#    AF f-waves scaled by the exam gain, milder sinus tachycardia, taller P at fast rates, QRS loop
#    fitted to real per-exam lead amplitudes.
# 3: domain randomisation (per-exam heart-vector anisotropy and wider rotation, non-dipolar precordial
#    gains and electrode misplacement, beat-to-beat jitter and respiratory rotation, spread of QRS/T and
#    bundle-branch-block morphology), fine-to-coarse AF, atrial flutter and SVT as non-sinus negatives,
#    50 or 60 Hz mains, electrode-motion artefacts.
# 4: LBBB loop fitted to real LBBB lead amplitudes: a larger early posterior force (deep QS in V1-V3), a
#    lateral R half as tall, a frontal axis around +20 degrees, a taller anterior T and a flat lateral T.
# 5: the physionet label preset calls every right-bundle pattern RBBB (complete or incomplete, QRS from
#    80 ms, as CPSC/CinC label it), so its exams carry no label-negative incomplete RBBB (those exams
#    conduct normally instead). Exams under the code preset are those of version 4.
GENERATOR_VERSION = "5"

__all__ = ["GENERATOR_VERSION", "LABEL_DEFINITIONS", "SyntheticConfig", "SyntheticECGDataset", "SyntheticExam",
           "generate_batch", "generate_exam", "materialize"]


def __getattr__(name: str) -> Any:
    # The torch Dataset is imported on first use, so generating to disk does not pay for importing torch.
    if name == "SyntheticECGDataset":
        from ecglit.data.synthetic.dataset import SyntheticECGDataset

        return SyntheticECGDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

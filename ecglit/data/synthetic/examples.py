"""Showcase exams: one clearly typical exam per class (plus a normal one), e.g. for the README figure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ecglit.constants import CLASSES
from ecglit.data.synthetic.config import SyntheticConfig
from ecglit.data.synthetic.generator import SyntheticExam, generate_exam

NAMES = {"1dAVb": "1st-degree AV block", "RBBB": "Right bundle-branch block",
         "LBBB": "Left bundle-branch block", "SB": "Sinus bradycardia", "AF": "Atrial fibrillation",
         "ST": "Sinus tachycardia", "normal": "Normal sinus rhythm"}


def showcase_config(cls: str, base: SyntheticConfig | None = None) -> SyntheticConfig:
    """``base`` with only ``cls`` present (or none, for "normal"), no distractors, and little noise."""
    base = SyntheticConfig() if base is None else base
    prevalence = {c: float(c == cls) for c in CLASSES}
    lo, hi = base.noise_level_range
    return replace(base, prevalence=prevalence, borderline_fraction=0.0, ectopy_rate=0.0, irbbb_fraction=0.0,
                   ilbbb_fraction=0.0, ivcd_fraction=0.0, sinus_arrhythmia_fraction=0.0, low_p_fraction=0.0,
                   flutter_fraction=0.0, svt_fraction=0.0, paced_fraction=0.0, motion_artifact_rate=0.0,
                   p_fn=0.0, p_fp=0.0, noise_level_range=(min(lo, 0.1), min(hi, 0.3)))


def showcase_exams(seed: int = 0, base: SyntheticConfig | None = None, max_tries: int = 50
                   ) -> list[tuple[str, SyntheticExam]]:
    """[(class or "normal", exam)]: the first exam of ``seed`` under :func:`showcase_config` whose clean
    labels are exactly that class and which was recorded for 10 s (AF: at a moderate rate)."""
    out = []
    for k, cls in enumerate((*CLASSES, "normal")):
        cfg = showcase_config(cls, base)
        for i in range(10 * k, 10 * k + max_tries):  # different start per class: varied patients
            exam = generate_exam(seed, i, cfg)
            positives = [c for c, v in zip(CLASSES, exam.clean_labels) if v]
            readable = cls != "AF" or 60 <= exam.meta["hr_bpm"] <= 110  # irregularity and f-waves visible
            readable = readable and -30.0 <= frontal_axis_deg(exam) <= 75.0  # a textbook frontal axis
            if positives == ([] if cls == "normal" else [cls]) and exam.meta["record_seconds"] == 10.0 and readable:
                out.append((cls, exam))
                break
        else:
            out.append((cls, exam))  # rare: keep the last one tried
    return out


def frontal_axis_deg(exam: SyntheticExam) -> float:
    """Frontal QRS axis (degrees) from the net QRS areas in I and aVF, summed over the beats."""
    width = max(1, round(exam.meta["qrs_ms"] * 0.4))  # samples at 400 Hz
    area_i = area_avf = 0.0
    for onset in exam.meta["qrs_onset_samples"]:
        qrs = exam.signal[onset:onset + width]
        area_i, area_avf = area_i + float(qrs[:, 0].sum()), area_avf + float(qrs[:, 5].sum())
    return float(np.degrees(np.arctan2(area_avf, area_i)))


def describe(cls: str, exam: SyntheticExam) -> str:
    m = exam.meta
    pr = "" if m["pr_ms"] != m["pr_ms"] else f", PR {m['pr_ms']:.0f} ms"
    return f"{NAMES[cls]} ({cls}): HR {m['hr_bpm']:.0f} bpm{pr}, QRS {m['qrs_ms']:.0f} ms"

"""Public generation entry points: one exam, or a batch of exams rendered together.

Exam ``index`` of ``seed`` depends only on (seed, index, config): every random number comes from
generators seeded with ``[seed, index, stream]`` (stream 0 morphology/rhythm, 1 label noise,
2 signal noise), never from shared state. ``generate_exam`` is ``generate_batch`` of one index, and
the batched rendering is elementwise per exam, so the two give bit-identical exams.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecglit.constants import CLASSES, N_SAMPLES, SAMPLE_RATE, UNITS_PER_MV
from ecglit.data.synthetic.afwaves import PRECORDIAL_F_GAIN, f_waves, flutter_waves
from ecglit.data.synthetic.config import SyntheticConfig
from ecglit.data.synthetic.labels import clinical_labels, heart_rate_bpm, noisy_labels
from ecglit.data.synthetic.morphology import Waves, beat_waves, r_peak_offset_s
from ecglit.data.synthetic.noise import NoisePlan, draw_noise_plan, render_noise
from ecglit.data.synthetic.render import DOWER, assemble, project, render_vcg
from ecglit.data.synthetic.rhythm import KIND_PAC, KIND_PVC, KIND_SINUS, beat_train
from ecglit.data.synthetic.sampling import AF, FLUTTER, qt_ms, sample_params
from ecglit.errors import ConfigError

MORPHOLOGY_STREAM, NOISE_STREAM = 0, 2
_BLAS_CONTROLLER: Any = None


@dataclass
class SyntheticExam:
    """One generated exam in the CODE layout.

    signal: (4096, 12) float32 in 1e-4 V (1 mV = 10.0), zero-padded symmetrically.
    labels: (6,) float32 in CLASSES order, as trained on (with label noise when configured).
    clean_labels: (6,) float32, the rule-based ground truth.
    meta: what was realised (hr_bpm, pr_ms, qrs_ms, rhythm, conduction, r_peak_samples, ...).
    """

    signal: np.ndarray
    labels: np.ndarray
    clean_labels: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Plan:
    waves: Waves
    pad: int
    length: int
    noise: NoisePlan
    af_leads: np.ndarray | None  # (8, length) float32 in 1e-4 V
    lead_mix: np.ndarray  # (8, 8) float32: precordial gains and electrode misplacement
    labels: np.ndarray
    clean_labels: np.ndarray
    meta: dict[str, Any]


def _check_seed_index(seed: int, index: int) -> None:
    for name, value in (("seed", seed), ("index", index)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")


def _plan_exam(seed: int, index: int, cfg: SyntheticConfig) -> _Plan:
    _check_seed_index(seed, index)
    rng = np.random.default_rng([int(seed), int(index), MORPHOLOGY_STREAM])
    p = sample_params(rng, cfg)
    train = beat_train(rng, p, r_peak_offset_s(p, KIND_SINUS))
    waves = beat_waves(rng, p, train)
    length = round(p.record_seconds * SAMPLE_RATE)
    pad = (N_SAMPLES - length) // 2
    af_leads = None
    t = np.arange(length) / SAMPLE_RATE
    vcg_f = None
    if p.rhythm == AF:
        vcg_f = f_waves(rng, p.af_f0_hz, p.af_amp_mv, t)
    elif p.rhythm == FLUTTER:
        vcg_f = flutter_waves(rng, p.flutter_hz, p.af_amp_mv, t, float(train.onsets[0]))
    if vcg_f is not None:
        gains = np.concatenate([[1.0, 1.0], PRECORDIAL_F_GAIN]) * UNITS_PER_MV
        af_leads = (DOWER * (gains * p.gain)[:, None]).astype(np.float32) @ vcg_f  # body habitus too
    lead_mix = np.eye(8, dtype=np.float32)
    if p.precordial_mix is not None:
        lead_mix[2:, 2:] = p.precordial_mix
    noise = draw_noise_plan(np.random.default_rng([int(seed), int(index), NOISE_STREAM]), p.noise_level, p.resp_hz,
                            p.motion)

    r_peaks = train.onsets + np.array([r_peak_offset_s(p, k) for k in train.kinds])
    # Inside the window = on one of its samples once rounded (an R peak in the last half sample is not).
    window_s = (length - 0.5) / SAMPLE_RATE
    in_window = (r_peaks >= 0.0) & (r_peaks < window_s)
    hr = heart_rate_bpm(r_peaks, train.kinds, window_s)
    clean = clinical_labels(p.rhythm, hr, p.pr_ms, p.qrs_ms, p.ventricular_conduction, cfg)
    labels = noisy_labels(clean, int(seed), int(index), cfg)
    kinds = train.kinds[in_window]
    meta = {
        "seed": int(seed), "index": int(index),
        "hr_bpm": hr, "rate_target_bpm": p.rate_bpm, "pr_ms": p.pr_ms, "qrs_ms": p.qrs_ms,
        "qt_ms": qt_ms(p.rate_bpm, p.qtc_ms, p.qrs_ms), "qtc_ms": p.qtc_ms,
        "rhythm": p.rhythm, "av_conduction": p.av_conduction, "ventricular_conduction": p.ventricular_conduction,
        "record_seconds": p.record_seconds, "pad_left": pad, "noise_level": p.noise_level, "gain": p.gain,
        "p_amp_mv": p.p_amp if p.rhythm != AF else float("nan"), "t_amp_mv": p.t_amp,
        "af_f0_hz": p.af_f0_hz, "af_amp_mv": p.af_amp_mv, "flutter_hz": p.flutter_hz,
        "conduction_ratio": p.conduction_ratio, "motion_artifact": p.motion is not None,
        "has_pac": bool((kinds == KIND_PAC).any()), "has_pvc": bool((kinds == KIND_PVC).any()),
        "n_beats": int(in_window.sum()),
        "r_peak_samples": (np.rint(r_peaks[in_window] * SAMPLE_RATE).astype(int) + pad).tolist(),
        "qrs_onset_samples": (np.rint(train.onsets[in_window] * SAMPLE_RATE).astype(int) + pad).tolist(),
        "beat_kinds": ["sinus" if k == 0 else ("pac" if k == KIND_PAC else "pvc") for k in kinds],
        "distractors": list(p.distractors),
        "clean_labels": {c: int(v) for c, v in zip(CLASSES, clean)},
    }
    return _Plan(waves, pad, length, noise, af_leads, lead_mix, labels, clean, meta)


def _single_threaded_blas() -> Any:
    """Context that keeps BLAS on one thread: the small per-exam matmuls lose badly to thread
    hand-offs on a busy machine, and parallelism comes from worker processes instead."""
    global _BLAS_CONTROLLER
    if _BLAS_CONTROLLER is None:
        try:
            from threadpoolctl import ThreadpoolController
            _BLAS_CONTROLLER = ThreadpoolController()
        except ImportError:  # optional: without it BLAS keeps its default threads (slower, same result)
            _BLAS_CONTROLLER = False
    if _BLAS_CONTROLLER is False:
        return contextlib.nullcontext()
    return _BLAS_CONTROLLER.limit(limits=1, user_api="blas")


def _render(plans: Sequence[_Plan]) -> np.ndarray:
    with _single_threaded_blas():
        return _render_unlimited(plans)


def _render_unlimited(plans: Sequence[_Plan]) -> np.ndarray:
    pads = [p.pad for p in plans]
    lengths = [p.length for p in plans]
    leads = project(render_vcg([p.waves for p in plans], pads))
    for b, p in enumerate(plans):
        if p.af_leads is not None:
            leads[b, :, p.pad:p.pad + p.length] += p.af_leads
    # Non-dipolar precordial gains and electrode placement, per exam (a matmul of fixed per-exam shape).
    leads = np.matmul(np.stack([p.lead_mix for p in plans]), leads)
    render_noise([p.noise for p in plans], leads, UNITS_PER_MV)
    return assemble(leads, pads, lengths)


def generate_batch(seed: int, indices: Sequence[int], config: SyntheticConfig | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
    """Exams ``indices`` of ``seed``: signals (n, 4096, 12) f32, labels (n, 6), clean labels (n, 6), metas."""
    cfg = SyntheticConfig() if config is None else config
    plans = [_plan_exam(seed, int(i), cfg) for i in indices]
    if not plans:
        empty = np.zeros((0, len(CLASSES)), np.float32)
        return np.zeros((0, N_SAMPLES, 12), np.float32), empty, empty.copy(), []
    signals = _render(plans)
    labels = np.stack([p.labels for p in plans])
    clean = np.stack([p.clean_labels for p in plans])
    return signals, labels, clean, [p.meta for p in plans]


def generate_exam(seed: int, index: int, config: SyntheticConfig | None = None) -> SyntheticExam:
    """Exam ``index`` of the synthetic dataset ``seed`` (identical whatever the batch or process)."""
    signals, labels, clean, metas = generate_batch(seed, [index], config)
    return SyntheticExam(signal=signals[0], labels=labels[0], clean_labels=clean[0], meta=metas[0])

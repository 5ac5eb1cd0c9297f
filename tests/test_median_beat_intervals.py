"""scripts/median_beat_intervals.py (the diagnosis scripts' delineator) on hand-built ECGs whose HR, PR and
QRS are known exactly.

The test signals are built here (not by ecglit's generator): each wave is a Gaussian with a 3-D
direction projected to 8 leads, the other 4 derived. A wave's extent is +-2.5 sigma, so PR runs from
the first P Gaussian's centre - 2.5 sigma to the first QRS Gaussian's centre - 2.5 sigma and the QRS
spans first centre - 2.5 sigma .. last centre + 2.5 sigma.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "median_beat_intervals.py"
_spec = importlib.util.spec_from_file_location("median_beat_intervals", SCRIPT)
intervals = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(intervals)
af_rule, measure_intervals = intervals.af_rule, intervals.measure_intervals

FS = 400
# Lead weights (X, Y, Z) for I, II, V1..V6: a plausible torso, not any published matrix.
LEAD_MATRIX = np.array([
    [0.60, -0.20, 0.05], [0.25, 1.00, -0.10], [-0.50, 0.15, -0.90], [0.05, 0.15, -1.30],
    [0.85, 0.10, -1.20], [1.20, 0.12, -0.60], [1.10, 0.12, -0.10], [0.80, 0.08, 0.25],
])


def _unit(v: tuple[float, float, float]) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


def build_ecg(
    hr: float = 70.0, pr_ms: float = 160.0, qrs_ms: float = 90.0, seconds: float = 10.0,
    *, rr: np.ndarray | None = None, with_p: bool = True, f_wave_mv: float = 0.0, noise_mv: float = 0.0,
    pad: int = 0, seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) ECG in mV in ecglit's lead order, plus the QRS onset samples of the beats."""
    rng = np.random.default_rng(seed)
    n = round(seconds * FS)
    t = np.arange(n) / FS
    if rr is None:
        rr = np.full(int(seconds * hr / 60) + 3, 60.0 / hr)
    onsets = 0.35 + np.concatenate([[0.0], np.cumsum(rr)])
    onsets = onsets[onsets < seconds - 0.1]
    d = qrs_ms / 1000.0
    edge, mid = d / 15.0, d / 9.0  # sigma of the first/last and the middle QRS wave
    waves = [  # (offset from QRS onset, sigma, amplitude mV, direction)
        (2.5 * edge, edge, 0.15, _unit((-0.6, 0.2, -0.8))),
        (d / 2, mid, 1.5, _unit((0.75, 0.55, 0.35))),
        (d - 2.5 * edge, edge, 0.4, _unit((-0.45, -0.6, 0.65))),
    ]
    if with_p:
        p_on = -pr_ms / 1000.0
        waves += [(p_on + 0.035, 0.014, 0.10, _unit((0.3, 0.9, -0.5))),
                  (p_on + 0.060, 0.015, 0.10, _unit((0.75, 0.45, 0.45)))]
    heart = np.zeros((n, 3))
    for k, onset in enumerate(onsets):
        beat_rr = rr[min(k, len(rr) - 1)]
        t_peak = 0.40 * beat_rr ** (1 / 3) - 0.075  # Fridericia-like QT, T peak 75 ms before its end
        for offset, sigma, amp, direction in [*waves, (t_peak, 0.045, 0.35, _unit((0.75, 0.45, -0.45)))]:
            heart += amp * np.exp(-0.5 * ((t - onset - offset) / sigma) ** 2)[:, None] * direction
    if f_wave_mv:
        phase = 2 * np.pi * 6.0 * t + 0.6 * np.sin(2 * np.pi * 0.2 * t)
        heart += f_wave_mv * np.sin(phase)[:, None] * _unit((-0.3, 0.2, -0.9))
    eight = heart @ LEAD_MATRIX.T + noise_mv * rng.standard_normal((n, 8))
    lead1, lead2 = eight[:, 0], eight[:, 1]
    limb = np.stack(
        [lead1, lead2, lead2 - lead1, -(lead1 + lead2) / 2, lead1 - lead2 / 2, lead2 - lead1 / 2], axis=1
    )
    ecg = np.concatenate([limb, eight[:, 2:]], axis=1)
    ecg = np.pad(ecg, ((pad, pad), (0, 0)))
    return ecg.astype(np.float32), np.round(onsets * FS).astype(int) + pad


@pytest.mark.parametrize(
    ("hr", "pr_ms", "qrs_ms"),
    [(72, 160, 90), (44, 250, 100), (58, 180, 140), (90, 320, 85), (110, 150, 95), (66, 130, 160)],
)
def test_intervals_of_regular_rhythms(hr: float, pr_ms: float, qrs_ms: float) -> None:
    ecg, _ = build_ecg(hr, pr_ms, qrs_ms)
    m = measure_intervals(ecg, FS)
    assert abs(m["hr_bpm"] - hr) < 0.5
    assert m["rr_cv"] < 0.01
    assert abs(m["pr_ms"] - pr_ms) <= 12, m
    assert abs(m["qrs_ms"] - qrs_ms) <= 12, m
    assert m["p_consistency"] > 0.9
    assert af_rule(m) is False


def test_r_peaks_follow_every_beat_and_padding_and_units_do_not_matter() -> None:
    ecg, onsets = build_ecg(75, 170, 100)
    padded, padded_onsets = build_ecg(75, 170, 100, pad=48)
    m = measure_intervals(ecg, FS)
    m_scaled = measure_intervals(padded * 10.0, FS)  # ecglit's 1e-4 V units, zero-padded
    assert m["n_beats"] == len(onsets) - 1 or m["n_beats"] == len(onsets)
    # Each detected R peak lies inside a QRS (onset .. onset + 100 ms).
    nearest = padded_onsets[np.searchsorted(padded_onsets, m_scaled["r_peaks"], side="right") - 1]
    assert np.all((m_scaled["r_peaks"] - nearest >= 0) & (m_scaled["r_peaks"] - nearest <= 0.1 * FS))
    np.testing.assert_array_equal(m_scaled["r_peaks"], m["r_peaks"] + 48)
    for key in ("hr_bpm", "pr_ms", "qrs_ms"):
        assert m_scaled[key] == pytest.approx(m[key], abs=1e-6)


def test_af_like_record_has_no_p_and_irregular_rr() -> None:
    rng = np.random.default_rng(3)
    rr = np.clip(0.75 * np.exp(0.22 * rng.standard_normal(20)), 0.3, None)
    ecg, onsets = build_ecg(rr=rr, with_p=False, f_wave_mv=0.08, qrs_ms=95)
    m = measure_intervals(ecg, FS)
    true_hr = 60.0 * FS / np.diff(onsets).mean()
    assert abs(m["hr_bpm"] - true_hr) < 2
    assert m["rr_irregularity"] > 0.1
    assert m["p_consistency"] < 0.5
    assert math.isnan(m["pr_ms"])
    assert abs(m["qrs_ms"] - 95) <= 15
    assert af_rule(m) is True


def test_sinus_arrhythmia_and_an_early_beat_are_not_af() -> None:
    beats = np.arange(14)
    rr = 0.85 * (1 + 0.05 * np.sin(2 * np.pi * 0.25 * 0.85 * beats))
    rr[6], rr[7] = 0.6 * rr[6], 1.4 * rr[7]  # premature beat and its pause
    ecg, onsets = build_ecg(rr=rr, pr_ms=170, qrs_ms=90, seed=1)
    m = measure_intervals(ecg, FS)
    intervals = np.diff(onsets) / FS
    normal = np.delete(intervals, [6, 7])  # the premature beat's interval and its pause
    assert m["hr_bpm"] == pytest.approx(60 / normal.mean(), abs=0.5)  # rate from NN intervals
    assert m["rr_cv"] > 0.05  # irregular ...
    assert m["rr_irregularity"] < 0.08  # ... but not irregularly irregular
    assert af_rule(m) is False
    assert abs(m["pr_ms"] - 170) <= 12


def test_noise_and_wander_barely_move_the_intervals() -> None:
    ecg, _ = build_ecg(64, 210, 124, noise_mv=0.02, seed=2)
    t = np.arange(len(ecg)) / FS
    ecg = ecg + (0.3 * np.sin(2 * np.pi * 0.3 * t))[:, None].astype(np.float32)
    m = measure_intervals(ecg, FS)
    assert abs(m["hr_bpm"] - 64) < 0.5
    assert abs(m["pr_ms"] - 210) <= 15
    assert abs(m["qrs_ms"] - 124) <= 15


def test_other_rates_and_lead_counts() -> None:
    ecg, _ = build_ecg(80, 160, 100)
    m12 = measure_intervals(ecg, FS)
    m500 = measure_intervals(np.repeat(ecg, 5, axis=0)[::4], 500)  # 400 Hz -> 500 Hz (sample-hold)
    m3 = measure_intervals(ecg[:, [0, 1, 7]], FS)  # I, II, V2: uses all given leads
    for other in (m500, m3):
        assert abs(other["hr_bpm"] - m12["hr_bpm"]) < 1
        assert abs(other["qrs_ms"] - m12["qrs_ms"]) <= 15


def test_unmeasurable_input_gives_nan_not_an_error() -> None:
    for ecg in (np.zeros((4096, 12)), np.ones((600, 12))):
        m = measure_intervals(ecg, FS)
        assert m["n_beats"] == 0 and math.isnan(m["hr_bpm"]) and math.isnan(m["qrs_ms"])


@pytest.mark.parametrize(
    ("bad", "match"),
    [(np.zeros(4096), "2-D"), (np.zeros((12, 4096)), "transpose"),
     (np.full((4096, 12), np.nan), "NaN")],
)
def test_bad_input_is_a_clear_error(bad: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        measure_intervals(bad, FS)

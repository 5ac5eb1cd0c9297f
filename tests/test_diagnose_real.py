"""scripts/diagnose_real*.py: the measurements on hand-built ECGs with known answers, the probes' physics."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
FS = 400


def _script(name: str):
    pytest.importorskip("neurokit2")  # the dev extra; the measurements need it
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))  # the scripts import each other, as when run
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _gauss(t: np.ndarray, centre: float, sigma: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / sigma) ** 2)


def _hand_built_exam(bpm: float = 72.0, seconds: float = 10.0, f_wave_uv: float = 0.0,
                     v1_r_prime_mv: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 12) in 1e-4 V: identical beats (P 0.12 mV at -160 ms, QRS 1 mV, T 0.3 mV at +250 ms) at ``bpm``;
    optional 6.3 Hz sinusoid in V1 (not locked to the beats) and a late positive wave (R') 60 ms after the R
    peak in V1."""
    t = np.arange(int(seconds * FS)) / FS
    r_times = np.arange(0.4, seconds - 0.5, 60.0 / bpm)
    beat_mv = np.zeros_like(t)
    r_prime = np.zeros_like(t)
    for r in r_times:
        beat_mv += 0.12 * _gauss(t, r - 0.16, 0.015) + _gauss(t, r, 0.008) + 0.3 * _gauss(t, r + 0.25, 0.04)
        r_prime += _gauss(t, r + 0.06, 0.01)
    gains = np.array([0.8, 1.0, 0.2, -0.9, 0.3, 0.6, -0.5, 0.4, 0.9, 1.2, 1.1, 0.9])
    mv = beat_mv[:, None] * gains[None, :]
    mv[:, 6] += v1_r_prime_mv * r_prime + f_wave_uv / 1000 * np.sin(2 * np.pi * 6.3 * t)
    return (mv * 10).astype(np.float32), np.round(r_times * FS).astype(int)


def test_rr_features_match_a_hand_worked_example() -> None:
    features = _script("diagnose_real_features")
    out = features.rr_features(np.array([0, 400, 800, 1300, 1700]), FS)  # RR 1, 1, 1.25, 1 s
    assert out["rr_cv"] == pytest.approx(np.sqrt(0.046875 / 4) / 1.0625, rel=1e-9)  # population std / mean
    assert out["rr_irregularity"] == pytest.approx(0.25)  # median |dRR| (0, .25, .25) / median RR 1


def test_three_detectors_find_the_rate_of_a_hand_built_ecg() -> None:
    features = _script("diagnose_real_features")
    x, r_samples = _hand_built_exam(bpm=72.0)
    det = features.detect_r_peaks(x[:, 1] / 10.0, FS)
    for key in ("hr_bpm", "hr_xqrs", "hr_nk", "hr_gqrs"):
        assert det[key] == pytest.approx(72.0, abs=1.0), key
    # the chosen peaks sit on the true R peaks (within 10 ms)
    assert np.abs(det["peaks"][:, None] - r_samples[None, :]).min(axis=1).max() <= 4


def test_f_wave_band_rms_and_peak_of_a_sinusoid_in_v1() -> None:
    """A 6.3 Hz, 50 uV sine in V1 under repeating beats: 4-9 Hz RMS = 50/sqrt(2) uV, peak at 6.3 Hz; none
    without it. (A sine locked to the beats would be part of the average beat and cancelled with it.)"""
    features = _script("diagnose_real_features")
    with_f = features.measure_exam(_hand_built_exam(f_wave_uv=50.0)[0], FS)
    without = features.measure_exam(_hand_built_exam()[0], FS)
    assert with_f["f_rms_uv_V1"] == pytest.approx(50 / np.sqrt(2), rel=0.15)
    assert with_f["f_peak_hz_V1"] == pytest.approx(6.3, abs=0.5)
    # the floor left by sub-sample beat jitter is a fraction of it, and lead I (no sine) stays at that floor
    assert without["f_rms_uv_V1"] < 0.2 * with_f["f_rms_uv_V1"]
    assert with_f["f_rms_uv_DI"] < 0.25 * with_f["f_rms_uv_V1"]
    assert with_f["hr_bpm"] == pytest.approx(72.0, abs=1.0)
    assert with_f["p_corr_II"] > 0.95  # the same P wave before every beat


def test_median_beat_morphology_reads_amplitudes_and_a_late_r_prime() -> None:
    features = _script("diagnose_real_features")
    plain = features.measure_exam(_hand_built_exam()[0], FS)
    rsr = features.measure_exam(_hand_built_exam(v1_r_prime_mv=0.8)[0], FS)
    assert plain["r_DII"] == pytest.approx(1.0, abs=0.1)  # lead II: gain 1 x 1 mV QRS
    assert plain["s_V1"] == pytest.approx(-0.5, abs=0.07)  # V1: gain -0.5
    assert plain["t_DII"] == pytest.approx(0.3, abs=0.05)
    assert plain["v1_late_max"] < 0.1
    assert rsr["v1_late_max"] == pytest.approx(0.8, abs=0.1)
    # net QRS of aVF (gain 0.6) against I (gain 0.8)
    assert plain["frontal_axis_deg"] == pytest.approx(np.degrees(np.arctan2(0.6, 0.8)), abs=3)


def test_probes_keep_padding_and_einthoven() -> None:
    probes = _script("diagnose_real_probes")
    x, _ = _hand_built_exam(seconds=10.0)
    padded = np.zeros((1, 4096, 12), np.float32)
    padded[0, 48:4048] = x
    half = probes._on_record(padded, probes.PROBES["amplitude x0.5"])
    np.testing.assert_allclose(half[0, 48:4048], x * 0.5, rtol=1e-6)
    with_f = probes._on_record(padded, probes.PROBES["f-waves 0.10 mV added"])
    assert not with_f[0, :48].any() and not with_f[0, 4048:].any()  # padding stays zero
    added = (with_f - padded)[0, 48:4048].astype(np.float64)
    np.testing.assert_allclose(added[:, 2], added[:, 1] - added[:, 0], atol=1e-3)  # III = II - I
    np.testing.assert_allclose(added[:, 3], -(added[:, 0] + added[:, 1]) / 2, atol=1e-3)  # aVR
    # V1: 1.5 x Dower row (-0.515, 0.157, -0.917) . axis amplitudes 0.1 x (0.6, 0.8, 1.0) mV x (1 +- 0.3)
    # x sawtooth peak (< 1): at most 1.5 x 0.135 x 1.3 = 0.26 mV; lead I (0.632, -0.235, 0.059) much less
    v1_peak_mv = np.abs(added[:, 6]).max() / 10
    assert 0.12 < v1_peak_mv < 0.27
    assert np.abs(added[:, 0]).max() / 10 < 0.5 * v1_peak_mv


def test_probe_auroc_matches_sklearn() -> None:
    from sklearn.metrics import roc_auc_score

    probes = _script("diagnose_real_probes")
    rng = np.random.default_rng(0)
    pos, neg = rng.random(30).round(1), rng.random(50).round(1)  # ties on purpose
    y = np.r_[np.ones(30), np.zeros(50)]
    assert probes._auroc(pos, neg) == pytest.approx(roc_auc_score(y, np.r_[pos, neg]))


def test_output_folder_inside_the_repository_is_refused(tmp_path: Path) -> None:
    script = _script("diagnose_real")
    repo = Path(__file__).resolve().parents[1]
    labels = tmp_path / "real"
    labels.mkdir()
    pd.DataFrame({"record": []}).to_csv(labels / "labels.csv", index=False)
    with pytest.raises(SystemExit, match="inside the repository"):
        script.main([str(repo / "outputs" / "diagnosis"), "--real", str(labels)])


def test_frontal_rotation_turns_the_axis_and_keeps_the_limb_lead_identities() -> None:
    """A vector along lead I (0 deg) turned by +60 deg lies along lead II: II = |v|, aVL = 0."""
    probes = _script("diagnose_real_probes")
    lead_i, lead_ii = 1.0, 0.5  # frontal vector at 0 deg, magnitude 1: I = cos 0, II = cos 60
    v = np.array([[lead_i, lead_ii, lead_ii - lead_i, -(lead_i + lead_ii) / 2, lead_i - lead_ii / 2,
                   lead_ii - lead_i / 2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]])
    turned = probes._rotate_frontal(60.0)(v)[0]
    assert turned[1] == pytest.approx(1.0)  # II
    assert turned[0] == pytest.approx(0.5)  # I = cos 60
    assert turned[4] == pytest.approx(0.0, abs=1e-12)  # aVL (-30 deg) is perpendicular to 60 deg
    assert turned[2] == pytest.approx(turned[1] - turned[0])  # III = II - I
    np.testing.assert_array_equal(turned[6:], v[0, 6:])  # precordial leads untouched

"""The synthetic 12-lead generator: layout, physics, determinism, labels, config errors, materialise."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

from ecglit.constants import CLASSES, CODE15_COLUMNS, N_SAMPLES
from ecglit.data.synthetic import (
    SyntheticConfig,
    SyntheticECGDataset,
    generate_batch,
    generate_exam,
    materialize,
)
from ecglit.data.synthetic.generator import _plan_exam
from ecglit.data.synthetic.materialize import METADATA_COLUMNS
from ecglit.data.synthetic.morphology import EXTENT, _qrs_rows
from ecglit.data.synthetic.sampling import sample_params
from ecglit.errors import ConfigError

# Per-lead std of CODE-15% (1e-4 V), from ../shared/design/synthetic-ecg.md §1.1.
CODE15_STD = np.array([1.53, 2.66, 2.65, 1.72, 1.70, 2.54, 2.06, 2.12, 2.06, 1.97, 2.05, 2.32])
K = {c: i for i, c in enumerate(CLASSES)}
NO_OTHER_RHYTHMS = {"flutter_fraction": 0.0, "svt_fraction": 0.0, "paced_fraction": 0.0}


@pytest.fixture(scope="module")
def batch():
    """400 exams with the default configuration (noisy), shared by the cheap checks."""
    return generate_batch(11, range(400))


def _same_meta(a: dict, b: dict) -> bool:
    """Equality with NaN == NaN (pr_ms in AF, af_* in sinus)."""
    same = lambda u, v: (isinstance(u, float) and isinstance(v, float) and np.isnan(u) and np.isnan(v)) or u == v
    return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)


def _window(meta: dict) -> slice:
    start = meta["pad_left"]
    return slice(start, start + round(meta["record_seconds"] * 400))


# -- layout and physics ------------------------------------------------------------------------------

def test_shape_dtype_units_and_exact_zero_padding(batch):
    signals, labels, clean, metas = batch
    assert signals.shape == (400, N_SAMPLES, 12) and signals.dtype == np.float32
    assert labels.shape == clean.shape == (400, 6) and labels.dtype == np.float32
    lengths = {m["record_seconds"] for m in metas}
    assert lengths == {7.0, 10.0}
    for x, m in zip(signals, metas):
        pad = {7.0: 648, 10.0: 48}[m["record_seconds"]]
        assert m["pad_left"] == pad
        w = _window(m)
        assert w.stop - w.start == {7.0: 2800, 10.0: 4000}[m["record_seconds"]]
        assert not x[:pad].any() and not x[w.stop:].any()           # padding exactly 0.0
        assert N_SAMPLES - w.stop == pad                            # symmetric
        assert np.abs(x[w.start:w.start + 20]).sum() > 0 and np.abs(x[w.stop - 20:w.stop]).sum() > 0
    # Units 1e-4 V: the largest deflection of an exam is typically 0.5-4 mV, i.e. 5-40.
    peak = np.abs(signals).max(axis=(1, 2))
    assert 5.0 < np.median(peak) < 40.0


def test_lead_identities_hold_on_noisy_exams(batch):
    signals, _, _, metas = batch
    assert np.mean([m["noise_level"] > 0.3 for m in metas]) > 0.5
    i, ii, iii, avr, avl, avf = (signals[..., k].astype(np.float64) for k in range(6))
    tol = 4 * np.finfo(np.float32).eps * np.abs(signals).max()
    assert np.abs(iii - (ii - i)).max() <= tol                      # Einthoven
    assert np.abs(avr + (i + ii) / 2).max() <= tol                  # Goldberger
    assert np.abs(avl - (i - ii / 2)).max() <= tol
    assert np.abs(avf - (ii - i / 2)).max() <= tol
    assert np.abs(avr + avl + avf).max() <= tol


# Prevalences of the CODE test set's gold standard (28/34/30/16/13/37 of 827 exams): the pooled std of
# CODE-15% describes CODE's population, where the large LBBB complexes are rare, not the balanced mix.
CODE_PREVALENCE = {"1dAVb": 0.034, "RBBB": 0.041, "LBBB": 0.036, "SB": 0.019, "AF": 0.016, "ST": 0.045}


def test_per_lead_std_close_to_code15():
    signals, _, _, metas = generate_batch(11, range(400), SyntheticConfig(prevalence=CODE_PREVALENCE))
    std = np.array([np.concatenate([x[_window(m), k] for x, m in zip(signals, metas)]).std()
                    for k in range(12)])
    ratio = std / CODE15_STD
    assert np.all((ratio > 0.6) & (ratio < 1.6)), f"std / CODE-15% std per lead: {np.round(ratio, 2)}"


# -- determinism -------------------------------------------------------------------------------------

def test_exam_is_identical_in_any_batch_or_order(batch):
    signals, labels, clean, metas = batch
    for i in (0, 7, 123, 399):
        e = generate_exam(11, i)
        assert np.array_equal(e.signal, signals[i])
        assert np.array_equal(e.labels, labels[i]) and np.array_equal(e.clean_labels, clean[i])
        assert _same_meta(e.meta, metas[i])
    idx = [399, 5, 250, 6]
    x, y, _, _ = generate_batch(11, idx)
    assert np.array_equal(x, signals[idx]) and np.array_equal(y, labels[idx])
    other, *_ = generate_batch(12, [5])
    assert not np.array_equal(other[0], signals[5])


def test_noise_scale_zero_keeps_the_same_heart(batch):
    signals, _, clean, metas = batch
    cfg = SyntheticConfig(noise_scale=0.0)
    x, _, c, m = generate_batch(11, range(20), cfg)
    assert np.array_equal(c, clean[:20])
    assert [mm["r_peak_samples"] for mm in m] == [mm["r_peak_samples"] for mm in metas[:20]]
    residual = (signals[:20] - x).std() / signals[:20].std()
    assert 0 < residual < 0.8


# -- labels ------------------------------------------------------------------------------------------

def _rule_labels(m: dict, sb: float = 50.0, st: float = 100.0, pr: float = 200.0, qrs: float = 120.0,
                 rbbb_qrs: float = 120.0) -> list:
    sinus = m["rhythm"] == "sinus"
    return [float(sinus and m["pr_ms"] > pr),
            float(m["ventricular_conduction"] == "rbbb" and m["qrs_ms"] >= rbbb_qrs),
            float(m["ventricular_conduction"] == "lbbb" and m["qrs_ms"] >= qrs),
            float(sinus and m["hr_bpm"] < sb), float(m["rhythm"] == "af"), float(sinus and m["hr_bpm"] > st)]


def test_labels_follow_clinical_rules_and_exclusions(batch):
    _, labels, clean, metas = batch
    assert np.array_equal(labels, clean)  # no label noise by default
    for c, m in zip(clean, metas):
        assert list(c) == _rule_labels(m)
        if m["rhythm"] == "af":
            assert np.isnan(m["pr_ms"]) and m["av_conduction"] == "none"
    pos = clean > 0.5
    assert not (pos[:, K["SB"]] & pos[:, K["ST"]]).any()
    assert not (pos[:, K["AF"]] & (pos[:, K["SB"]] | pos[:, K["ST"]] | pos[:, K["1dAVb"]])).any()
    assert not (pos[:, K["RBBB"]] & pos[:, K["LBBB"]]).any()
    assert pos.sum(0).min() > 20
    assert 0.25 < np.mean(~pos.any(1)) < 0.7        # plenty of all-negative exams
    assert np.mean(pos.sum(1) > 1) > 0.05            # and multi-label ones


def test_heart_rate_is_measured_from_the_realised_beats(batch):
    _, _, _, metas = batch
    for m in metas:
        r = np.array(m["r_peak_samples"]) / 400.0
        kinds = m["beat_kinds"]
        nn = [b - a for a, b, ka, kb in zip(r[:-1], r[1:], kinds[:-1], kinds[1:]) if ka == kb == "sinus"]
        rr = nn or np.diff(r)
        assert abs(60.0 / np.mean(rr) - m["hr_bpm"]) < 0.5  # R peaks are rounded to samples
        assert all(_window(m).start <= s < _window(m).stop for s in m["r_peak_samples"])
    af = [np.std(np.diff(m["r_peak_samples"])) / np.mean(np.diff(m["r_peak_samples"]))
          for m in metas if m["rhythm"] == "af" and m["n_beats"] > 5]
    sinus = [np.std(np.diff(m["r_peak_samples"])) / np.mean(np.diff(m["r_peak_samples"])) for m in metas
             if m["rhythm"] == "sinus" and not m["has_pac"] and not m["has_pvc"] and not m["distractors"]]
    assert np.median(af) > 0.1 and np.median(sinus) < 0.04


def test_borderline_rates_and_distractors_are_present(batch):
    metas = batch[3]
    hr = np.array([m["hr_bpm"] for m in metas if m["rhythm"] == "sinus"])
    assert ((hr > 45) & (hr < 50)).sum() >= 3 and ((hr > 50) & (hr < 55)).sum() >= 3
    kinds = {d for m in metas for d in m["distractors"]}
    assert {"incomplete_rbbb", "ivcd", "sinus_arrhythmia", "low_p", "borderline_rate"} <= kinds
    assert any(m["has_pac"] for m in metas) and any(m["has_pvc"] for m in metas)
    incomplete = [m for m in metas if {"incomplete_rbbb", "incomplete_lbbb"} & set(m["distractors"])]
    assert len(incomplete) >= 10 and all(m["qrs_ms"] < 120 for m in incomplete)


def _p_after_t_gaps_ms(m: dict) -> np.ndarray:
    """For each sinus beat after a supraventricular one: time from the previous T end (QRS onset + QT)
    to this beat's P onset (QRS onset - PR), in ms. (A PAC's own P lands early, often on the T.)"""
    onsets = np.array(m["qrs_onset_samples"]) / 0.4
    kinds = np.array(m["beat_kinds"])
    pair = (kinds[1:] == "sinus") & (kinds[:-1] != "pvc")
    return (np.diff(onsets) - m["pr_ms"] - m["qt_ms"])[pair]


def test_long_pr_fits_between_the_previous_t_and_the_qrs():
    """A 1dAVb P wave never sits on the previous T (PR would be unmeasurable), even at fast rates."""
    cfg = SyntheticConfig(prevalence={"1dAVb": 0.5, "ST": 0.3, "SB": 0.2, "AF": 0.0})
    _, _, clean, metas = generate_batch(21, range(300), cfg)
    long_pr = [m for c, m in zip(clean, metas) if c[K["1dAVb"]]]
    normal_pr = [m for c, m in zip(clean, metas) if not c[K["1dAVb"]] and m["rhythm"] == "sinus"]
    assert len(long_pr) > 120 and sum(m["hr_bpm"] > 100 for m in long_pr) >= 10  # 1dAVb + ST exists
    mean_gap = np.array([60000.0 / m["hr_bpm"] - m["pr_ms"] - m["qt_ms"] for m in long_pr])
    shortest_gap = np.array([_p_after_t_gaps_ms(m).min() for m in long_pr])
    assert mean_gap.min() > 10.0, np.sort(mean_gap)[:5]
    assert np.mean(shortest_gap > 0) >= 0.95, np.sort(shortest_gap)[:10]
    pr = np.array([m["pr_ms"] for m in long_pr])
    assert pr.min() > 200.0 and pr.max() <= 350.0
    # Real first-degree blocks cluster just above 200 ms: the configured borderline share (0.25) within
    # 20 ms of the threshold where the rate leaves room, an exponential tail (mean 30 ms) beyond it.
    roomy = pr[np.array([m["hr_bpm"] < 90 for m in long_pr])]
    assert len(roomy) > 60 and 0.15 <= np.mean(roomy <= 220.0) <= 0.35
    assert 225.0 < np.median(roomy) < 250.0 and np.mean(pr > 300) < 0.05
    normal = np.array([m["pr_ms"] for m in normal_pr])
    assert normal.min() >= 80.0 and normal.max() <= 195.0  # 110-195 ms, a quarter shorter at 130 bpm
    fast = np.array([m["pr_ms"] for m in normal_pr if m["hr_bpm"] > 115])
    assert len(fast) >= 10 and np.median(fast) < 140.0  # PR shortens at fast rates


@pytest.mark.parametrize("conduction", ["normal", "ivcd", "rbbb", "lbbb"])
def test_qrs_waves_span_the_labelled_duration(conduction):
    """The QRS waves' +-2.5 sigma extents start at the QRS onset and end at the labelled duration D,
    so incomplete blocks (D < 120 ms) are really narrower than the threshold."""
    params = sample_params(np.random.default_rng(0), SyntheticConfig())
    for d in (80.0, 100.0, 112.0, 118.0, 125.0, 150.0, 180.0):
        p = dataclasses.replace(params, ventricular_conduction=conduction, qrs_ms=d)
        rows = np.array([(c, w) for c, w, _, _ in _qrs_rows(p)])
        start, end = (rows[:, 0] - EXTENT * rows[:, 1]).min(), (rows[:, 0] + EXTENT * rows[:, 1]).max()
        assert -0.02 * d <= start <= 0.05 * d and 0.97 * d <= end <= d + 1e-9, (conduction, d, start, end)


def test_af_waves_scale_with_the_exam_gain():
    cfg = SyntheticConfig(prevalence={c: float(c == "AF") for c in CLASSES}, **NO_OTHER_RHYTHMS)
    plans = [_plan_exam(3, i, cfg) for i in range(200)]
    rms = np.array([np.sqrt(np.mean(p.af_leads**2)) for p in plans])
    amp = np.array([p.meta["af_amp_mv"] for p in plans])
    gain = np.array([p.meta["gain"] for p in plans])
    # log RMS = log amplitude + log gain + the exam's own f-wave morphology (independent of both)
    slope = np.polyfit(np.log(gain), np.log(rms / amp), 1)[0]
    assert 0.8 < slope < 1.2 and np.corrcoef(np.log(rms), np.log(amp * gain))[0, 1] > 0.9


def test_ectopy_is_independent_of_the_rhythm():
    """PVCs are as frequent in AF as in sinus rhythm; PACs (atrial ectopics) occur in sinus only."""
    cfg = SyntheticConfig(prevalence={"AF": 0.5, "SB": 0.1, "ST": 0.1, "1dAVb": 0.1})
    metas = [_plan_exam(9, i, cfg).meta for i in range(3000)]
    af = np.array([m["rhythm"] == "af" for m in metas])
    pvc = np.array([m["has_pvc"] for m in metas])
    pac = np.array([m["has_pac"] for m in metas])
    assert abs(pvc[af].mean() - pvc[~af].mean()) < 0.03 and 0.05 < pvc.mean() < 0.11
    assert not pac[af].any() and 0.05 < pac[~af].mean() < 0.11


def test_physionet_definitions_move_the_bradycardia_threshold():
    cfg = SyntheticConfig(label_definitions="physionet", prevalence={"SB": 0.5, "ST": 0.1})
    assert cfg.sb_max_bpm == 60.0 and SyntheticConfig().sb_max_bpm == 50.0
    _, _, clean, metas = generate_batch(3, range(200), cfg)
    for c, m in zip(clean, metas):
        assert list(c) == _rule_labels(m, sb=60.0, rbbb_qrs=80.0)  # PhysioNet RBBB includes incomplete
    hr = np.array([m["hr_bpm"] for m in metas])
    # Every right-bundle pattern is RBBB there, the narrow (incomplete) ones too; none is a negative distractor.
    right = [(m["qrs_ms"], c[K["RBBB"]]) for c, m in zip(clean, metas) if m["ventricular_conduction"] == "rbbb"]
    assert right and all(label == 1.0 for _, label in right) and min(q for q, _ in right) < 100.0
    assert not any("incomplete_rbbb" in m["distractors"] for m in metas)
    sb = clean[:, K["SB"]] > 0.5
    assert (sb & (hr >= 50.0)).sum() > 10          # SB under PhysioNet, not under CODE
    assert SyntheticConfig(label_definitions="physionet", sb_max_bpm=55).sb_max_bpm == 55.0


def test_prevalence_is_respected():
    cfg = SyntheticConfig(prevalence={"AF": 0.5, "RBBB": 0.3, "LBBB": 0.0, "SB": 0.0, "ST": 0.2, "1dAVb": 0.1})
    _, _, clean, _ = generate_batch(5, range(400), cfg)
    rate = clean.mean(0)
    expected = np.array([0.1, 0.3, 0.0, 0.0, 0.5, 0.2])
    assert np.all(np.abs(rate - expected) < 0.08), f"{rate} vs {expected}"
    assert rate[K["LBBB"]] == 0.0 and rate[K["SB"]] == 0.0


def test_label_noise_keeps_clean_labels_and_signals(batch):
    signals, _, clean, _ = batch
    cfg = SyntheticConfig(p_fn=0.3, p_fp=0.05)
    x, noisy, c, _ = generate_batch(11, range(400), cfg)
    assert np.array_equal(c, clean) and np.array_equal(x, signals)
    pos = clean > 0.5
    fn = np.mean(noisy[pos] < 0.5)
    fp = np.mean(noisy[~pos] > 0.5)
    assert 0.2 < fn < 0.4 and 0.02 < fp < 0.08


def test_nuisances_do_not_predict_labels(batch):
    """Leakage audit: record length, noise level, gain, padding and PVCs carry no label information."""
    _, _, clean, metas = batch
    for name in ("record_seconds", "noise_level", "gain", "pad_left", "has_pvc"):
        values = np.array([m[name] for m in metas], dtype=float)
        _, tie, counts = np.unique(values, return_inverse=True, return_counts=True)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        ranks = (first + (counts + 1) / 2)[tie]          # average ranks, ties shared
        for k, cls in enumerate(CLASSES):
            pos = clean[:, k] > 0.5
            n_pos, n_neg = pos.sum(), (~pos).sum()
            auroc = (ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
            assert abs(auroc - 0.5) < 0.15, f"{name} predicts {cls}: AUROC {auroc:.2f}"


def test_bundle_branch_morphology_in_v1_and_i():
    """Clean exams: RBBB ends with a positive R' in V1; LBBB has a negative QRS in V1, positive in I."""
    def qrs_area(cls: str, lead: str, part: str) -> np.ndarray:
        cfg = SyntheticConfig(prevalence={c: float(c == cls) for c in CLASSES}, noise_scale=0.0,
                              ectopy_rate=0.0, borderline_fraction=0.0, **NO_OTHER_RHYTHMS)
        x, _, _, metas = generate_batch(2, range(40), cfg)
        k = ["DI", "DII", "DIII", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"].index(lead)
        out = []
        for s, m in zip(x, metas):
            onset = m["qrs_onset_samples"][len(m["qrs_onset_samples"]) // 2]
            n = int(m["qrs_ms"] * 0.4)
            seg = s[onset:onset + n, k] if part == "all" else s[onset + n - n // 4:onset + n, k]
            out.append(seg.mean())
        return np.array(out)

    assert np.mean(qrs_area("RBBB", "V1", "terminal") > 0) > 0.85
    assert np.mean(qrs_area("RBBB", "V6", "terminal") < 0) > 0.85   # broad terminal S
    assert np.mean(qrs_area("LBBB", "V1", "all") < 0) > 0.9
    assert np.mean(qrs_area("LBBB", "DI", "all") > 0) >= 0.85


# -- configuration errors ----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"prevalence": {"AF": 1.5}}, r"prevalence\['AF'\] must be a probability"),
    ({"prevalence": {"SB": 0.6, "ST": 0.6}}, "SB, ST, AF, flutter, SVT and pacing exclude each other"),
    ({"prevalence": {"SB": 1.0, "AF": 1.0}}, "SB, ST, AF, flutter, SVT and pacing exclude each other"),
    ({"prevalence": {"1dAVb": 0.8, "AF": 0.5}}, "1dAVb needs sinus rhythm"),
    ({"prevalence": {"RBBB": 0.7, "LBBB": 0.4}}, "RBBB and LBBB exclude each other"),
    ({"prevalence": {"MI": 0.1}}, "unknown classes"),
    ({"label_definitions": "aha"}, "label_definitions must be one of"),
    ({"sb_max_bpm": 120.0}, "sb_max_bpm"),
    ({"rbbb_qrs_min_ms": 70.0}, r"rbbb_qrs_min_ms must be in \[80, 140\] ms"),
    ({"qrs_min_ms": 90.0}, r"qrs_min_ms must be in \[100, 140\] ms"),
    ({"noise_level_range": (1.0, 0.5)}, "noise_level_range"),
    ({"p_fn": -0.1}, "p_fn must be a probability"),
    ({"p_record_10s": 2}, "p_record_10s"),
])
def test_bad_config_raises_clear_error(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SyntheticConfig(**kwargs)


def test_from_dict_and_bad_sizes(tmp_path):
    cfg = SyntheticConfig.from_dict({"label_definitions": "physionet", "prevalence": {"AF": 0.3},
                                     "noise_level_range": [0.0, 0.5]})
    assert cfg.sb_max_bpm == 60.0 and cfg.prevalence["AF"] == 0.3 and cfg.prevalence["SB"] == 0.12
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown synthetic generator settings"):
        SyntheticConfig.from_dict({"sb_threshold": 50})
    with pytest.raises(ConfigError, match="n must be a non-negative integer"):
        SyntheticECGDataset(-1, 0)
    with pytest.raises(ConfigError, match="n must be a non-negative integer"):
        materialize(tmp_path / "x", -5, 0, progress=False)
    with pytest.raises(ConfigError, match="index must be"):
        generate_exam(0, -1)
    assert not (tmp_path / "x").exists()


# -- torch Dataset and materialised shards -----------------------------------------------------------

def test_dataset_contract(batch):
    signals, labels, _, metas = batch
    ds = SyntheticECGDataset(400, 11, input_scale=2.0)
    x, y = ds[7]
    assert x.shape == (12, N_SAMPLES) and x.dtype == torch.float32 and y.shape == (6,) and y.dtype == torch.float32
    assert torch.equal(x, torch.from_numpy(signals[7].T.copy()) * 2.0)
    assert torch.equal(y, torch.from_numpy(labels[7]))
    assert _same_meta(ds.meta(7), metas[7]) and len(ds) == 400
    items = ds.__getitems__([7, 8])
    assert torch.equal(items[0][0], x) and torch.equal(items[1][1], torch.from_numpy(labels[8]))
    assert len(pickle.dumps(ds)) < 5000  # holds no exams: cheap to send to DataLoader workers
    with pytest.raises(IndexError):
        ds[400]


def test_materialize_roundtrip_and_worker_independence(tmp_path: Path, batch):
    signals, labels, clean, metas = batch
    one = materialize(tmp_path / "w1", 150, 11, shard_size=100, workers=1, progress=False, first_exam_id=1)
    two = materialize(tmp_path / "w2", 150, 11, shard_size=100, workers=2, progress=False, first_exam_id=1)
    for k in (0, 1):
        with h5py.File(one / f"exams_part{k}.hdf5") as f1, h5py.File(two / f"exams_part{k}.hdf5") as f2:
            x1, x2 = f1["tracings"][:], f2["tracings"][:]
            ids = f1["exam_id"][:]
            assert np.array_equal(x1, x2) and np.array_equal(ids, f2["exam_id"][:])
        assert ids[-1] == 0 and not x1[-1].any()      # CODE-15% sentinel row
        rows = ids[:-1] - 1
        assert np.array_equal(x1[:-1], signals[rows])
    exams = pd.read_csv(one / "exams.csv")
    assert list(exams.columns[:len(CODE15_COLUMNS)]) == list(CODE15_COLUMNS)
    assert exams["exam_id"].tolist() == list(range(1, 151))
    assert np.array_equal(exams[list(CLASSES)].to_numpy().astype(np.float32), labels[:150])
    assert (exams["normal_ecg"] == ~exams[list(CLASSES)].any(axis=1)).all()
    assert exams["patient_id"].value_counts().max() >= 2 and exams["patient_id"].nunique() < 150
    assert exams["age"].between(18, 100).all() and set(exams["trace_file"]) == {"exams_part0.hdf5",
                                                                             "exams_part1.hdf5"}
    meta = pd.read_csv(one / "metadata.csv")
    assert list(meta.columns) == list(METADATA_COLUMNS) and len(meta) == 150
    assert np.allclose(meta["hr_bpm"], [m["hr_bpm"] for m in metas[:150]])
    assert np.array_equal(meta[[f"clean_{c}" for c in CLASSES]].to_numpy(), clean[:150])
    assert pd.read_csv(two / "metadata.csv").equals(meta) and pd.read_csv(two / "exams.csv").equals(exams)

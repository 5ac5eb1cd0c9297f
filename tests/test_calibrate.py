"""ecglit.calibrate: the thresholds each rule picks, and the checkpoint a calibration writes.

The thresholds are checked against independent computations: F1 from scikit-learn searched over every
candidate threshold with numpy, and the sensitivity/specificity rules derived from sorted scores (the k-th
highest positive, the first score above the m-th lowest negative). The end-to-end runs predict the shard
folder with the source model directly (not through the Predictor calibrate uses) and compare.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.broken_inputs import exam_block, file_bytes, write_checkpoint, write_csv, write_shard_folder
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from sklearn.metrics import f1_score, recall_score

from ecglit.calibrate import calibrate, choose_thresholds
from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.inference.predictor import Predictor
from ecglit.models.batchnorm import adapt_batchnorm
from ecglit.models.checkpoint import load_classifier, save_classifier
from ecglit.models.ecg_module import ECGClassifier

REPO = Path(__file__).resolve().parents[1]
SOURCE_THRESHOLDS = [0.31, 0.37, 0.43, 0.47, 0.53, 0.59]
SOURCE_TAG = "paper thresholds (test)"


# --- independent references ---------------------------------------------------------------------------

def brute_force_max_f1(p: np.ndarray, y: np.ndarray) -> tuple[float, float, int]:
    """(threshold, F1, how many candidates reach that F1) over every distinct score; labels = p >= t.
    F1 from scikit-learn, annotated cells only."""
    keep = ~np.isnan(y)
    p, y = p[keep], y[keep].astype(int)
    candidates = np.unique(p)
    f1 = np.array([f1_score(y, (p >= t).astype(int), zero_division=0.0) for t in candidates])
    best = int(np.argmax(f1))
    return float(candidates[best]), float(f1[best]), int(np.isclose(f1, f1[best], rtol=0, atol=1e-12).sum())


def sensitivity_reference(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """Highest threshold keeping sensitivity >= target: the k-th highest positive score, k = ceil(target * P)."""
    keep = ~np.isnan(y)
    pos = np.sort(p[keep][y[keep] == 1])[::-1]
    k = math.ceil(target * len(pos) - 1e-9)
    return float(pos[k - 1])


def specificity_reference(p: np.ndarray, y: np.ndarray, target: float) -> float:
    """Lowest score threshold with specificity >= target: at least m = ceil(target * N) negatives must lie
    strictly below it, so it is the first distinct score above the m-th lowest negative."""
    keep = ~np.isnan(y)
    p, y = p[keep], y[keep]
    neg = np.sort(p[y == 0])
    m = math.ceil(target * len(neg) - 1e-9)
    above = np.unique(p)[np.unique(p) > neg[m - 1]]
    return float(above.min()) if len(above) else math.inf


def specificity(p, y, t) -> float:
    keep = ~np.isnan(y)
    return float((p[keep][y[keep] == 0] < t).mean())


def sensitivity(p, y, t) -> float:
    keep = ~np.isnan(y)
    return float(recall_score(y[keep].astype(int), (p[keep] >= t).astype(int)))


def scores_and_labels(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(n, 6) float32 scores, all distinct, and 0/1 labels correlated with them (both classes present)."""
    rng = np.random.default_rng(seed)
    p = rng.permutation(np.linspace(0.02, 0.98, n * len(CLASSES))).reshape(n, len(CLASSES)).astype(np.float32)
    y = (rng.random((n, len(CLASSES))) < 0.15 + 0.7 * p).astype(np.float64)
    assert (y.sum(0) >= 10).all() and ((1 - y).sum(0) >= 20).all()
    return p, y


# --- choose_thresholds --------------------------------------------------------------------------------

def test_max_f1_is_the_best_f1_over_all_candidate_thresholds():
    p, y = scores_and_labels()
    current = np.full(len(CLASSES), 0.5)
    new, how = choose_thresholds(p, y, current, "max_f1", list(CLASSES))
    assert how == dict.fromkeys(CLASSES, "max_f1")
    for i in range(len(CLASSES)):
        threshold, best_f1, n_best = brute_force_max_f1(p[:, i], y[:, i])
        assert n_best == 1, "the construction should have a unique optimum"
        assert new[i] == pytest.approx(threshold, abs=1e-7), CLASSES[i]
        assert f1_score(y[:, i].astype(int), (p[:, i] >= new[i]).astype(int)) == pytest.approx(best_f1)
        # the default 0.5 is not already optimal, so the rule did something
        assert f1_score(y[:, i].astype(int), (p[:, i] >= 0.5).astype(int)) < best_f1
    np.testing.assert_array_equal(current, 0.5)  # the caller's array is not modified


@pytest.mark.parametrize("target", [0.9, 0.75, 0.95, 1.0])
def test_sensitivity_rule_is_the_highest_threshold_reaching_the_target(target):
    p, y = scores_and_labels(seed=1)
    new, how = choose_thresholds(p, y, np.full(len(CLASSES), 0.5), f"sensitivity:{target}", list(CLASSES))
    assert set(how.values()) == {f"sensitivity:{target}"}
    for i in range(len(CLASSES)):
        t = new[i]
        assert t == pytest.approx(sensitivity_reference(p[:, i], y[:, i], target), abs=1e-7)
        assert sensitivity(p[:, i], y[:, i], t) >= target - 1e-12
        higher = np.unique(p[:, i])[np.unique(p[:, i]) > t]
        if len(higher):  # the next candidate up no longer reaches the target
            assert sensitivity(p[:, i], y[:, i], higher.min()) < target


@pytest.mark.parametrize("target", [0.95, 0.8, 1.0])
def test_specificity_rule_is_the_lowest_threshold_reaching_the_target(target):
    p, y = scores_and_labels(seed=2)
    new, _ = choose_thresholds(p, y, np.full(len(CLASSES), 0.5), f"specificity:{target}", list(CLASSES))
    for i in range(len(CLASSES)):
        t = new[i]
        ref = specificity_reference(p[:, i], y[:, i], target)
        if math.isinf(ref):  # even the top score is a negative's: nothing may be labelled positive
            assert t > p[:, i].max()
        else:
            assert t == pytest.approx(ref, abs=1e-7)
        assert specificity(p[:, i], y[:, i], t) >= target - 1e-12
        lower = np.unique(p[:, i])[np.unique(p[:, i]) < t]
        if len(lower):
            assert specificity(p[:, i], y[:, i], lower.max()) < target


def test_specificity_one_above_every_score_labels_nothing_positive():
    p = np.array([[0.2], [0.4], [0.9]], np.float32)
    y = np.array([[1.0], [0.0], [0.0]])  # the highest score is a negative
    new, how = choose_thresholds(p, y, np.array([0.5]), "specificity:1.0", ["AF"])
    assert how == {"AF": "specificity:1.0"}
    assert p.max() < new[0] < p.max() + 1e-6
    assert not (p[:, 0] >= new[0]).any()
    # checkpoints store thresholds as float32: the stored value must label the same exams
    assert not (p[:, 0] >= np.float32(new[0])).any()


def test_classes_that_cannot_be_calibrated_keep_their_threshold_and_say_why():
    p, y = scores_and_labels(seed=3)
    y[:, 0] = 0.0            # 1dAVb: annotated, no positive
    y[:, 1] = np.nan         # RBBB: not annotated at all
    y[:, 2] = 1.0            # LBBB: no negative (fine for max_f1/sensitivity, not for specificity)
    y[:10, 3] = np.nan       # SB: partly annotated, calibrated on the rest
    current = np.array(SOURCE_THRESHOLDS)
    for rule in ("max_f1", "sensitivity:0.9", "specificity:0.9"):
        new, how = choose_thresholds(p, y, current, rule, list(CLASSES))
        assert how["1dAVb"] == "kept: no positives in the set"
        assert how["RBBB"] == "kept: not annotated in the set"
        assert new[0] == current[0] and new[1] == current[1]
        if rule.startswith("specificity"):
            assert how["LBBB"] == "kept: no negatives in the set" and new[2] == current[2]
        else:
            assert how["LBBB"] == rule
        assert how["SB"] == how["AF"] == how["ST"] == rule
        assert (new[3:] != current[3:]).all()


# AF scores and labels built so that empty cells read as negatives would move max_f1 and specificity:
# positives 0.9, 0.8, 0.7, 0.3; negatives 0.05-0.2; the four middle exams (0.45-0.6) are positives whose AF
# cell is left empty. Left out: max_f1 0.3 (F1 1), specificity:0.75 0.2 (3 of 4 negatives below).
# Read as negatives: max_f1 0.7 (F1 6/7 beats 8/12 at 0.3), specificity:0.75 0.55 (6 of 8 below);
# sensitivity:0.75 (3 of 4 positives) cannot tell the two apart: 0.7 either way.
AF_SCORES = [0.9, 0.8, 0.7, 0.3, 0.05, 0.1, 0.15, 0.2, 0.45, 0.5, 0.55, 0.6]
AF_LABELS = [1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1]
AF_BLANK = [8, 9, 10, 11]
AF_EXPECTED = {"max_f1": (0.3, 0.7), "specificity:0.75": (0.2, 0.55), "sensitivity:0.75": (0.7, 0.7)}


@pytest.mark.parametrize("rule", list(AF_EXPECTED))
def test_empty_cells_are_left_out_not_counted_as_negatives(rule):
    rng = np.random.default_rng(4)
    n, i = len(AF_SCORES), CLASSES.index("AF")
    p = rng.uniform(0.05, 0.95, (n, len(CLASSES))).astype(np.float32)
    y = (rng.random((n, len(CLASSES))) < 0.5).astype(np.float64)
    y[:2], y[2:4] = 1.0, 0.0  # every class has both
    p[:, i], y[:, i] = AF_SCORES, AF_LABELS
    blanked, as_negatives = y.copy(), y.copy()
    blanked[AF_BLANK, i] = np.nan
    as_negatives[AF_BLANK, i] = 0.0
    kept = np.setdiff1d(np.arange(n), AF_BLANK)
    current = np.full(len(CLASSES), 0.5)

    with_blanks, how = choose_thresholds(p, blanked, current, rule, list(CLASSES))
    dropped, _ = choose_thresholds(p[kept], y[kept], current, rule, list(CLASSES))
    negatives, _ = choose_thresholds(p, as_negatives, current, rule, list(CLASSES))
    full, _ = choose_thresholds(p, y, current, rule, list(CLASSES))

    assert how["AF"] == rule
    assert with_blanks[i] == dropped[i] == pytest.approx(AF_EXPECTED[rule][0])
    assert negatives[i] == pytest.approx(AF_EXPECTED[rule][1])  # what reading them as 0 would give
    others = [k for k in range(len(CLASSES)) if k != i]
    np.testing.assert_array_equal(with_blanks[others], full[others])  # the other classes use every exam


# --- calibrate(cfg) end to end ------------------------------------------------------------------------

def calibrate_cfg(ckpt: Path, input: Path, out: Path, *overrides: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("calibrate", overrides=[f"ckpt={ckpt}", f"input={input}", f"out={out}", "device=cpu",
                                               "n_resamples=10", *overrides])


def write_source_checkpoint(path: Path) -> Path:
    """The tiny checkpoint of the test helpers, with non-default thresholds, a threshold source and the
    training state a Lightning checkpoint carries."""
    write_checkpoint(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    payload["state_dict"]["thresholds"] = torch.tensor(SOURCE_THRESHOLDS)
    payload["hyper_parameters"]["threshold_source"] = SOURCE_TAG
    payload["optimizer_states"] = [{"state": {}, "param_groups": []}]
    payload["loops"] = {"fit_loop": {}}
    payload["epoch"] = 7
    torch.save(payload, path)
    return path


def label_table(ids, y) -> list[dict]:
    return [{"exam_id": int(e), "patient_id": 100 + int(e),
             **{c: (None if np.isnan(y[k, j]) else int(y[k, j])) for j, c in enumerate(CLASSES)}}
            for k, e in enumerate(ids)]


class Calibration:
    """A labelled shard folder, the source checkpoint, and the source model's own probabilities for it."""

    N = 40

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ckpt = write_source_checkpoint(root / "source" / "tiny.ckpt")
        rng = np.random.default_rng(7)
        # small amplitudes keep the untrained network's outputs apart (unsaturated)
        self.x = (exam_block(self.N) * rng.uniform(0.002, 0.05, (self.N, 1, 1))).astype(np.float32)
        self.ids = np.arange(1001, 1001 + self.N)
        module = load_classifier(self.ckpt)
        with torch.no_grad():
            self.probs = module.predict_proba(torch.from_numpy(self.x).transpose(1, 2)).double().numpy()
        assert all(len(np.unique(self.probs[:, j])) == self.N for j in range(len(CLASSES)))
        ranks = self.probs.argsort(0).argsort(0) / self.N
        self.y = (rng.random(self.probs.shape) < 0.1 + 0.8 * ranks).astype(np.float64)
        self.y[:, CLASSES.index("LBBB")] = 0.0      # annotated, no positive: kept
        self.y[:, CLASSES.index("ST")] = np.nan     # not annotated: kept
        self.y[0, :] = np.nan                        # one exam without any label: not counted
        self.y[5:9, CLASSES.index("SB")] = np.nan    # partly annotated
        assert (np.nansum(self.y, 0)[[0, 1, 3, 4]] >= 5).all()

    def folder(self, name: str, y: np.ndarray | None = None, rows=None) -> Path:
        rows = slice(None) if rows is None else rows
        out = self.root / name
        write_shard_folder(out, self.ids[rows], x=self.x[rows], csv=False)
        write_csv(out / "exams.csv", label_table(self.ids[rows], (self.y if y is None else y)[rows]))
        return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Calibration:
    return Calibration(tmp_path_factory.mktemp("calibrate"))


def test_calibrate_writes_the_thresholds_of_the_models_own_predictions(setup, tmp_path):
    folder = setup.folder("full")
    out = tmp_path / "new.ckpt"
    source_bytes = file_bytes(setup.ckpt.parent)
    record = calibrate(calibrate_cfg(setup.ckpt, folder, out))

    # the source is untouched, the new checkpoint loads
    assert file_bytes(setup.ckpt.parent) == source_bytes
    new = load_classifier(out)
    before = np.array(SOURCE_THRESHOLDS)
    expected, how = choose_thresholds(setup.probs, setup.y, before, "max_f1", list(CLASSES))
    torch.testing.assert_close(new.thresholds, torch.tensor(expected, dtype=torch.float32), rtol=0, atol=1e-6)
    for j, c in enumerate(CLASSES):
        if c in ("LBBB", "ST"):
            assert new.thresholds[j].item() == pytest.approx(SOURCE_THRESHOLDS[j])
        else:  # independently: the best F1 of the source model's scores on the annotated exams
            ref, _, _ = brute_force_max_f1(setup.probs[:, j], setup.y[:, j])
            assert new.thresholds[j].item() == pytest.approx(ref, abs=1e-6)
            assert new.thresholds[j].item() != pytest.approx(SOURCE_THRESHOLDS[j])

    # everything but the thresholds is the source's
    src = torch.load(setup.ckpt, map_location="cpu", weights_only=True)
    dst = torch.load(out, map_location="cpu", weights_only=True)
    assert set(dst["state_dict"]) == set(src["state_dict"])
    for key, value in src["state_dict"].items():
        if key != "thresholds":
            assert torch.equal(dst["state_dict"][key], value), key
    assert {k: v for k, v in dst["hyper_parameters"].items() if k != "threshold_source"} == \
        {k: v for k, v in src["hyper_parameters"].items() if k != "threshold_source"}
    for key in ("optimizer_states", "loops"):  # nothing to resume from
        assert key not in dst
    x = torch.from_numpy(setup.x[:4]).transpose(1, 2)
    with torch.no_grad():
        torch.testing.assert_close(new.predict_proba(x), load_classifier(setup.ckpt).predict_proba(x), rtol=0, atol=0)

    # provenance
    labelled = setup.N - 1
    source = dst["hyper_parameters"]["threshold_source"]
    assert source.startswith(f"calibrated on {folder} (max_f1, {labelled} labelled exams")
    assert source.endswith(f"before: {SOURCE_TAG}")
    assert dst["calibration"] == record
    assert record["rule"] == "max_f1" and record["data"] == str(folder) and record["n_exams"] == labelled
    for j, c in enumerate(CLASSES):
        entry = record["per_class"][c]
        assert entry["before"] == pytest.approx(SOURCE_THRESHOLDS[j])
        assert entry["after"] == pytest.approx(new.thresholds[j].item())
        assert entry["how"] == how[c]
        assert entry["positives"] == int(np.sum(setup.y[:, j] == 1))
        assert entry["negatives"] == int(np.sum(setup.y[:, j] == 0))
    assert record["per_class"]["LBBB"]["how"] == "kept: no positives in the set"
    assert record["per_class"]["ST"]["how"] == "kept: not annotated in the set"

    # the Predictor of the new checkpoint uses the new thresholds
    predictor = Predictor.from_checkpoint(out, device="cpu")
    np.testing.assert_allclose(np.asarray(predictor.thresholds), new.thresholds.numpy())


def test_calibrate_leaves_empty_cells_out_exactly_like_dropping_the_exams(setup, tmp_path):
    j = CLASSES.index("AF")
    # AF labels by the rank of the source model's AF score (0 = highest), as in AF_SCORES above: ranks
    # 0-3 and 10-11 positive, 4-9 positive but left empty, 30 positive, the rest negative. Left out, the
    # best F1 keeps ranks 0-11 (F1 12/13); read as negatives, the six would drop it to rank 3 (8/11 > 12/19).
    y_full = setup.y.copy()
    order = [k for k in np.argsort(-setup.probs[:, j]) if k != 0]  # exam 0 stays without any label
    y_full[order, j] = 0.0
    y_full[order[:12] + [order[30]], j] = 1.0
    blank = order[4:10]
    y_blank = y_full.copy()
    y_blank[blank, j] = np.nan
    y_zero = y_full.copy()
    y_zero[blank, j] = 0.0
    rest = np.setdiff1d(np.arange(setup.N), blank)

    def thresholds(name, y, rows=None):
        out = tmp_path / f"{name}.ckpt"
        calibrate(calibrate_cfg(setup.ckpt, setup.folder(name, y, rows), out))
        return load_classifier(out).thresholds.numpy()

    blanked = thresholds("blank", y_blank)
    dropped = thresholds("dropped", y_full, rest)
    as_zero = thresholds("zero", y_zero)
    assert blanked[j] == dropped[j]
    assert blanked[j] == pytest.approx(setup.probs[order[11], j], abs=1e-7)
    assert as_zero[j] == pytest.approx(setup.probs[order[3], j], abs=1e-7)
    # the other classes' cells are the same in both folders and so are their thresholds
    others = [k for k in range(len(CLASSES)) if k != j]
    np.testing.assert_array_equal(blanked[others], as_zero[others])


def test_command_line_sensitivity_rule(setup, tmp_path):
    """The program as `python -m ecglit.calibrate ... rule=sensitivity:0.9` runs it (Hydra's grammar)."""
    from ecglit.utils.cli import register_open_mapping, run_hydra_program

    folder = setup.folder("cli")
    out = tmp_path / "sens.ckpt"
    run_hydra_program("ecglit.calibrate", "calibrate", calibrate, register=register_open_mapping,
                      argv=[f"ckpt={setup.ckpt}", f"input={folder}", f"out={out}", "rule=sensitivity:0.9",
                            "n_resamples=10", "device=cpu", f"hydra.run.dir={tmp_path / 'run'}"])
    got = load_classifier(out).thresholds.numpy()
    for j, c in enumerate(CLASSES):
        if c in ("LBBB", "ST"):
            assert got[j] == pytest.approx(SOURCE_THRESHOLDS[j])
            continue
        assert got[j] == pytest.approx(sensitivity_reference(setup.probs[:, j], setup.y[:, j], 0.9), abs=1e-6)
        assert sensitivity(setup.probs[:, j], setup.y[:, j], got[j] - 1e-6) >= 0.9
    payload = torch.load(out, map_location="cpu", weights_only=True)
    assert payload["calibration"]["rule"] == "sensitivity:0.9"
    assert "(sensitivity:0.9, 39 labelled exams" in payload["hyper_parameters"]["threshold_source"]


def test_specificity_one_in_the_checkpoint_labels_no_negative_positive(setup, tmp_path):
    """specificity:1.0 where a negative has the top score: the threshold lies above every score, and must
    still do so once stored in the checkpoint (float32) and applied by its Predictor."""
    j = CLASSES.index("AF")
    y = setup.y.copy()
    top = int(np.argmax(setup.probs[:, j]))
    y[top, j] = 0.0
    out = tmp_path / "spec.ckpt"
    calibrate(calibrate_cfg(setup.ckpt, setup.folder("spec1", y), out, "rule=specificity:1.0"))
    predictor = Predictor.from_checkpoint(out, device="cpu")
    labels = predictor.labels(predictor.predict_batch(setup.x))
    annotated = ~np.isnan(y[:, j])
    assert labels[annotated & (y[:, j] == 0), j].sum() == 0  # specificity 1 as the checkpoint applies it
    assert labels[:, j].sum() == 0


def test_nothing_calibratable_writes_nothing(setup, tmp_path):
    y = setup.y.copy()
    y[:, :] = np.where(np.isnan(y), np.nan, 0.0)  # annotated, but no positive anywhere
    out = tmp_path / "none.ckpt"
    with pytest.raises(DataError, match="no class could be calibrated") as info:
        calibrate(calibrate_cfg(setup.ckpt, setup.folder("negatives", y), out))
    assert "1dAVb kept: no positives in the set" in str(info.value)
    assert not out.exists()


def test_checkpoint_with_other_classes_is_refused(setup, tmp_path):
    other = write_checkpoint(tmp_path / "other.ckpt", class_names=["a", "b", "c"])
    out = tmp_path / "new.ckpt"
    with pytest.raises(DataError, match=r"predicts the classes \['a', 'b', 'c'\]"):
        calibrate(calibrate_cfg(other, setup.folder("other"), out))
    assert not out.exists()


def test_adapt_batchnorm_writes_the_set_statistics_and_thresholds_for_the_adapted_model(setup, tmp_path):
    folder = setup.folder("adapt")
    out = tmp_path / "adapted.ckpt"
    record = calibrate(calibrate_cfg(setup.ckpt, folder, out, "adapt_batchnorm=true"))

    expected = load_classifier(setup.ckpt)  # by hand: every exam of the set (labelled or not), one batch
    scale = float(expected.hparams.get("input_scale", 1.0))
    adapt_batchnorm(expected.net, [torch.from_numpy(setup.x).transpose(1, 2).contiguous() * scale])
    src = torch.load(setup.ckpt, map_location="cpu", weights_only=True)["state_dict"]
    dst = torch.load(out, map_location="cpu", weights_only=True)["state_dict"]
    moved = set()
    for key, value in expected.state_dict().items():
        if key == "thresholds":
            continue
        torch.testing.assert_close(dst[key], value, rtol=1e-5, atol=1e-6, msg=key)
        if not torch.equal(dst[key], src[key]):
            moved.add(key)
    assert moved and all(k.rsplit(".", 1)[1] in ("running_mean", "running_var", "num_batches_tracked")
                         for k in moved)
    with torch.no_grad():
        probs = expected.predict_proba(torch.from_numpy(setup.x).transpose(1, 2) * scale).double().numpy()
    thresholds, _ = choose_thresholds(probs, setup.y, np.array(SOURCE_THRESHOLDS), "max_f1", list(CLASSES))
    torch.testing.assert_close(load_classifier(out).thresholds, torch.tensor(thresholds, dtype=torch.float32),
                               rtol=0, atol=1e-5)
    assert record["batchnorm"] == {"adapted_on": str(folder), "n_exams": setup.N}
    assert "BatchNorm statistics from 40 exams" in load_classifier(out).hparams.threshold_source


def test_adapt_batchnorm_on_a_network_without_batchnorm_is_refused(setup, tmp_path):
    module = load_classifier(setup.ckpt)
    group = ECGClassifier(net={**module.hparams.net, "norm": "group"}, input_scale=module.hparams.input_scale)
    ckpt = save_classifier(group, tmp_path / "group.ckpt")
    out = tmp_path / "never.ckpt"
    with pytest.raises(ConfigError, match="has no BatchNorm layer"):
        calibrate(calibrate_cfg(ckpt, setup.folder("adapt_group"), out, "adapt_batchnorm=true"))
    assert not out.exists()

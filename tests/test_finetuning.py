"""Fine-tuning (ecglit/finetuning.py, `train.py experiment=finetune init_from=CKPT data=code15 data.root=DIR`):
what is copied from the pretrained model, what training may change, and what is refused.

The pretrained model is the tiny checkpoint of the test helpers with its weights perturbed (so that no
fresh initialisation can coincide with it), an input scale of its own and non-default thresholds.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.broken_inputs import TINY_NET, exam_block, write_checkpoint, write_csv, write_shard_folder
from helpers.hydra_config import compose_train
from sklearn.metrics import f1_score

from ecglit.constants import CLASSES
from ecglit.errors import ConfigError, DataError
from ecglit.finetuning import check_training_labels, initialise_from
from ecglit.models.checkpoint import load_classifier
from ecglit.models.ecg_module import ECGClassifier
from ecglit.training import train

SOURCE_THRESHOLDS = [0.31, 0.37, 0.43, 0.47, 0.53, 0.59]
SOURCE_SCALE = 0.02
SOURCE_TAG = "pretrained (test)"
N_EXAMS = 30


def write_source(path: Path) -> Path:
    write_checkpoint(path)
    payload = torch.load(path, map_location="cpu", weights_only=True)
    g = torch.Generator().manual_seed(99)
    for key, value in payload["state_dict"].items():
        if key.startswith("net.") and value.is_floating_point():
            noise = torch.randn(value.shape, generator=g)
            payload["state_dict"][key] = (value + 0.05 * noise if not key.endswith("running_var")
                                          else value * (1.5 + 0.1 * noise.abs()))
    payload["state_dict"]["thresholds"] = torch.tensor(SOURCE_THRESHOLDS)
    payload["hyper_parameters"]["input_scale"] = SOURCE_SCALE
    payload["hyper_parameters"]["threshold_source"] = SOURCE_TAG
    torch.save(payload, path)
    return path


def write_folder(folder: Path, x: np.ndarray, y: np.ndarray) -> Path:
    ids = np.arange(1, len(x) + 1)
    write_shard_folder(folder, ids, x=x, csv=False)
    rows = [{"exam_id": int(e), "patient_id": 500 + int(e),
             **{c: (None if np.isnan(y[k, j]) else int(y[k, j])) for j, c in enumerate(CLASSES)}}
            for k, e in enumerate(ids)]
    write_csv(folder / "exams.csv", rows)
    return folder


class Data:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.source = write_source(root / "pretrained" / "source.ckpt")
        rng = np.random.default_rng(3)
        self.x = exam_block(N_EXAMS, seed=3)
        self.y = (rng.random((N_EXAMS, len(CLASSES))) < 0.5).astype(np.float64)
        self.folder = write_folder(root / "labelled", self.x, self.y)

    def state(self) -> dict[str, torch.Tensor]:
        return torch.load(self.source, map_location="cpu", weights_only=True)["state_dict"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Data:
    return Data(tmp_path_factory.mktemp("finetune"))


def finetune(data: Data, run_dir: Path, *overrides: str, folder: Path | None = None) -> dict:
    cfg = compose_train(["experiment=finetune", f"init_from={data.source}", "data=code15",
                         f"data.root={folder or data.folder}", "logger=none", "trainer=cpu",
                         "trainer.precision=32-true", "callbacks.rich_progress_bar=null", "data.batch_size=8",
                         "seed=123", *overrides], run_dir)
    return {**train(cfg), "cfg": cfg}


def training_split(cfg) -> np.ndarray:
    """The labels of the training split of the data a run's config (as the run adapted it) names."""
    import hydra

    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("fit")
    return np.asarray(datamodule.dataset("train").labels)


def backbone(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k.startswith("net.") and not k.startswith("net.head.")}


# --- initialise_from ----------------------------------------------------------------------------------

@pytest.mark.parametrize("reset_head", [False, True])
def test_initialise_from_copies_the_backbone_and_resets_the_head_on_request(data, reset_head):
    source = load_classifier(data.source)
    torch.manual_seed(1)
    module = ECGClassifier(net=TINY_NET)
    initialise_from(module, source, reset_head=reset_head)

    src, got = source.state_dict(), module.state_dict()
    assert set(got) == set(src)
    for key, value in backbone(src).items():  # weights and BatchNorm statistics
        assert torch.equal(got[key], value), key
    assert torch.equal(got["thresholds"], torch.tensor(SOURCE_THRESHOLDS))
    head_w, head_b = got["net.head.weight"], got["net.head.bias"]
    if not reset_head:
        assert torch.equal(head_w, src["net.head.weight"]) and torch.equal(head_b, src["net.head.bias"])
        return
    assert not torch.isclose(head_w, src["net.head.weight"]).any()
    assert torch.equal(head_b, torch.zeros_like(head_b))
    # freshly drawn (Xavier-uniform): inside the bound, spread over it, unlike PyTorch's default Linear init
    fan_out, fan_in = head_w.shape
    bound = math.sqrt(6.0 / (fan_in + fan_out))
    assert head_w.abs().max() <= bound
    assert head_w.std().item() == pytest.approx(bound / math.sqrt(3.0), rel=0.1)
    assert head_w.abs().max() > 1.0 / math.sqrt(fan_in)


def test_reset_head_needs_a_linear_head(data):
    source = load_classifier(data.source)
    module = ECGClassifier(net=TINY_NET)
    module.net.head = torch.nn.Sequential(torch.nn.Linear(512, 6))
    source.net.head = torch.nn.Sequential(torch.nn.Linear(512, 6))
    with pytest.raises(ConfigError, match="reset_head needs a network with a linear `head`"):
        initialise_from(module, source, reset_head=True)


# --- train.py experiment=finetune ---------------------------------------------------------------------

def test_the_run_starts_from_the_pretrained_model(data, tmp_path):
    """Before any training step (train=false): the pretrained network, weights, thresholds, input scale."""
    result = finetune(data, tmp_path, "train=false", "test=false")
    module = result["module"]
    assert module.hparams.net == TINY_NET  # not the train config's default model (resnet_small)
    assert module.hparams.input_scale == SOURCE_SCALE
    assert result["cfg"].data.input_scale == SOURCE_SCALE  # the data is read at the model's scale
    for key, value in data.state().items():
        assert torch.equal(module.state_dict()[key], value), key
    # the label definitions are the data's (data=code15), the pretrained model recorded none
    assert module.hparams.label_definitions["name"] == "code"


@pytest.fixture(scope="module")
def slow_run(data, tmp_path_factory) -> dict:
    """One epoch with a tiny learning rate (backbone at experiment=finetune's 0.1 of it)."""
    return finetune(data, tmp_path_factory.mktemp("slow"), "trainer.max_epochs=1", "module.optimizer.lr=1e-6",
                    "thresholds_on=val")


def test_finetuned_weights_stay_next_to_the_pretrained_ones(data, slow_run):
    ckpt = Path(slow_run["checkpoint"])
    assert ckpt.is_file() and ckpt.parent.name == "checkpoints"
    tuned = load_classifier(ckpt)
    src = data.state()
    torch.manual_seed(123)
    fresh = ECGClassifier(net=TINY_NET).state_dict()
    for name, value in tuned.named_parameters():
        moved = (value.detach() - src[name]).abs().max().item()
        assert 0 < moved < 1e-4, name  # trained, but Adam moves a weight by about lr per step (3 steps)
        assert (fresh[name] - src[name]).abs().max().item() > 1e-2, name
    assert tuned.hparams.net == TINY_NET


def test_finetuned_checkpoint_thresholds_are_rechosen_on_validation(data, slow_run):
    tuned = load_classifier(slow_run["checkpoint"])
    assert tuned.hparams.threshold_source == "validation"
    assert tuned.hparams.input_scale == SOURCE_SCALE
    datamodule = slow_run["module"].trainer.datamodule
    val_ids = datamodule.exam_ids("val")
    rows = np.searchsorted(np.arange(1, N_EXAMS + 1), val_ids)
    assert len(rows) >= 4
    x = torch.from_numpy(data.x[rows]).transpose(1, 2) * SOURCE_SCALE
    with torch.no_grad():
        probs = tuned.predict_proba(x).numpy()
    y = data.y[rows]
    rechosen = 0
    for j, c in enumerate(CLASSES):
        t = tuned.thresholds[j].item()
        if y[:, j].sum() == 0:  # nothing to choose with: the pretrained threshold stays
            assert t == pytest.approx(SOURCE_THRESHOLDS[j]), c
            continue
        candidates = np.unique(probs[:, j])
        f1 = [f1_score(y[:, j].astype(int), (probs[:, j] >= s).astype(int)) for s in candidates]
        assert np.abs(candidates - t).min() < 1e-6, c  # one of the validation scores
        assert f1_score(y[:, j].astype(int), (probs[:, j] >= t - 1e-6).astype(int)) == pytest.approx(max(f1)), c
        rechosen += 1
    assert rechosen >= 3
    # the test report used the same thresholds
    assert slow_run["test_report"]["thresholds"] == pytest.approx(dict(zip(CLASSES, tuned.thresholds.tolist())))


def test_thresholds_on_train_val_are_rechosen_on_every_fitted_exam(data, tmp_path):
    run = finetune(data, tmp_path, "trainer.max_epochs=1", "module.optimizer.lr=1e-6", "thresholds_on=train_val")
    ckpt = Path(run["checkpoint"])
    assert ckpt.name.endswith("-train_val.ckpt") and ckpt.parent.name == "checkpoints"
    best = ckpt.with_name(ckpt.name.removesuffix("-train_val.ckpt") + ".ckpt")
    tuned, original = load_classifier(ckpt), load_classifier(best)  # same weights, thresholds re-chosen
    for (name, value), other in zip(tuned.state_dict().items(), original.state_dict().values()):
        if name != "thresholds":
            torch.testing.assert_close(value, other, rtol=0, atol=0, msg=name)
    datamodule = run["module"].trainer.datamodule
    fitted = np.concatenate([datamodule.exam_ids("train"), datamodule.exam_ids("val")])
    assert len(fitted) >= 12 and not set(fitted) & set(datamodule.exam_ids("test"))
    rows = np.searchsorted(np.arange(1, N_EXAMS + 1), fitted)
    with torch.no_grad():
        probs = tuned.predict_proba(torch.from_numpy(data.x[rows]).transpose(1, 2) * SOURCE_SCALE).numpy()
    y = data.y[rows]
    for j, c in enumerate(CLASSES):  # every class has positives among these exams
        t = tuned.thresholds[j].item()
        best_f1 = max(f1_score(y[:, j].astype(int), (probs[:, j] >= s).astype(int)) for s in np.unique(probs[:, j]))
        assert f1_score(y[:, j].astype(int), (probs[:, j] >= t).astype(int)) == pytest.approx(best_f1), c
    assert not np.allclose(tuned.thresholds.numpy(), original.thresholds.numpy())
    assert "train and val splits" in tuned.hparams.threshold_source
    assert run["test_report"]["thresholds"] == pytest.approx(dict(zip(CLASSES, tuned.thresholds.tolist())))


def test_thresholds_on_is_checked_before_training(data, tmp_path):
    with pytest.raises(ConfigError, match="thresholds_on must be val or train_val"):
        finetune(data, tmp_path, "thresholds_on=test")
    assert not (tmp_path / "run" / "checkpoints").exists()
    # exams generated on the fly cannot be read back to choose thresholds on: refused before training
    cfg = compose_train(["data.mode=on_the_fly", "data.n=40", "logger=none", "trainer=cpu", "trainer.max_epochs=1",
                         "callbacks.rich_progress_bar=null", "thresholds_on=train_val"], tmp_path / "synthetic")
    with pytest.raises(ConfigError, match="SyntheticDataModule does not keep them"):
        train(cfg)
    assert not (tmp_path / "synthetic" / "run" / "checkpoints").exists()


def test_backbone_learning_rate_is_scaled(slow_run):
    module = slow_run["module"]
    groups = module.trainer.optimizers[0].param_groups
    head = {id(p) for n, p in module.net.named_parameters() if n.startswith("head.")}
    body = {id(p) for n, p in module.net.named_parameters() if not n.startswith("head.")}
    assert len(groups) == 2
    assert {id(p) for p in groups[0]["params"]} == head and groups[0]["lr"] == pytest.approx(1e-6)
    assert {id(p) for p in groups[1]["params"]} == body and groups[1]["lr"] == pytest.approx(1e-7)


def test_frozen_backbone_does_not_move(data, tmp_path):
    result = finetune(data, tmp_path, "trainer.max_epochs=1", "module.freeze_backbone=true",
                      "module.optimizer.lr=1e-2")
    tuned = torch.load(result["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    src = data.state()
    for key, value in backbone(src).items():  # weights and BatchNorm statistics, bit for bit
        assert torch.equal(tuned[key], value), key
    assert (tuned["net.head.weight"] - src["net.head.weight"]).abs().max() > 1e-3
    assert not torch.equal(tuned["net.head.bias"], src["net.head.bias"])
    groups = result["module"].trainer.optimizers[0].param_groups
    head = {id(p) for n, p in result["module"].net.named_parameters() if n.startswith("head.")}
    assert {id(p) for g in groups for p in g["params"]} == head


# --- refused training sets ----------------------------------------------------------------------------

def test_a_class_without_positives_is_refused_unless_allowed(data, tmp_path):
    y = data.y.copy()
    y[:, CLASSES.index("LBBB")] = 0.0
    folder = write_folder(tmp_path / "no_lbbb", data.x, y)
    with pytest.raises(DataError, match=r"class\(es\) \['LBBB'\] have no positive exam in the training split"):
        finetune(data, tmp_path / "a", "train=false", "test=false", folder=folder)
    result = finetune(data, tmp_path / "b", "train=false", "test=false", "allow_missing_positives=true",
                      folder=folder)
    assert result["module"].hparams.net == TINY_NET


def test_a_class_left_empty_is_not_refused(data, tmp_path):
    """Cells not annotated (empty) are not negatives: a class nobody annotated trains on nothing."""
    y = data.y.copy()
    y[:, CLASSES.index("LBBB")] = np.nan
    folder = write_folder(tmp_path / "lbbb_empty", data.x, y)
    result = finetune(data, tmp_path / "run", "train=false", "test=false", folder=folder)
    labels = training_split(result["cfg"])
    assert np.isnan(labels[:, CLASSES.index("LBBB")]).all()
    assert not np.isnan(np.delete(labels, CLASSES.index("LBBB"), axis=1)).any()


def test_check_training_labels_directly():
    class Split:
        def __init__(self, labels):
            self.labels = labels

    class DM:
        root = Path("somewhere")

        def __init__(self, labels):
            self._split = Split(labels)

        def dataset(self, split):
            assert split == "train"
            return self._split

    good = np.array([[1, 0, np.nan, 1, 0, 1], [0, 1, np.nan, 0, 1, 0]], np.float32)
    check_training_labels(DM(good))
    bad = good.copy()
    bad[:, 4] = 0.0
    bad[0, 5] = np.nan  # ST: its one positive is now empty, the other cell is 0
    with pytest.raises(DataError, match=r"\['AF', 'ST'\]") as info:
        check_training_labels(DM(bad))
    assert "somewhere" in str(info.value) and "allow_missing_positives=true" in str(info.value)
    check_training_labels(DM(bad), allow_missing_positives=True)
    with pytest.raises(DataError, match="the training split has no labels"):
        check_training_labels(DM(np.full((2, 6), np.nan, np.float32)))


def test_pretrained_model_with_other_classes_is_refused(data, tmp_path):
    other = write_checkpoint(tmp_path / "other.ckpt", class_names=["a", "b", "c"])
    cfg = compose_train(["experiment=finetune", f"init_from={other}", "data=code15", f"data.root={data.folder}",
                         "logger=none", "train=false", "test=false"], tmp_path)
    with pytest.raises(DataError, match=r"predicts the classes \['a', 'b', 'c'\]") as info:
        train(cfg)
    assert "other.ckpt" in str(info.value)


def test_init_from_and_resume_together_are_refused(data, tmp_path):
    with pytest.raises(ConfigError, match="init_from starts a new run from pretrained weights; ckpt_path resumes"):
        finetune(data, tmp_path, f"ckpt_path={data.source}", "train=false", "test=false")

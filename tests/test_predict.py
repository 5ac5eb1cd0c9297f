"""predict.py / ecglit.inference: one row per exam, same probabilities from disk and from memory."""

from __future__ import annotations

import csv
import shutil
import sys
import types
from pathlib import Path

import h5py
import lightning
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from ecglit.constants import CLASSES, N_SAMPLES
from ecglit.data.importers.convert import convert
from ecglit.data.shards import ShardWriter
from ecglit.errors import ConfigError, DataError
from ecglit.inference import Predictor, open_source
from ecglit.inference.task import run_prediction
from ecglit.models.batchnorm import adapt_batchnorm
from ecglit.models.ecg_module import ECGClassifier

REPO = Path(__file__).resolve().parents[1]
TINY_NET = {"_target_": "ecglit.models.resnet.ResNet1d", "stem_filters": 4, "filters": [8],
            "seq_lengths": [64], "kernel_size": 7}
THRESHOLDS = [0.5, 0.45, 0.55, 0.5, 0.4, 0.6]
INPUT_SCALE = 0.5
RECORDS = ["torch_ecg/sample-data/cinc2021/E07500", "torch_ecg/sample-data/cinc2021/HR06000",
           "awwong1_physionet2020/tests/data/Q0001", "physionet_python_classifier_2020/input_directory/A0031"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    """A tiny ECGClassifier saved in Lightning's checkpoint format."""
    torch.manual_seed(0)
    module = ECGClassifier(net=TINY_NET, input_scale=INPUT_SCALE)
    module.thresholds.copy_(torch.tensor(THRESHOLDS))
    path = tmp_path_factory.mktemp("ckpt") / "tiny.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> tuple[Path, np.ndarray, list[int]]:
    """10 random exams in 3 shards (with sentinels), ids 101..110."""
    out = tmp_path_factory.mktemp("synthetic_shards")
    x = (np.random.default_rng(0).standard_normal((10, N_SAMPLES, 12)) * 3).astype(np.float32)
    ids = list(range(101, 111))
    with ShardWriter(out, shard_size=4) as writer:
        writer.add(x, [{"exam_id": i, **dict.fromkeys(CLASSES, False)} for i in ids])
    return out, x, ids


def predict_cfg(tmp_path: Path, ckpt: Path, input: Path, output: Path, *extra: str):
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return compose("predict", overrides=[f"ckpt={ckpt}", f"input={input}", f"output={output}",
                                             "progress=false", "device=cpu", *extra])


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def probs_of(rows: list[dict[str, str]]) -> np.ndarray:
    return np.array([[float(r[f"prob_{c}"]) for c in CLASSES] for r in rows])


def test_shards_on_disk_equal_in_memory(tmp_path: Path, ckpt: Path, synthetic) -> None:
    root, x, ids = synthetic
    out = tmp_path / "pred.csv"
    assert run_prediction(predict_cfg(tmp_path, ckpt, root, out, "batch_size=3")) == 10
    rows = read_rows(out)
    assert list(rows[0]) == ["exam_id", *(f"prob_{c}" for c in CLASSES), *(f"label_{c}" for c in CLASSES)]
    assert [int(r["exam_id"]) for r in rows] == ids  # sentinel rows left out, shard order kept
    predictor = Predictor.from_checkpoint(ckpt, batch_size=4, device="cpu")
    assert predictor.input_scale == INPUT_SCALE
    mem_ids, mem_probs = predictor.predict_arrays([(ids[:7], x[:7]), (ids[7:], x[7:])])
    assert mem_ids == ids
    np.testing.assert_allclose(probs_of(rows), mem_probs, rtol=1e-5, atol=1e-6)
    labels = np.array([[int(r[f"label_{c}"]) for c in CLASSES] for r in rows])
    np.testing.assert_array_equal(labels, (mem_probs >= np.array(THRESHOLDS, np.float32)).astype(int))
    # independent of the Predictor: the module on (B, 12, 4096) * input_scale
    module = ECGClassifier.load_from_checkpoint(ckpt, weights_only=True, map_location="cpu").eval()
    with torch.no_grad():
        direct = torch.sigmoid(module(torch.from_numpy(x).transpose(1, 2) * INPUT_SCALE)).numpy()
    np.testing.assert_allclose(mem_probs, direct, rtol=1e-5, atol=1e-6)


def test_code_test_hdf5_ids_are_rows(tmp_path: Path, ckpt: Path, synthetic) -> None:
    _, x, _ = synthetic
    with h5py.File(tmp_path / "ecg_tracings.hdf5", "w") as f:
        f["tracings"] = x[:5]
    out = tmp_path / "pred.csv"
    run_prediction(predict_cfg(tmp_path, ckpt, tmp_path / "ecg_tracings.hdf5", out, "input_scale=1.0"))
    rows = read_rows(out)
    assert [int(r["exam_id"]) for r in rows] == [0, 1, 2, 3, 4]
    predictor = Predictor.from_checkpoint(ckpt, input_scale=1.0, device="cpu")
    np.testing.assert_allclose(probs_of(rows), predictor.predict_batch(x[:5]), rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def record_folder(shared_dir: Path, tmp_path_factory) -> Path:
    realdata = shared_dir / "realdata"
    if not realdata.is_dir():
        pytest.skip(f"real records not found at {realdata}")
    folder = tmp_path_factory.mktemp("records")
    for stem in RECORDS:
        for ext in (".hea", ".mat"):
            shutil.copy(realdata / (stem + ext), folder)
    return folder


def test_converted_shards_and_record_folder_agree(tmp_path: Path, ckpt: Path, record_folder: Path) -> None:
    convert(record_folder, tmp_path / "shards")
    exams = read_rows(tmp_path / "shards/exams.csv")
    run_prediction(predict_cfg(tmp_path, ckpt, tmp_path / "shards", tmp_path / "from_shards.csv"))
    run_prediction(predict_cfg(tmp_path, ckpt, record_folder, tmp_path / "from_records.csv", "batch_size=3"))
    from_shards = read_rows(tmp_path / "from_shards.csv")
    from_records = read_rows(tmp_path / "from_records.csv")
    assert len(from_shards) == len(exams) == len(RECORDS)  # one row per exam
    assert [r["exam_id"] for r in from_shards] == [e["exam_id"] for e in exams]
    assert [r["record"] for r in from_records] == [e["record"] for e in exams]
    assert list(from_records[0])[-3:] == ["source_file", "source", "flags"]
    np.testing.assert_allclose(probs_of(from_records), probs_of(from_shards), rtol=1e-5, atol=1e-6)


def test_record_stream_is_batched(record_folder: Path) -> None:
    source = open_source(record_folder, batch_size=3, long_records="windows")
    batches = list(source.batches())
    assert [len(b.ids) for b in batches] == [3, 2]  # A0031 is 22 s: two windows A0031#0, A0031#1
    assert batches[0].ids[:2] == ["A0031#0", "A0031#1"]
    assert all(b.x.shape[1:] == (N_SAMPLES, 12) and b.x.dtype == np.float32 for b in batches)


def test_plots_with_predictions(tmp_path: Path, ckpt: Path, synthetic, monkeypatch) -> None:
    root, _, _ = synthetic
    calls = []
    try:
        from ecglit.plotting.ecg12 import plot_ecg12  # noqa: F401  (the real one, when present)
        real = True
    except ImportError:
        real = False
        fake = types.ModuleType("ecglit.plotting.ecg12")

        def plot_ecg12(signal, title="", path=None, **kw):
            calls.append((signal.shape, title))
            Path(path).write_bytes(b"png")

        fake.plot_ecg12 = plot_ecg12
        monkeypatch.setitem(sys.modules, "ecglit.plotting", types.ModuleType("ecglit.plotting"))
        monkeypatch.setitem(sys.modules, "ecglit.plotting.ecg12", fake)
    run_prediction(predict_cfg(tmp_path, ckpt, root, tmp_path / "p.csv", "plot=true"))
    pngs = sorted(p.name for p in (tmp_path / "p_plots").glob("*.png"))
    assert pngs == sorted(f"{i}.png" for i in range(101, 111))
    if not real:
        assert all(shape == (N_SAMPLES, 12) for shape, _ in calls)
        assert calls[0][1].startswith("101: ")


def test_bad_checkpoint_and_input(tmp_path: Path, ckpt: Path) -> None:
    with pytest.raises(DataError, match="checkpoint not found"):
        run_prediction(predict_cfg(tmp_path, tmp_path / "none.ckpt", tmp_path, tmp_path / "p.csv"))
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="junk.ckpt"):
        Predictor.from_checkpoint(tmp_path / "junk.ckpt")
    with pytest.raises(DataError, match="no records found"):
        run_prediction(predict_cfg(tmp_path, ckpt, tmp_path / "empty_dir_that_exists", tmp_path / "p.csv")
                       if (tmp_path / "empty_dir_that_exists").mkdir() is None else None)
    with pytest.raises(ConfigError, match="backend"):
        Predictor.from_checkpoint(ckpt, backend="nope")


def _adapted_probs(ckpt: Path, adapt_x: np.ndarray, x: np.ndarray, batch_size: int) -> np.ndarray:
    """Independent of predict.py: the checkpoint's network, its BatchNorm statistics adapted on ``adapt_x``
    in batches of ``batch_size`` (the first, training-mode pass depends a little on the batching)."""
    module = ECGClassifier.load_from_checkpoint(ckpt, weights_only=True, map_location="cpu").eval()
    net_x = torch.from_numpy(adapt_x).transpose(1, 2) * INPUT_SCALE
    adapt_batchnorm(module.net, list(net_x.split(batch_size)))
    with torch.no_grad():
        return torch.sigmoid(module(torch.from_numpy(x).transpose(1, 2) * INPUT_SCALE)).numpy()


def test_adapt_batchnorm_on_the_input_or_on_other_exams(tmp_path: Path, ckpt: Path, synthetic) -> None:
    root, x, ids = synthetic
    plain, adapted = tmp_path / "plain.csv", tmp_path / "adapted.csv"
    run_prediction(predict_cfg(tmp_path, ckpt, root, plain))
    # shards of 4 re-batched to 3 for the adaptation passes
    run_prediction(predict_cfg(tmp_path, ckpt, root, adapted, "adapt_batchnorm=true", "batch_size=3"))
    rows = read_rows(adapted)
    assert [int(r["exam_id"]) for r in rows] == ids
    expected = _adapted_probs(ckpt, x, x, 3)
    np.testing.assert_allclose(probs_of(rows), expected, rtol=1e-4, atol=1e-5)
    assert np.abs(probs_of(rows) - probs_of(read_rows(plain))).max() > 1e-2  # it did change the model
    # adapt_on: statistics from other exams (here 6 louder ones), predictions for the input
    other = tmp_path / "other"
    louder = (np.random.default_rng(1).standard_normal((6, N_SAMPLES, 12)) * 9).astype(np.float32)
    with ShardWriter(other, shard_size=4) as writer:
        writer.add(louder, [{"exam_id": i, **dict.fromkeys(CLASSES, False)} for i in range(1, 7)])
    run_prediction(predict_cfg(tmp_path, ckpt, root, tmp_path / "on_other.csv", "adapt_batchnorm=true",
                               f"adapt_on={other}"))
    on_other = probs_of(read_rows(tmp_path / "on_other.csv"))
    np.testing.assert_allclose(on_other, _adapted_probs(ckpt, louder, x, 64), rtol=1e-4, atol=1e-5)
    assert np.abs(on_other - expected).max() > 1e-2


def test_adapt_batchnorm_errors(tmp_path: Path, ckpt: Path, synthetic) -> None:
    root, _, _ = synthetic
    with pytest.raises(DataError, match="nowhere.*does not exist"):
        run_prediction(predict_cfg(tmp_path, ckpt, root, tmp_path / "p.csv", "adapt_batchnorm=true",
                                   f"adapt_on={tmp_path / 'nowhere'}"))
    assert not (tmp_path / "p.csv").exists()
    torch.manual_seed(0)
    group = ECGClassifier(net={**TINY_NET, "norm": "group"}, input_scale=INPUT_SCALE)
    path = tmp_path / "group.ckpt"
    torch.save({"state_dict": group.state_dict(), "hyper_parameters": dict(group.hparams),
                "pytorch-lightning_version": lightning.__version__}, path)
    with pytest.raises(ConfigError, match="no BatchNorm layer"):
        run_prediction(predict_cfg(tmp_path, path, root, tmp_path / "p.csv", "adapt_batchnorm=true"))

"""Import of the paper's Keras HDF5 weights, proven against Keras itself (Keras 3 on JAX, no TensorFlow).

The reference is the paper's network written in Keras from its description (helpers/keras_models.py),
with random weights and BatchNorm statistics, saved as HDF5 and also rewritten in Keras 2.2.4's
layout (the published files'). The converted ResNet1d must give Keras's own probabilities to 1e-5;
this also proves that resnet_paper is the paper's network, TensorFlow's 'same' padding included.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
from helpers.keras_models import (
    as_keras2,
    build_paper_keras,
    import_keras,
    keras2_names,
    randomize,
    read_keras3,
    write_keras2,
)
from omegaconf import OmegaConf

from ecglit.constants import PAPER_THRESHOLDS
from ecglit.data.importers import find_records, load_record, standardize
from ecglit.data.synthetic import generate_batch
from ecglit.errors import DataError
from ecglit.models.ecg_module import ECGClassifier
from ecglit.models.from_keras import classifier_from_keras, keras_state_dict, main, paper_net_config
from ecglit.models.resnet import ResNet1d

REPO = Path(__file__).resolve().parents[1]
TOL = 1e-5
BATCH = 8  # every Keras predict runs at this batch size: one compilation


@dataclass
class PaperKeras:
    model: Any
    roles: dict[str, Any]
    path: Path  # the Keras 3 .h5
    synthetic: np.ndarray  # (6, 4096, 12) exams in 1e-4 V
    synthetic_probs: np.ndarray  # Keras's outputs on them

    def predict(self, x: np.ndarray) -> np.ndarray:
        padded = np.concatenate([x, np.zeros((-len(x) % BATCH, *x.shape[1:]), np.float32)])
        return self.model.predict(padded, batch_size=BATCH, verbose=0)[:len(x)]


@pytest.fixture(scope="session")
def keras() -> Any:
    return import_keras()


@pytest.fixture(scope="session")
def paper_keras(keras: Any, tmp_path_factory: pytest.TempPathFactory) -> PaperKeras:
    model, roles = build_paper_keras(keras)
    randomize(keras, model, roles, generate_batch(seed=11, indices=range(4))[0], seed=2020)
    path = tmp_path_factory.mktemp("keras") / "paper_keras3.h5"
    model.save(path)
    synthetic = generate_batch(seed=3, indices=range(6))[0]
    ref = PaperKeras(model, roles, path, synthetic, np.empty(0))
    ref.synthetic_probs = ref.predict(synthetic)
    return ref


@pytest.fixture(scope="session")
def paper_classifier(paper_keras: PaperKeras) -> ECGClassifier:
    # input_scale is recorded for the Predictor; the module itself does not apply it
    return classifier_from_keras(paper_keras.path, input_scale=0.1)


def torch_probs(module: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module.predict_proba(torch.from_numpy(x).transpose(1, 2)).numpy()


def keras_role_to_resnet(role: str) -> str | None:
    """The builder's role names -> ResNet1d state-dict prefixes (None: no weights)."""
    fixed = {"stem.conv": "stem.0", "stem.bn": "stem.1", "dense": "head"}
    if role in fixed:
        return fixed[role]
    unit, _, rest = role.partition(".")
    table = {"skip": "skip_conv", "conv1": "conv1", "conv2": "conv2", "1.bn": "bn1", "2.bn": "bn2"}
    return f"units.{int(unit[1:]) - 1}.{table[rest]}" if rest in table else None


# --- the outputs ---------------------------------------------------------------------------------

def test_keras3_file_gives_keras_outputs_on_synthetic_exams(paper_keras: PaperKeras,
                                                            paper_classifier: ECGClassifier) -> None:
    ref = paper_keras.synthetic_probs
    # the reference has power: probabilities spread over (0, 1), not saturated or constant
    assert ((ref > 0.02) & (ref < 0.98)).mean() > 0.5 and ref.std(axis=0).min() > 0.02
    assert np.abs(torch_probs(paper_classifier, paper_keras.synthetic) - ref).max() <= TOL
    # and the tolerance discriminates: PyTorch-style padding (8 left, 7 right) instead of TF's (7, 8)
    stem_conv = paper_classifier.net.stem[0]
    try:
        stem_conv.same_pads = (8, 7)
        assert np.abs(torch_probs(paper_classifier, paper_keras.synthetic) - ref).max() > 100 * TOL
    finally:
        stem_conv.same_pads = (7, 8)


@pytest.fixture(scope="session")
def real_exams(realdata: Path) -> np.ndarray:
    """An exam from each of five real records: CinC 2021 (Georgia, PTB-XL, Chapman), CPSC 2018, PTB-XL lr."""
    cinc = {ref.name[:2]: ref for ref in find_records(realdata / "torch_ecg/sample-data/cinc2021")}
    cpsc = find_records(realdata / "torch_ecg/sample-data/cpsc2018")[0]
    ptbxl = realdata / "ecg_image_kit/SampleData/PTB_XL_data/00001_lr.hea"
    refs = [cinc["E0"], cinc["HR"], cinc["JS"], cpsc, ptbxl]
    return np.stack([standardize(load_record(ref)).exams[0] for ref in refs])


def test_keras3_file_gives_keras_outputs_on_real_records(
        paper_keras: PaperKeras, paper_classifier: ECGClassifier, real_exams: np.ndarray) -> None:
    ref = paper_keras.predict(real_exams)
    assert ref.std(axis=0).max() > 0.02
    got = torch_probs(paper_classifier, real_exams)
    assert np.abs(got - ref).max() <= TOL


def test_keras2_layout_gives_the_same_outputs(paper_keras: PaperKeras, tmp_path: Path) -> None:
    path = write_keras2(as_keras2(read_keras3(paper_keras.path)), tmp_path / "model.hdf5")
    with h5py.File(path) as f:  # the layout of the published files
        assert f["model_weights/conv1d_1"].attrs["weight_names"].tolist() == [b"conv1d_1/kernel:0"]
        assert f["model_weights/conv1d_1/conv1d_1/kernel:0"].shape == (16, 12, 64)
    state, info = keras_state_dict(path)
    assert (info["keras_version"], info["backend"], info["node_format"]) == ("2.2.4", "tensorflow", "keras2")
    assert info["layers"]["stem.0"] == "conv1d_1" and info["layers"]["head"] == "dense_1"
    kwargs = {k: v for k, v in paper_net_config().items() if k != "_target_"}
    net = ResNet1d(**{**kwargs, "init": "torch_default"})
    net.load_state_dict(state)
    got = torch.sigmoid(net.eval()(torch.from_numpy(paper_keras.synthetic).transpose(1, 2))).detach().numpy()
    assert np.abs(got - paper_keras.synthetic_probs).max() <= TOL


def test_layers_are_found_through_the_graph(paper_keras: PaperKeras, tmp_path: Path) -> None:
    """Each ResNet1d module gets the Keras layer the builder made for it, also when the names lie
    (shuffled among layers of the same class) and the layer lists are in random order."""
    state, info = keras_state_dict(paper_keras.path)
    expected = {keras_role_to_resnet(r): layer.name for r, layer in paper_keras.roles.items()
                if keras_role_to_resnet(r)}
    assert info["layers"] == expected
    assert info["n_layers"] == 50 and info["n_values"] == 6_425_638  # the paper's Keras total
    assert info["dropout_rates"] == [0.2] * 8

    graph = read_keras3(paper_keras.path)
    rng = random.Random(0)
    rename = {}
    for cls in {e["class_name"] for e in graph.layers}:
        names = [e["name"] for e in graph.layers if e["class_name"] == cls]
        rename.update(zip(names, rng.sample(names, len(names)), strict=True))
    lying = as_keras2(graph, rename)
    rng.shuffle(lying.layers)
    order = [e["name"] for e in lying.layers]
    rng.shuffle(order)
    lying_path = write_keras2(lying, tmp_path / "lying.h5", layer_order=order)
    scrambled_state, scrambled_info = keras_state_dict(lying_path)
    assert scrambled_info["layers"] == {k: rename[v] for k, v in info["layers"].items()}
    assert scrambled_state.keys() == state.keys()
    assert all(torch.equal(scrambled_state[k], state[k]) for k in state)


def test_classifier_holds_the_paper_setup(paper_classifier: ECGClassifier) -> None:
    module = paper_classifier
    assert not module.training
    assert module.thresholds.tolist() == pytest.approx(PAPER_THRESHOLDS)
    hp = module.hparams
    assert hp.net == OmegaConf.to_container(OmegaConf.load(REPO / "conf/model/resnet_paper.yaml"))
    assert hp.input_scale == 0.1 and hp.select_thresholds_on_val is False


# --- refusals ------------------------------------------------------------------------------------

def test_a_kernel_17_keras_model_is_refused_at_its_first_layer(keras: Any, tmp_path: Path) -> None:
    model, roles = build_paper_keras(keras, kernel_size=17)
    model.save(tmp_path / "k17.h5")
    with pytest.raises(DataError) as err:
        keras_state_dict(tmp_path / "k17.h5")
    msg = str(err.value)
    assert msg.startswith(f"{tmp_path / 'k17.h5'}: layer '{roles['stem.conv'].name}' (Conv1D")
    assert "kernel_size 17, the paper's network has 16" in msg and "\n" not in msg


def _edit(graph, name: str, **config: Any) -> None:
    graph.layer(name)["config"].update(config)


def _set_weight(graph, name: str, role: str, array: np.ndarray) -> None:
    graph.weights[name] = [(r, array if r == role else a) for r, a in graph.weights[name]]


def _add_dense(graph, src: str) -> None:
    """An extra Dense reading ``src``, not a model output."""
    graph.layers.append({"name": "extra_dense", "class_name": "Dense", "config": {"units": 3},
                         "inbound": [src]})
    graph.weights["extra_dense"] = []


# (what differs, edit of the Keras 2 graph given role -> name, role of the layer named, cause)
WRONG_GRAPHS = [
    ("filters", lambda g, n: (_edit(g, n["u3.conv1"], filters=250),
                              _set_weight(g, n["u3.conv1"], "kernel", np.zeros((16, 196, 250), np.float32))),
     "u3.conv1", "filters 250, the paper's network has 256"),
    ("stride", lambda g, n: _edit(g, n["u1.conv2"], strides=[2]), "u1.conv2", "strides 2"),
    ("missing ReLU", lambda g, n: g.remove(n["stem.relu"]), None, "the stem ReLU): found after"),
    ("extra layer", lambda g, n: g.insert_after(n["u2.1.bn"], {
        "name": "extra_tanh", "class_name": "Activation", "config": {"activation": "tanh"}}), None,
     "'extra_tanh' (Activation, where the paper's network has the first ReLU of residual unit 2): "
     "activation 'tanh'"),
    ("input shape", lambda g, n: _edit(g, "signal", batch_input_shape=[None, 5000, 12]), None,
     "layer 'signal' (InputLayer, where the paper's network has the input): input shape (5000, 12)"),
    ("outputs", lambda g, n: (_edit(g, n["dense"], units=5),
                              _set_weight(g, n["dense"], "kernel", np.zeros((5120, 5), np.float32)),
                              _set_weight(g, n["dense"], "bias", np.zeros(5, np.float32))),
     "dense", "units 5, the paper's network has 6"),
    ("linear head", lambda g, n: _edit(g, n["dense"], activation="linear"), "dense", "activation 'linear'"),
    ("epsilon", lambda g, n: _edit(g, n["u4.2.bn"], epsilon=1e-5), "u4.2.bn", "epsilon 1e-05"),
    ("kernel shape",
     lambda g, n: _set_weight(g, n["stem.conv"], "kernel", np.zeros((17, 12, 64), np.float32)), "stem.conv",
     "weight 'kernel' has shape (17, 12, 64), the paper's network (16, 12, 64)"),
    ("weights missing", lambda g, n: g.weights.update({n["u2.skip"]: []}), "u2.skip", "holds weights none"),
    ("second head", lambda g, n: _add_dense(g, n["flatten"]), None,
     "'flatten_1' feeds 2 Dense layers ['dense_1', 'extra_dense'], the paper's network one"),
    ("dangling layer", lambda g, n: _add_dense(g, n["dense"]), None,
     "layer 'extra_dense' (Dense, reading ['dense_1']) is not part of the paper's network"),
    ("two outputs", lambda g, n: g.outputs.append(n["u4.add"]), None, "outputs ['dense_1', 'add_4']"),
]


@pytest.mark.parametrize(("edit", "role", "cause"), [w[1:] for w in WRONG_GRAPHS],
                         ids=[w[0] for w in WRONG_GRAPHS])
def test_a_graph_that_differs_is_refused_naming_the_first_differing_layer(
        paper_keras: PaperKeras, tmp_path: Path, edit, role: str | None, cause: str) -> None:
    keras3 = read_keras3(paper_keras.path)
    keras2 = keras2_names(keras3)
    graph = as_keras2(keras3, keras2)
    names = {r: keras2[layer.name] for r, layer in paper_keras.roles.items()}
    edit(graph, names)
    path = write_keras2(graph, tmp_path / "wrong.h5")
    with pytest.raises(DataError) as err:
        keras_state_dict(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: ") and "\n" not in msg
    assert cause in msg
    if role is not None:
        assert f"layer '{names[role]}' " in msg


def test_files_that_are_not_keras_models_get_one_clear_error(paper_keras: PaperKeras, tmp_path: Path) -> None:
    text = tmp_path / "model.hdf5"
    text.write_text("not a model\n")
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(paper_keras.path.read_bytes()[:100_000])
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["tracings"] = np.zeros((2, 4096, 12), np.float32)
    no_weights = tmp_path / "no_weights.h5"
    with h5py.File(paper_keras.path) as src, h5py.File(no_weights, "w") as f:
        f.attrs["model_config"] = src.attrs["model_config"]
    keras2 = as_keras2(read_keras3(paper_keras.path))
    weights_only = write_keras2(keras2, tmp_path / "weights_only.h5", weights_only=True)
    archive = tmp_path / "model.keras"
    paper_keras.model.save(archive)
    cases = {text: "not an HDF5 file", truncated: "unreadable HDF5 (truncated or corrupt file?)",
             plain: "not a Keras model file: no 'model_config'",
             no_weights: "has a model_config but no 'model_weights' group",
             weights_only: "a weights-only file", archive: "a Keras 3 '.keras' archive",
             tmp_path / "missing.h5": "no such file"}
    for path, cause in cases.items():
        with pytest.raises(DataError) as err:
            keras_state_dict(path)
        assert str(err.value).startswith(f"{path}: {cause}") and "\n" not in str(err.value)


# --- the command line ----------------------------------------------------------------------------

def test_cli_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "model.hdf5"
    bad.write_text("not a model\n")
    out = tmp_path / "paper.ckpt"
    proc = subprocess.run([sys.executable, "-m", "ecglit.models.from_keras", str(bad), str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"python -m ecglit.models.from_keras: error: {bad}: not an HDF5 file (expected a Keras model saved as HDF5, "
        f"like the paper's model.hdf5)"]
    assert not out.exists() and not list(tmp_path.glob(".*tmp"))


@pytest.mark.parametrize(("args", "cause", "code"), [
    (["a_file/paper.ckpt"], "a_file: cannot create the output folder (File exists)", 1),
    (["paper.ckpt", "--input-scale", "-1"], "input_scale must be a positive finite number, got -1.0", 2),
], ids=["folder is a file", "negative scale"])
def test_cli_refuses_an_unusable_output_or_scale_before_reading(tmp_path: Path, args: list[str], cause: str,
                                                               code: int, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "a_file").write_text("")
    assert main([str(tmp_path / "absent.h5"), str(tmp_path / args[0]), *args[1:]]) == code
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("python -m ecglit.models.from_keras: error: ") and cause in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_cli_keeps_an_existing_output_and_overwrites_it_on_request(
        paper_keras: PaperKeras, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "paper.ckpt"
    out.write_bytes(b"an earlier checkpoint")
    assert main([str(paper_keras.path), str(out)]) == 1
    assert capsys.readouterr().err.strip() == (f"python -m ecglit.models.from_keras: error: {out}: already "
                                               f"exists; nothing was replaced (pass --overwrite to replace it)")
    assert out.read_bytes() == b"an earlier checkpoint"

    assert main([str(paper_keras.path), str(out), "--input-scale", "0.1", "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["paper.ckpt"]  # no temporary file left
    loaded = ECGClassifier.load_from_checkpoint(out, weights_only=True, map_location="cpu").eval()
    assert loaded.hparams.input_scale == 0.1
    assert loaded.thresholds.tolist() == pytest.approx(PAPER_THRESHOLDS)
    assert np.abs(torch_probs(loaded, paper_keras.synthetic) - paper_keras.synthetic_probs).max() <= TOL
    checkpoint = torch.load(out, weights_only=True)
    assert json.loads(json.dumps(checkpoint["hyper_parameters"])) == checkpoint["hyper_parameters"]  # plain
    assert checkpoint["keras_source"]["keras_version"].startswith("3.")


def test_predict_py_takes_the_keras_file_itself(paper_keras: PaperKeras, tmp_path: Path) -> None:
    """``predict.py ckpt=model.hdf5 input=<shards>``: the CSV holds Keras's own probabilities (input scale
    1.0, the stored values as the paper's predict.py feeds them) and labels at the paper's thresholds."""
    import pandas as pd
    from helpers.broken_inputs import write_shard_folder

    from ecglit.configs import compose
    from ecglit.inference.task import run_prediction

    path = write_keras2(as_keras2(read_keras3(paper_keras.path)), tmp_path / "model.hdf5")
    x = paper_keras.synthetic
    write_shard_folder(tmp_path / "in", ids=range(11, 11 + len(x)), x=x)
    out = tmp_path / "predictions.csv"
    cfg = compose("predict", [f"ckpt={path}", f"input={tmp_path / 'in'}", f"output={out}", "progress=false",
                              "backend=eager", "precision=32", "device=cpu"])
    assert run_prediction(cfg) == len(x)
    table = pd.read_csv(out)
    probs = table[[f"prob_{c}" for c in ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")]].to_numpy()
    assert list(table["exam_id"]) == list(range(11, 11 + len(x)))
    assert np.abs(probs - paper_keras.synthetic_probs).max() <= 1e-5 + 5e-6  # CSV keeps 6 significant digits
    labels = table[[f"label_{c}" for c in ("1dAVb", "RBBB", "LBBB", "SB", "AF", "ST")]].to_numpy()
    np.testing.assert_array_equal(labels, (probs >= np.asarray(PAPER_THRESHOLDS)).astype(int))

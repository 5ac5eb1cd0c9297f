"""Reference Keras models of the paper's network, and Keras 2.2.4-layout HDF5 files, for the importer's tests.

The Keras network is written here from the paper's description (Ribeiro et al., Nat Commun 2020, and
the public ``model.py`` of antonior92/automatic-ecg-diagnosis), not from ecglit's code:

    signal (4096, 12) -> Conv1D(64, 16, 'same', no bias) -> BN -> ReLU;  x = y = that
    4 residual units (samples, filters) = (1024, 128), (256, 196), (64, 256), (16, 320), each:
        skip: y -> MaxPooling1D(ds, strides=ds, 'same') -> Conv1D(filters, 1, no bias) if filters change
        main: x -> Conv1D(filters, 16, 'same') -> BN -> ReLU -> Dropout -> Conv1D(filters, 16, stride ds)
        x = main + skip; y = x; x = Dropout(ReLU(BN(x)))
    Flatten -> Dense(6, sigmoid)

Files: Keras 3 writes its own legacy ``.h5``; :func:`write_keras2` rewrites a graph with h5py in the
exact layout of Keras 2.2.4 (the paper's files): bytes attributes, list inbound nodes, ``conv1d_1``
names and ``model_weights/conv1d_1/conv1d_1/kernel:0`` datasets.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

PAPER_UNITS = ((1024, 128), (256, 196), (64, 256), (16, 320))  # (samples out, filters)


def import_keras() -> Any:
    """Keras 3 on the JAX backend (skips when the dev extra is not installed)."""
    os.environ["KERAS_BACKEND"] = "jax"
    pytest.importorskip("jax", reason="jax (dev extra) builds the reference Keras models")
    keras = pytest.importorskip("keras", reason="keras (dev extra) builds the reference Keras models")
    if keras.backend.backend() != "jax":
        pytest.skip(f"keras was already imported with the {keras.backend.backend()} backend")
    return keras


def build_paper_keras(keras: Any, kernel_size: int = 16, units: tuple = PAPER_UNITS,
                      n_classes: int = 6) -> tuple[Any, dict[str, Any]]:
    """The paper's network in Keras 3, and {role: layer}: stem.conv, u1.conv1, u1.1.bn, u1.add, ..."""
    from keras import layers

    keras.utils.clear_session()  # fresh layer names: conv1d, conv1d_1, ...
    # Zero initial kernels: randomize() sets every weight, and Keras's random initializers cost ~25 s
    # of JAX compilation on a CPU. (The paper initialises with he_normal; irrelevant to a forward pass.)
    conv = functools.partial(layers.Conv1D, padding="same", use_bias=False, kernel_initializer="zeros")
    roles: dict[str, Any] = {}

    def add(role: str, layer: Any, *inputs: Any) -> Any:
        roles[role] = layer
        return layer(*inputs)

    def bn_relu_drop(prefix: str, t: Any, drop: bool) -> Any:
        t = add(f"{prefix}.bn", layers.BatchNormalization(), t)
        t = add(f"{prefix}.relu", layers.Activation("relu"), t)
        return add(f"{prefix}.drop", layers.Dropout(0.2), t) if drop else t

    signal = keras.Input(shape=(4096, 12), name="signal")
    x = add("stem.conv", conv(64, kernel_size), signal)
    x = y = bn_relu_drop("stem", x, drop=False)
    for i, (n_out, filters) in enumerate(units, start=1):
        ds = y.shape[1] // n_out
        skip = add(f"u{i}.pool", layers.MaxPooling1D(ds, strides=ds, padding="same"), y)
        if y.shape[2] != filters:
            skip = add(f"u{i}.skip", conv(filters, 1), skip)
        x = add(f"u{i}.conv1", conv(filters, kernel_size), x)
        x = bn_relu_drop(f"u{i}.1", x, drop=True)
        x = add(f"u{i}.conv2", conv(filters, kernel_size, strides=ds), x)
        x = y = add(f"u{i}.add", layers.Add(), [x, skip])
        x = bn_relu_drop(f"u{i}.2", x, drop=True)
    x = add("flatten", layers.Flatten(), x)
    out = add("dense", layers.Dense(n_classes, activation="sigmoid", kernel_initializer="zeros"), x)
    return keras.Model(signal, out), roles


def randomize(keras: Any, model: Any, roles: dict[str, Any], calibration: np.ndarray, seed: int) -> None:
    """Random weights, and random but well-scaled BatchNorm statistics (not the 0/1 defaults).

    Convolutions get he-normal kernels. Each BN, in forward order, gets moving_mean/variance near the
    statistics of its actual input on ``calibration`` exams (shifted by up to ~0.3 std, variance
    scaled by 0.5-2), a random gamma (some negative) and beta: the outputs are neither saturated nor
    constant, so a comparison at 1e-5 has power.
    """
    rng = np.random.default_rng(seed)
    for layer in roles.values():
        if isinstance(layer, keras.layers.Conv1D):
            shape = tuple(layer.kernel.shape)
            layer.set_weights([rng.normal(0, np.sqrt(2 / (shape[0] * shape[1])), shape).astype(np.float32)])
    dense = roles["dense"]
    n_in, n_out = tuple(dense.kernel.shape)
    dense.set_weights([rng.normal(0, 2.5 / np.sqrt(n_in), (n_in, n_out)).astype(np.float32),
                       rng.normal(0, 0.5, n_out).astype(np.float32)])
    bns = [layer for layer in roles.values() if isinstance(layer, keras.layers.BatchNormalization)]
    probe = keras.Model(model.inputs, [bn.input for bn in bns])
    for k, bn in enumerate(bns):
        feats = probe.predict(calibration, batch_size=len(calibration), verbose=0)[k]
        mean, std = feats.mean(axis=(0, 1)), feats.std(axis=(0, 1)) + 1e-3
        c = len(mean)
        bn.set_weights([a.astype(np.float32) for a in (
            rng.uniform(0.5, 1.5, c) * rng.choice([-1.0, 1.0], c, p=[0.2, 0.8]),  # gamma
            rng.normal(0, 0.3, c),  # beta
            mean + 0.3 * std * rng.normal(size=c),  # moving_mean
            std ** 2 * rng.uniform(0.5, 2.0, c))])  # moving_variance


# --- a neutral view of a model file, and the Keras 2.2.4 writer --------------------------------------

@dataclass
class Graph:
    """Layers (name, class_name, config, inbound names) in order, endpoints, weights [(role, array)]."""

    layers: list[dict[str, Any]]
    inputs: list[str]
    outputs: list[str]
    weights: dict[str, list[tuple[str, np.ndarray]]] = field(default_factory=dict)

    def layer(self, name: str) -> dict[str, Any]:
        return next(entry for entry in self.layers if entry["name"] == name)

    def insert_after(self, name: str, entry: dict[str, Any]) -> None:
        """Insert ``entry`` reading ``name``; what read ``name`` reads ``entry`` instead."""
        for other in self.layers:
            other["inbound"] = [entry["name"] if src == name else src for src in other["inbound"]]
        entry["inbound"] = [name]
        self.layers.insert(self.layers.index(self.layer(name)) + 1, entry)
        self.weights.setdefault(entry["name"], [])

    def remove(self, name: str) -> None:
        """Drop a one-input layer; what read it reads its input."""
        (src,) = self.layer(name)["inbound"]
        self.layers.remove(self.layer(name))
        for other in self.layers:
            other["inbound"] = [src if s == name else s for s in other["inbound"]]
        self.weights.pop(name, None)


def _tensor_sources(obj: Any) -> list[str]:
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            return [obj["config"]["keras_history"][0]]
        return [s for v in obj.values() for s in _tensor_sources(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _tensor_sources(v)]
    return []


def read_keras3(path: Path) -> Graph:
    """The graph and weights of a Keras 3 legacy .h5 file."""
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["model_config"])["config"]
        layers = [{"name": e["name"], "class_name": e["class_name"], "config": e["config"],
                   "inbound": _tensor_sources(e["inbound_nodes"])} for e in config["layers"]]
        weights = {}
        for name in f["model_weights"].attrs["layer_names"]:
            group = f["model_weights"][name]
            weights[name] = [(w.split("/")[-1], group[w][()]) for w in group.attrs["weight_names"]]
    one = lambda e: [e] if isinstance(e[0], str) else e  # noqa: E731 - Keras 3 may write one endpoint flat
    return Graph(layers, [e[0] for e in one(config["input_layers"])],
                 [e[0] for e in one(config["output_layers"])], weights)


# Keras 2.2.4 config keys per class (keras/layers/*.py get_config of that release).
_K2_KEYS = {
    "Conv1D": ["filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "activation",
               "use_bias", "kernel_initializer", "bias_initializer", "kernel_regularizer", "bias_regularizer",
               "activity_regularizer", "kernel_constraint", "bias_constraint"],
    "BatchNormalization": ["axis", "momentum", "epsilon", "center", "scale", "beta_initializer",
                           "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer",
                           "beta_regularizer", "gamma_regularizer", "beta_constraint", "gamma_constraint"],
    "Activation": ["activation"], "Dropout": ["rate", "noise_shape", "seed"], "Add": [],
    "MaxPooling1D": ["strides", "pool_size", "padding", "data_format"], "Flatten": ["data_format"],
    "Dense": ["units", "activation", "use_bias", "kernel_initializer", "bias_initializer",
              "kernel_regularizer", "bias_regularizer", "activity_regularizer", "kernel_constraint",
              "bias_constraint"],
}


def _k2_value(value: Any) -> Any:
    if isinstance(value, dict) and "class_name" in value:  # Keras 3 initializer -> Keras 2 form
        return {"class_name": value["class_name"], "config": value.get("config", {})}
    return value


def keras2_names(graph: Graph) -> dict[str, str]:
    """Keras 3 auto names -> Keras 2's: conv1d -> conv1d_1, conv1d_4 -> conv1d_5 (inputs keep theirs)."""
    names = {}
    for entry in graph.layers:
        base, number = re.fullmatch(r"(.*?)(?:_(\d+))?", entry["name"]).groups()
        keep = entry["class_name"] == "InputLayer"
        names[entry["name"]] = entry["name"] if keep else f"{base}_{int(number or 0) + 1}"
    return names


def as_keras2(graph: Graph, rename: dict[str, str] | None = None) -> Graph:
    """The same model as Keras 2.2.4 would describe it (configs, and names through ``rename``)."""
    rename = rename if rename is not None else keras2_names(graph)
    layers = []
    for e in graph.layers:
        name = rename[e["name"]]
        if e["class_name"] == "InputLayer":
            config = {"batch_input_shape": e["config"]["batch_shape"], "dtype": "float32", "sparse": False,
                      "name": name}
        else:
            config = {"name": name, "trainable": True,
                      **{k: _k2_value(e["config"][k]) for k in _K2_KEYS[e["class_name"]] if k in e["config"]}}
        layers.append({"name": name, "class_name": e["class_name"], "config": config,
                       "inbound": [rename[s] for s in e["inbound"]]})
    return Graph(layers, [rename[n] for n in graph.inputs], [rename[n] for n in graph.outputs],
                 {rename[n]: list(w) for n, w in graph.weights.items()})


def write_keras2(graph: Graph, path: Path, weights_only: bool = False,
                 layer_order: list[str] | None = None) -> Path:
    """Write ``graph`` in Keras 2.2.4's HDF5 layout (``model.save``, or ``save_weights`` if weights_only)."""
    model_config = {"class_name": "Model", "config": {
        "name": "model_1",
        "layers": [{"name": e["name"], "class_name": e["class_name"], "config": e["config"],
                    "inbound_nodes": [[[src, 0, 0, {}] for src in e["inbound"]]] if e["inbound"] else []}
                   for e in graph.layers],
        "input_layers": [[n, 0, 0] for n in graph.inputs],
        "output_layers": [[n, 0, 0] for n in graph.outputs]}}
    order = layer_order or [e["name"] for e in graph.layers]
    with h5py.File(path, "w") as f:
        group = f
        if not weights_only:
            f.attrs["keras_version"] = b"2.2.4"
            f.attrs["backend"] = b"tensorflow"
            f.attrs["model_config"] = json.dumps(model_config).encode("utf8")
            f.attrs["training_config"] = json.dumps({"loss": "binary_crossentropy", "metrics": []}).encode()
            f.create_group("optimizer_weights").create_dataset("Adam/iterations:0", data=np.int64(7))
            group = f.create_group("model_weights")
        group.attrs["layer_names"] = [n.encode("utf8") for n in order]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.2.4"
        for name in order:
            layer_group = group.create_group(name)
            names = [f"{name}/{role}:0" for role, _ in graph.weights.get(name, [])]
            layer_group.attrs["weight_names"] = np.asarray([n.encode("utf8") for n in names])
            for weight_name, (_, array) in zip(names, graph.weights.get(name, []), strict=True):
                layer_group.create_dataset(weight_name, data=array)
    return path

"""Read a Keras HDF5 model file (Keras 2.x or Keras 3 legacy `.h5`) with h5py alone: graph and weights.

A Keras HDF5 model file holds, at its root, the attributes ``keras_version``, ``backend`` and
``model_config`` (JSON of the whole graph: every layer's class, config and ``inbound_nodes``), and the
group ``model_weights`` whose attribute ``layer_names`` lists one group per layer; each layer group's
attribute ``weight_names`` lists the paths, relative to that group, of its arrays. Keras 2 writes
``conv1d_1/kernel:0`` (the array at ``model_weights/conv1d_1/conv1d_1/kernel:0``), Keras 3
``conv1d/kernel``. The two write different node formats:

    Keras 2: "inbound_nodes": [[["conv1d_1", 0, 0, {}], ["conv1d_2", 0, 0, {}]]]
    Keras 3: "inbound_nodes": [{"args": [[{"class_name": "__keras_tensor__",
                                           "config": {"keras_history": ["conv1d", 0, 0], ...}}, ...]],
                                "kwargs": {}}]

Both become :class:`KerasGraph`: layers with the names of the layers they read. Nothing here knows
about the paper's network (that is :mod:`ecglit.models.from_keras`); nothing imports TensorFlow or Keras.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from ecglit.errors import DataError


@dataclass(frozen=True)
class KerasLayer:
    """One layer of the graph: its class, config, and the layers whose outputs it reads (in order)."""

    name: str
    class_name: str
    config: dict[str, Any]
    inbound: tuple[str, ...]


@dataclass
class KerasGraph:
    """The model of one Keras HDF5 file: layers in config order, endpoints, weights by layer and role."""

    path: Path
    keras_version: str
    backend: str
    model_class: str
    node_format: str  # "keras2" (list nodes) or "keras3" (dict nodes); "none" when no layer has inputs
    layers: dict[str, KerasLayer]
    inputs: list[str]
    outputs: list[str]
    # weights[layer][role], role being the last part of the weight name: kernel, bias, gamma, ...
    weights: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def consumers(self) -> dict[str, list[str]]:
        """For every layer, the layers that read its output, in config order."""
        out: dict[str, list[str]] = {name: [] for name in self.layers}
        for layer in self.layers.values():
            for src in dict.fromkeys(layer.inbound):
                out[src].append(layer.name)
        return out


def _text(value: Any) -> str:
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, bytes | np.bytes_):
        return bytes(value).decode("utf-8")
    return str(value)


def _attr_list(obj: h5py.Group, name: str) -> list[str] | None:
    """A list-of-names attribute; Keras splits those over 64 kB into ``name0``, ``name1``, ..."""
    if name in obj.attrs:
        values = [obj.attrs[name]]
    elif f"{name}0" in obj.attrs:
        values, i = [], 0
        while f"{name}{i}" in obj.attrs:
            values.append(obj.attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    return [_text(v) for chunk in values for v in np.asarray(chunk).ravel()]


def read_keras_h5(path: str | Path) -> KerasGraph:
    """The graph and weights of a Keras HDF5 model file; :class:`DataError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "no such file")
    if not h5py.is_hdf5(path):
        if zipfile.is_zipfile(path):
            raise DataError(path, "a Keras 3 '.keras' archive, not an HDF5 model file: load it in Keras and "
                                  "save it again with model.save('model.h5')")
        raise DataError(path, "not an HDF5 file (expected a Keras model saved as HDF5, like the paper's "
                              "model.hdf5)")
    try:
        with h5py.File(path, "r") as f:
            return _read_open_file(f, path)
    except (OSError, RuntimeError) as err:
        raise DataError(path, f"unreadable HDF5 (truncated or corrupt file?): {err}") from err


def _read_open_file(f: h5py.File, path: Path) -> KerasGraph:
    if "model_config" not in f.attrs:
        if "layer_names" in f.attrs or "layer_names0" in f.attrs:
            raise DataError(path, "a weights-only file (model.save_weights): without its model_config the "
                                  "graph cannot be checked against the paper's network; use the full model "
                                  "file (model.save)")
        raise DataError(path, f"not a Keras model file: no 'model_config' attribute at its root (root holds "
                              f"{sorted(f.keys()) or 'nothing'})")
    try:
        model_config = json.loads(_text(f.attrs["model_config"]))
    except ValueError as err:
        raise DataError(path, f"model_config is not valid JSON: {err}") from err
    if "model_weights" not in f or not isinstance(f["model_weights"], h5py.Group):
        raise DataError(path, "has a model_config but no 'model_weights' group: the file holds no weights")
    graph = parse_model_config(model_config, path)
    graph.keras_version = _text(f.attrs.get("keras_version", "unknown"))
    graph.backend = _text(f.attrs.get("backend", "unknown"))
    graph.weights = _read_weights(f["model_weights"], path)
    return graph


def _read_weights(group: h5py.Group, path: Path) -> dict[str, dict[str, np.ndarray]]:
    layer_names = _attr_list(group, "layer_names")
    if layer_names is None:
        raise DataError(path, "model_weights has no 'layer_names' attribute: not a Keras weights layout")
    weights: dict[str, dict[str, np.ndarray]] = {}
    for layer_name in layer_names:
        layer_group = group.get(layer_name)
        if not isinstance(layer_group, h5py.Group):
            raise DataError(path, f"model_weights lists layer '{layer_name}' but holds no group for it")
        roles: dict[str, np.ndarray] = {}
        for weight_name in _attr_list(layer_group, "weight_names") or []:
            dataset = layer_group.get(weight_name)
            if not isinstance(dataset, h5py.Dataset):
                raise DataError(path, f"model_weights/{layer_name}: weight '{weight_name}' is listed in "
                                      f"weight_names but not stored")
            role = weight_name.rsplit("/", 1)[-1].split(":", 1)[0]
            if role in roles:
                raise DataError(path, f"model_weights/{layer_name}: two weights named '{role}'")
            roles[role] = np.asarray(dataset[()])
        weights[layer_name] = roles
    return weights


def parse_model_config(model_config: Any, path: Path) -> KerasGraph:
    """model_config JSON (Keras 2 or 3 functional model) -> :class:`KerasGraph` without weights."""
    if not isinstance(model_config, dict):
        raise DataError(path, "model_config is not a JSON object")
    model_class = str(model_config.get("class_name"))
    config = model_config.get("config")
    if model_class == "Sequential":
        raise DataError(path, "a Sequential model: the paper's network is a functional Model (it has "
                              "residual connections)")
    if model_class not in ("Model", "Functional") or not isinstance(config, dict) \
            or not isinstance(config.get("layers"), list):
        raise DataError(path, f"model_config describes a {model_class!r}, not a functional Keras Model")
    layers: dict[str, KerasLayer] = {}
    formats: set[str] = set()
    for entry in config["layers"]:
        if not isinstance(entry, dict) or "class_name" not in entry:
            raise DataError(path, f"model_config has a malformed layer entry: {str(entry)[:80]}")
        layer_config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
        name = str(entry.get("name") or layer_config.get("name"))
        nodes = entry.get("inbound_nodes") or []
        if len(nodes) > 1:
            raise DataError(path, f"layer '{name}' ({entry['class_name']}) is called {len(nodes)} times; the "
                                  f"paper's network has no shared layers")
        inbound: tuple[str, ...] = ()
        if nodes:
            node_format, history = _node_history(nodes[0], name, path)
            formats.add(node_format)
            inbound = tuple(_single_output(h, name, path) for h in history)
        if name in layers:
            raise DataError(path, f"model_config has two layers named '{name}'")
        layers[name] = KerasLayer(name, str(entry["class_name"]), layer_config, inbound)
    for layer in layers.values():
        for src in layer.inbound:
            if src not in layers:
                raise DataError(path, f"layer '{layer.name}' reads '{src}', which the model_config lacks")
    if len(formats) > 1:
        raise DataError(path, "model_config mixes Keras 2 and Keras 3 node formats")
    inputs = _endpoints(config.get("input_layers"), layers, "input_layers", path)
    outputs = _endpoints(config.get("output_layers"), layers, "output_layers", path)
    return KerasGraph(path, "unknown", "unknown", model_class, formats.pop() if formats else "none",
                      layers, inputs, outputs)


def _keras3_tensors(obj: Any) -> Iterator[Any]:
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            yield (obj.get("config") or {}).get("keras_history")
            return
        for value in obj.values():
            yield from _keras3_tensors(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from _keras3_tensors(value)


def _node_history(node: Any, name: str, path: Path) -> tuple[str, list[Any]]:
    """("keras2" | "keras3", [[layer, node_index, tensor_index], ...]) of one inbound node."""
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}} holding __keras_tensor__ dicts
        return "keras3", list(_keras3_tensors([node.get("args", []), node.get("kwargs", {})]))
    if isinstance(node, list):  # Keras 2: [[layer, node_index, tensor_index, kwargs], ...]
        return "keras2", node
    raise DataError(path, f"layer '{name}': unrecognised inbound node {str(node)[:80]}")


def _single_output(history: Any, name: str, path: Path) -> str:
    if not isinstance(history, list | tuple) or len(history) < 3 or not isinstance(history[0], str):
        raise DataError(path, f"layer '{name}': unrecognised inbound tensor {str(history)[:80]}")
    src, node_index, tensor_index = history[0], history[1], history[2]
    if (node_index, tensor_index) != (0, 0):
        raise DataError(path, f"layer '{name}' reads output {tensor_index} of call {node_index} of '{src}'; "
                              f"the paper's network has no shared or multi-output layers")
    return src


def _endpoints(value: Any, layers: dict[str, KerasLayer], key: str, path: Path) -> list[str]:
    if not isinstance(value, list) or not value:
        raise DataError(path, f"model_config has no {key}")
    entries = [value] if isinstance(value[0], str) else value  # Keras 3 writes a single endpoint flat
    names = []
    for entry in entries:
        name = _single_output(entry, key, path)
        if name not in layers:
            raise DataError(path, f"{key} names '{name}', which the model_config lacks")
        names.append(name)
    return names

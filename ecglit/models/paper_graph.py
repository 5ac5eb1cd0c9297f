"""The paper's Keras graph, step by step, and the walk that finds each step in a Keras file's graph.

The steps are those of the Keras ``model.py`` of Ribeiro et al. (2020), in forward order, each with
the layer(s) it reads, its class and settings, and the ResNet1d state-dict prefix its weights go to:

    input -> Conv1D(64, 16) -> BN -> ReLU = x = y
    per unit: skip = y -> MaxPooling1D(ds, 'same') [-> Conv1D(n, 1)]
              x -> Conv1D(n, 16) -> BN -> ReLU [-> Dropout] -> Conv1D(n, 16, stride ds) -> Add(., skip) = y
              -> BN -> ReLU [-> Dropout] = x
    x -> Flatten -> Dense(6, sigmoid)

The walk starts at the model's input and follows ``inbound_nodes``: a step's layer is the one that
reads the layer matched to the step's first input (and, for Add, both of them), so layer names and
list order play no part. The first layer that differs (class, settings, inputs or weight shapes)
stops the walk with a :class:`DataError` naming it. Dropout is the identity at inference: it may be
absent, and its rate is not checked (``model.py`` at the time of the paper drops 0.8, later 0.2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ecglit.errors import DataError
from ecglit.models.keras_h5 import KerasGraph, KerasLayer

CLASSES_OF: dict[str, tuple[str, ...]] = {
    "input": ("InputLayer",), "conv": ("Conv1D",), "bn": ("BatchNormalization",),
    "relu": ("Activation", "ReLU"), "dropout": ("Dropout",), "pool": ("MaxPooling1D",),
    "add": ("Add",), "flatten": ("Flatten",), "dense": ("Dense",),
}
WEIGHTS_OF: dict[str, set[str]] = {
    "conv": {"kernel"}, "bn": {"gamma", "beta", "moving_mean", "moving_variance"},
    "dense": {"kernel", "bias"},
}


@dataclass(frozen=True)
class Step:
    """One layer of the paper's network: what it is, what it reads, what it must look like."""

    role: str  # the ResNet1d state-dict prefix for layers with weights, a unique tag otherwise
    kind: str  # a key of CLASSES_OF
    inputs: tuple[str, ...]  # roles of the steps it reads
    what: str  # for messages: "the first convolution of residual unit 2"
    expect: dict[str, Any] = field(default_factory=dict)


def paper_steps(net: dict[str, Any]) -> list[Step]:
    """The steps of ``ResNet1d(**net)`` in Keras terms (``net``: conf/model/resnet_paper.yaml's values)."""
    k, n_samples, stem = int(net["kernel_size"]), int(net["n_samples"]), int(net["stem_filters"])
    eps, momentum = float(net["bn_eps"]), 1.0 - float(net["bn_momentum"])

    def bn(role: str, src: str, channels: int, what: str) -> Step:
        return Step(role, "bn", (src,), what, {"channels": channels, "epsilon": eps, "momentum": momentum})

    def conv(role: str, src: str, c_in: int, c_out: int, kernel: int, stride: int, what: str) -> Step:
        return Step(role, "conv", (src,), what, {"filters": c_out, "kernel_size": kernel,
                                                 "strides": stride, "kernel": (kernel, c_in, c_out)})

    steps = [Step("input", "input", (), "the input", {"shape": (n_samples, int(net["n_leads"]))}),
             conv("stem.0", "input", int(net["n_leads"]), stem, k, 1, "the stem convolution"),
             bn("stem.1", "stem.0", stem, "the stem batch normalization"),
             Step("stem.relu", "relu", ("stem.1",), "the stem ReLU")]
    x = y = "stem.relu"
    c_in, length = stem, n_samples
    for i, (c_out, out_length) in enumerate(zip(net["filters"], net["seq_lengths"], strict=True)):
        c_out, ds, p, unit = int(c_out), length // int(out_length), f"units.{i}", f"residual unit {i + 1}"
        skip = y
        if ds > 1:
            steps.append(Step(f"{p}.skip_pool", "pool", (skip,), f"the skip max pooling of {unit}",
                              {"pool_size": ds}))
            skip = f"{p}.skip_pool"
        if c_in != c_out:
            steps.append(conv(f"{p}.skip_conv", skip, c_in, c_out, 1, 1,
                              f"the skip 1x1 convolution of {unit}"))
            skip = f"{p}.skip_conv"
        steps += [conv(f"{p}.conv1", x, c_in, c_out, k, 1, f"the first convolution of {unit}"),
                  bn(f"{p}.bn1", f"{p}.conv1", c_out, f"the first batch normalization of {unit}"),
                  Step(f"{p}.relu1", "relu", (f"{p}.bn1",), f"the first ReLU of {unit}"),
                  Step(f"{p}.dropout1", "dropout", (f"{p}.relu1",), f"the first dropout of {unit}"),
                  conv(f"{p}.conv2", f"{p}.dropout1", c_out, c_out, k, ds,
                       f"the strided convolution of {unit}"),
                  Step(f"{p}.add", "add", (f"{p}.conv2", skip), f"the Add (main path + skip) of {unit}"),
                  bn(f"{p}.bn2", f"{p}.add", c_out, f"the pre-activation batch normalization of {unit}"),
                  Step(f"{p}.relu2", "relu", (f"{p}.bn2",), f"the pre-activation ReLU of {unit}"),
                  Step(f"{p}.dropout2", "dropout", (f"{p}.relu2",), f"the second dropout of {unit}")]
        x, y, c_in, length = f"{p}.dropout2", f"{p}.add", c_out, int(out_length)
    steps += [Step("flatten", "flatten", (x,), "the Flatten before the dense layer"),
              Step("head", "dense", ("flatten",), "the dense output layer",
                   {"units": int(net["n_classes"]), "kernel": (length * c_in, int(net["n_classes"]))})]
    return steps


def _scalar(value: Any) -> Any:
    """Keras stores kernel_size, strides, ... as [k]; one-element lists become k."""
    return value[0] if isinstance(value, list | tuple) and len(value) == 1 else value


def _activation(value: Any) -> Any:
    """Keras 3 may serialise an activation as {"class_name": "function", "config": "relu", ...}."""
    if isinstance(value, dict):
        return value.get("config") if isinstance(value.get("config"), str) else value.get("class_name")
    return value


def _settings(layer: KerasLayer, step: Step) -> list[tuple[str, Any, Any]]:
    """(setting, value in the file, the paper's value) for every setting of ``step`` that matters."""
    c, e = layer.config, step.expect
    common = [("data_format", c.get("data_format") or "channels_last", "channels_last")]
    if step.kind == "input":
        shape = c.get("batch_input_shape", c.get("batch_shape"))
        shape = tuple(shape[1:]) if isinstance(shape, list | tuple) else shape
        return [("input shape", shape, e["shape"]),
                ("dtype", _activation(c.get("dtype", "float32")), "float32")]
    if step.kind == "conv":
        return [("filters", c.get("filters"), e["filters"]),
                ("kernel_size", _scalar(c.get("kernel_size")), e["kernel_size"]),
                ("strides", _scalar(c.get("strides", 1)), e["strides"]),
                ("padding", c.get("padding"), "same"),
                ("dilation_rate", _scalar(c.get("dilation_rate", 1)), 1),
                ("groups", c.get("groups", 1), 1), ("use_bias", c.get("use_bias"), False),
                ("activation", _activation(c.get("activation", "linear")), "linear"), *common]
    if step.kind == "bn":
        axis = _scalar(c.get("axis", -1))
        return [("axis", "channels" if axis in (-1, 2) else axis, "channels"),
                ("center", c.get("center", True), True), ("scale", c.get("scale", True), True),
                ("renorm", c.get("renorm", False), False),
                ("epsilon", c.get("epsilon"), e["epsilon"]),
                ("momentum", c.get("momentum"), e["momentum"])]
    if step.kind == "relu":
        if layer.class_name == "ReLU":
            return [("max_value", c.get("max_value"), None),
                    ("negative_slope", c.get("negative_slope", 0), 0),
                    ("threshold", c.get("threshold", 0), 0)]
        return [("activation", _activation(c.get("activation")), "relu")]
    if step.kind == "pool":
        pool = _scalar(c.get("pool_size"))
        return [("pool_size", pool, e["pool_size"]),
                ("strides", _scalar(c.get("strides")) or pool, e["pool_size"]),
                ("padding", c.get("padding"), "same"), *common]
    if step.kind == "flatten":
        return common
    if step.kind == "dense":
        return [("units", c.get("units"), e["units"]),
                ("activation", _activation(c.get("activation")), "sigmoid"),
                ("use_bias", c.get("use_bias"), True)]
    return []


def _same(value: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return math.isclose(value, expected, rel_tol=1e-6)
    return value == expected


class _Walk:
    """Match the paper's steps to the layers of one graph; ``matched[role]`` is the Keras layer name."""

    def __init__(self, graph: KerasGraph) -> None:
        self.graph = graph
        self.consumers = graph.consumers()
        self.matched: dict[str, str] = {}
        self.used: set[str] = set()

    def fail(self, layer: KerasLayer | str, step: Step, cause: str) -> DataError:
        layer = self.graph.layers[layer] if isinstance(layer, str) else layer
        return DataError(self.graph.path, f"layer '{layer.name}' ({layer.class_name}, where the paper's "
                                          f"network has {step.what}): {cause}")

    def find(self, step: Step) -> str | None:
        """The layer for ``step``: the one of its class that reads the layer matched to its first input."""
        if step.kind == "input":
            if len(self.graph.inputs) != 1:
                raise DataError(self.graph.path, f"{len(self.graph.inputs)} inputs {self.graph.inputs}; "
                                                 f"the paper's network has one, the (4096, 12) signal")
            return self.graph.inputs[0]
        anchor = self.matched[step.inputs[0]]
        followers = [n for n in self.consumers[anchor] if n not in self.used]
        fits = [n for n in followers if self.graph.layers[n].class_name in CLASSES_OF[step.kind]]
        if len(fits) > 1:
            cls = self.graph.layers[fits[0]].class_name
            raise self.fail(fits[1], step, f"'{anchor}' feeds {len(fits)} {cls} layers {fits}, the paper's "
                                           f"network one")
        if fits:
            return fits[0]
        if step.kind == "dropout":  # absent dropout: the identity
            return None
        if followers:
            raise self.fail(followers[0], step, f"found after '{anchor}'")
        raise DataError(self.graph.path, f"nothing reads layer '{anchor}' where the paper's network has "
                                         f"{step.what}")

    def check(self, name: str, step: Step) -> None:
        layer, graph = self.graph.layers[name], self.graph
        expected_inputs = tuple(self.matched[r] for r in step.inputs)
        if sorted(layer.inbound) != sorted(expected_inputs):
            raise self.fail(layer, step, f"reads {list(layer.inbound)}, the paper's network "
                                         f"{list(expected_inputs)}")
        for setting, value, expected in _settings(layer, step):
            if not _same(value, expected):
                raise self.fail(layer, step, f"{setting} {value!r}, the paper's network has {expected!r}")
        weights = graph.weights.get(name, {})
        wanted = WEIGHTS_OF.get(step.kind, set())
        if set(weights) != wanted:
            raise self.fail(layer, step, f"holds weights {sorted(weights) or 'none'}, the paper's network "
                                         f"{sorted(wanted) or 'none'}")
        shapes = {"kernel": step.expect.get("kernel")}
        if step.kind == "bn":
            shapes = dict.fromkeys(wanted, (step.expect["channels"],))
        if step.kind == "dense":
            shapes["bias"] = (step.expect["units"],)
        for role, array in sorted(weights.items()):
            if shapes.get(role) is not None and tuple(array.shape) != tuple(shapes[role]):
                raise self.fail(layer, step, f"weight '{role}' has shape {tuple(array.shape)}, the paper's "
                                             f"network {tuple(shapes[role])}")
            if not np.issubdtype(array.dtype, np.floating) or not np.isfinite(array).all():
                raise self.fail(layer, step, f"weight '{role}' is not all finite floating-point")
        if step.kind == "bn" and (weights["moving_variance"] < 0).any():
            raise self.fail(layer, step, "negative moving_variance")

    def run(self, steps: list[Step]) -> dict[str, str]:
        for step in steps:
            name = self.find(step)
            if name is None:  # an absent dropout: its output is its input
                self.matched[step.role] = self.matched[step.inputs[0]]
                continue
            self.check(name, step)
            self.matched[step.role] = name
            self.used.add(name)
        head = self.matched[steps[-1].role]
        if self.graph.outputs != [head]:
            raise DataError(self.graph.path, f"outputs {self.graph.outputs}; the paper's network has one, "
                                             f"the dense layer '{head}'")
        extra = [n for n in self.graph.layers if n not in self.used]
        if extra:
            layer = self.graph.layers[extra[0]]
            raise DataError(self.graph.path, f"layer '{layer.name}' ({layer.class_name}, reading "
                                             f"{list(layer.inbound)}) is not part of the paper's network")
        return self.matched


def match_paper_graph(graph: KerasGraph, steps: list[Step]) -> dict[str, str]:
    """role -> Keras layer name for every step (an absent dropout maps to the layer before it)."""
    return _Walk(graph).run(steps)

"""Import the paper's published Keras weights (Zenodo 10.5281/zenodo.3625017) into ecglit, without TensorFlow.

    python -m ecglit.models.from_keras model/model.hdf5 paper.ckpt [--input-scale S] [--overwrite]
    ecglit-from-keras model/model.hdf5 paper.ckpt     (the same, installed)
    python predict.py ckpt=paper.ckpt input=... output=predictions.csv

The files (``model/model.hdf5``, ``other_seeds/model_{1..10}.hdf5``, ``other_splits/*.hdf5``) are
Keras 2.2.4 / TensorFlow 1.15 HDF5 models that current TensorFlow no longer loads. They are read here
with h5py (:mod:`ecglit.models.keras_h5`, Keras 2 and Keras 3 ``.h5`` layouts), and every layer is
found by following the graph in ``model_config`` from the input (:mod:`ecglit.models.paper_graph`):
a file whose graph or shapes differ from the paper's network in any way is refused, naming the first
layer that differs. The weights then load into ``ResNet1d(**conf/model/resnet_paper.yaml)``:

    Conv1D kernel (k, in, out)  -> conv weight (out, in, k)
    Dense kernel (5120, 6)      -> head.weight (6, 5120); ResNet1d flattens time-major, as Keras does
    BatchNormalization gamma, beta, moving_mean, moving_variance -> weight, bias, running_mean, running_var
                                   (epsilon 1e-3 and momentum 0.99 checked against the network's)

The classifier holds the paper's thresholds (``ecglit.constants.PAPER_THRESHOLDS``) and does not
re-select them on validation. Dropout rates are not checked (dropout is the identity at inference;
the file's rates are in the returned info); the checkpoint's network config is resnet_paper's.

Input scale. ecglit stores tracings in 1e-4 V (1 mV = 10); the Predictor multiplies them by the
checkpoint's ``input_scale`` before the network. The unit the paper's network was trained on is
ambiguous (../shared/design/datasets-and-models.md §2.1): the README says "scale 1e-4V" and, in the
same sentence, "if the signal is in V it should be multiplied by 1000" (i.e. mV); the maintainer
answers "make sure your ECG is scaled as millivolts" (automatic-ecg-diagnosis issue #3); CODE-15%, a
sample of the same data, was made with ``--scale 2`` and is about twice mV (ecg-preprocessing README,
ecg-age-prediction issue #5). The default here is 1.0: tracings go to the network exactly as stored,
which is what the paper's ``predict.py`` does with the CODE HDF5 files and what ecglit's convention
(the paper's network reads 1e-4 V) implies. For records imported by ecglit in true 1e-4 V, 0.1
(mV, the maintainer's answer) and 0.2 (CODE-15%'s 2x mV) are the alternatives; ``--input-scale``
records the choice in the checkpoint, and it can be overridden at prediction (``input_scale=``).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from omegaconf import OmegaConf

from ecglit.constants import CLASSES, PAPER_THRESHOLDS
from ecglit.data.definitions import label_definitions
from ecglit.errors import ConfigError, DataError
from ecglit.models.keras_h5 import read_keras_h5
from ecglit.models.paper_graph import match_paper_graph, paper_steps
from ecglit.models.resnet import ResNet1d
from ecglit.utils.cli import OneLineArgumentParser, user_error_boundary
from ecglit.utils.io import atomic_path, ensure_dir, refuse_existing

if TYPE_CHECKING:
    from ecglit.models.ecg_module import ECGClassifier

PROG = "python -m ecglit.models.from_keras"
PAPER_NET_YAML = Path(__file__).resolve().parents[2] / "conf" / "model" / "resnet_paper.yaml"


def paper_net_config() -> dict[str, Any]:
    """conf/model/resnet_paper.yaml as a plain dict with ``_target_`` (the paper's network)."""
    if not PAPER_NET_YAML.is_file():
        raise ConfigError(f"{PAPER_NET_YAML}: the paper's network config is missing")
    return OmegaConf.to_container(OmegaConf.load(PAPER_NET_YAML), resolve=True)  # type: ignore[return-value]


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def keras_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """State dict for ``ResNet1d(**resnet_paper kwargs)`` from a Keras HDF5 model of the paper's network.

    Returns ``(state_dict, info)``; info holds plain values: source, sha256, keras_version, backend,
    node_format, n_layers, n_values, dropout_rates and the Keras layer behind each ResNet1d module.
    Raises :class:`DataError` (naming the file and the first layer that differs) for anything else.
    """
    net = paper_net_config()
    graph = read_keras_h5(path)
    steps = paper_steps(net)
    matched = match_paper_graph(graph, steps)
    state: dict[str, torch.Tensor] = {}
    for step in steps:
        w = graph.weights.get(matched[step.role], {})
        if step.kind == "conv":
            state[f"{step.role}.weight"] = _tensor(w["kernel"].transpose(2, 1, 0))
        elif step.kind == "bn":
            state.update({f"{step.role}.weight": _tensor(w["gamma"]), f"{step.role}.bias": _tensor(w["beta"]),
                          f"{step.role}.running_mean": _tensor(w["moving_mean"]),
                          f"{step.role}.running_var": _tensor(w["moving_variance"]),
                          f"{step.role}.num_batches_tracked": torch.tensor(0)})
        elif step.kind == "dense":
            state.update({f"{step.role}.weight": _tensor(w["kernel"].T),
                          f"{step.role}.bias": _tensor(w["bias"])})
    kwargs = {k: v for k, v in net.items() if k != "_target_"}
    ResNet1d(**{**kwargs, "init": "torch_default"}).load_state_dict(state)  # strict: every key, every shape
    weighted = [s for s in steps if s.kind in ("conv", "bn", "dense")]
    dropouts = [graph.layers[matched[s.role]] for s in steps if s.kind == "dropout"
                and graph.layers[matched[s.role]].class_name == "Dropout"]
    info = {
        "source": str(path),
        "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        "keras_version": graph.keras_version,
        "backend": graph.backend,
        "node_format": graph.node_format,
        "n_layers": len(graph.layers),
        "n_values": int(sum(t.numel() for k, t in state.items() if not k.endswith("num_batches_tracked"))),
        "dropout_rates": [float(layer.config.get("rate", float("nan"))) for layer in dropouts],
        "layers": {s.role: matched[s.role] for s in weighted},
    }
    return state, info


def _check_scale(input_scale: float) -> float:
    try:
        scale = float(input_scale)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"input_scale must be a number, got {input_scale!r}") from err
    if not math.isfinite(scale) or scale <= 0:
        raise ConfigError(f"input_scale must be a positive finite number, got {input_scale!r}")
    return scale


def _classifier(path: str | Path, input_scale: float) -> tuple[ECGClassifier, dict[str, Any]]:
    scale = _check_scale(input_scale)
    state, info = keras_state_dict(path)
    # Lightning is imported only once the file has passed: its import takes seconds, bad input fails fast
    from ecglit.models.ecg_module import ECGClassifier

    module = ECGClassifier(net=paper_net_config(), class_names=list(CLASSES), input_scale=scale,
                           select_thresholds_on_val=False, label_definitions=label_definitions("code"),
                           threshold_source="the paper: max F1 on its CODE validation set (Ribeiro et al. 2020)")
    module.net.load_state_dict(state)
    module.thresholds.copy_(torch.tensor(PAPER_THRESHOLDS, dtype=module.thresholds.dtype))
    return module.eval(), info


def classifier_from_keras(path: str | Path, input_scale: float = 1.0) -> ECGClassifier:
    """An :class:`ECGClassifier` (resnet_paper, the paper's thresholds, eval mode) from a Keras HDF5 file."""
    return _classifier(path, input_scale)[0]


def write_checkpoint(src: str | Path, out: str | Path, input_scale: float = 1.0,
                     overwrite: bool = False) -> dict[str, Any]:
    """Convert ``src`` and write a checkpoint ``ECGClassifier.load_from_checkpoint`` loads; returns the info.

    Written to a temporary file beside ``out`` and renamed, so ``out`` is either the old file or the
    complete new one; an existing ``out`` is kept unless ``overwrite``.
    """
    out = Path(out)
    _check_scale(input_scale)
    refuse_existing([out], overwrite, hint="--overwrite")  # before the conversion: fail fast
    ensure_dir(out.parent)
    module, info = _classifier(src, input_scale)
    import lightning  # loaded by _classifier by now; wanted here for its version

    checkpoint = {
        "state_dict": module.state_dict(),
        "hyper_parameters": dict(module.hparams),
        "pytorch-lightning_version": lightning.__version__,
        "epoch": 0,
        "global_step": 0,
        "keras_source": info,
    }
    try:
        with atomic_path(out, overwrite, hint="--overwrite") as tmp:
            torch.save(checkpoint, tmp)
    except OSError as err:
        raise DataError(out, f"cannot write the checkpoint ({err.strerror or err})") from err
    return info


def build_parser(prog: str = PROG) -> OneLineArgumentParser:
    parser = OneLineArgumentParser(prog=prog, description=__doc__.split("\n")[0])
    parser.add_argument("src", help="Keras HDF5 model file, e.g. model/model.hdf5 of Zenodo 3625017")
    parser.add_argument("out", help="checkpoint to write (.ckpt)")
    parser.add_argument("--input-scale", type=float, default=1.0,
                        help="factor applied to stored tracings (1e-4 V) before the network; recorded in the "
                             "checkpoint (default 1.0: as stored; 0.1 feeds mV; see the module docstring)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """The program: 0, or the exit code of the one-line error (2 command line, 1 files)."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        with user_error_boundary(prog):
            info = write_checkpoint(args.src, args.out, args.input_scale, args.overwrite)
    except SystemExit as err:
        return int(err.code)
    print(f"wrote {args.out}: the paper's network from {args.src} (Keras {info['keras_version']}, "
          f"{info['backend']}; {info['n_layers']} layers, {info['n_values']:,} values), input_scale "
          f"{args.input_scale:g}, thresholds {list(PAPER_THRESHOLDS)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

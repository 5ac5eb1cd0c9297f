"""The one way a trained classifier is loaded: by path, by the name of a shipped model, or from Keras.

- ``*.ckpt`` (and any other file): a Lightning checkpoint of :class:`ECGClassifier`, read with
  ``torch.load(weights_only=True)``; its hyper-parameters are plain data and the network, optimizer and
  scheduler they name must be on the allowlist of :mod:`ecglit.models.registry`.
- ``*.hdf5`` / ``*.h5``: the paper's Keras model file (:mod:`ecglit.models.from_keras`).
- a bare name (no folder, no suffix): a model shipped in ``ecglit/pretrained/`` (``<name>.ckpt``).

Every failure is a :class:`DataError` naming the file and the cause, in one line.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from ecglit.errors import ConfigError, DataError
from ecglit.models.ecg_module import ECGClassifier

PRETRAINED_DIR = Path(__file__).resolve().parents[1] / "pretrained"
KERAS_SUFFIXES = (".hdf5", ".h5")


def pretrained_names() -> list[str]:
    """Names of the models shipped in ``ecglit/pretrained/``."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.ckpt"))


def resolve_checkpoint(name_or_path: str | Path) -> Path:
    """The file behind a checkpoint argument: an existing path, or the name of a shipped model."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    if path.parent == Path(".") and not path.suffix and (PRETRAINED_DIR / f"{path.name}.ckpt").is_file():
        return PRETRAINED_DIR / f"{path.name}.ckpt"
    shipped = pretrained_names()
    hint = f" (shipped models: {', '.join(shipped)})" if shipped else ""
    raise DataError(path, f"checkpoint not found{hint}")


def load_classifier(name_or_path: str | Path, map_location: str = "cpu", input_scale: float | None = None
                    ) -> ECGClassifier:
    """The :class:`ECGClassifier` of a checkpoint, a Keras file or a shipped model, in eval mode.

    ``input_scale`` applies to Keras files only (they do not record the scale their network expects);
    an ecglit checkpoint always carries its own.
    """
    path = resolve_checkpoint(name_or_path)
    if path.suffix.lower() in KERAS_SUFFIXES:
        from ecglit.models.from_keras import classifier_from_keras  # h5py only; not needed otherwise

        module = classifier_from_keras(path, input_scale=1.0 if input_scale is None else input_scale)
        check_finite_weights(module, path)
        return module.eval()
    if not zipfile.is_zipfile(path):
        raise DataError(path, "not a PyTorch checkpoint (torch.save writes a zip archive; this file is not one)")
    try:
        module = ECGClassifier.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    except ConfigError as err:  # a network/optimizer outside the allowlist, or bad arguments
        raise DataError(path, f"refused: {err}") from None
    except pickle.UnpicklingError as err:
        found = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", str(err))
        what = f"names {found.group(1)}" if found else "holds objects"
        raise DataError(path, f"refused: the checkpoint {what}, which is not plain data (checkpoints are loaded "
                              "with weights_only=True and never run code)") from None
    except (RuntimeError, KeyError, EOFError, OSError, TypeError, ValueError, AttributeError) as err:
        # torch's load_state_dict error names the missing/unexpected weights on the lines after its first
        lines = [ln.strip() for ln in str(err).strip().splitlines() if ln.strip()]
        detail = " ".join(lines[:3])
        detail = detail if len(detail) <= 300 else detail[:297] + "..."
        raise DataError(path, f"not a loadable ECGClassifier checkpoint ({type(err).__name__}: {detail})") from None
    check_finite_weights(module, path)
    return module.eval()


def export_weights(src: str | Path, out: str | Path, provenance: dict | None = None, overwrite: bool = False) -> Path:
    """A slim copy of a checkpoint for sharing: weights, thresholds and hyper-parameters, no optimizer or
    loop state (what a model needs to predict, a fraction of the size). Written atomically."""
    import torch

    path = resolve_checkpoint(src)
    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(out, "exists; pass overwrite=True to replace it")
    load_classifier(path)  # refuses anything the loader would refuse, before writing
    payload = torch.load(path, map_location="cpu", weights_only=True)
    slim = {key: payload[key] for key in ("state_dict", "hyper_parameters", "pytorch-lightning_version",
                                          "epoch", "global_step") if key in payload}
    return _write_slim(slim, out, provenance)


def round_weights_to_float16(module: ECGClassifier) -> ECGClassifier:
    """Round the network's floating weights and statistics to float16 values, in place (they stay float32
    tensors and compute in float32). Score a model after this, then save it with ``float16=True``: the
    file is half the size and holds exactly the model that was scored."""
    import torch

    with torch.no_grad():
        for tensor in (*module.net.parameters(), *module.net.buffers()):
            if tensor.is_floating_point():
                tensor.copy_(tensor.to(torch.float16))
    return module


def save_classifier(module: ECGClassifier, out: str | Path, provenance: dict | None = None,
                    overwrite: bool = False, float16: bool = False) -> Path:
    """``module`` as a slim checkpoint (weights, thresholds, hyper-parameters) that :func:`load_classifier` reads.

    ``float16``: store the network's floating tensors in half precision (loading converts them back);
    refused unless :func:`round_weights_to_float16` made that lossless, so the file is the model as scored.
    """
    import lightning
    import torch

    out = Path(out)
    if out.exists() and not overwrite:
        raise DataError(out, "exists; pass overwrite=True to replace it")
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    if float16:
        for key, tensor in state.items():
            if key.startswith("net.") and tensor.is_floating_point():
                half = tensor.to(torch.float16)
                if not torch.equal(half.to(tensor.dtype), tensor):
                    raise ValueError(f"{key} is not float16-exact: call round_weights_to_float16 first")
                state[key] = half
    slim = {"state_dict": state, "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": lightning.__version__}
    return _write_slim(slim, out, provenance)


def _write_slim(slim: dict, out: Path, provenance: dict | None) -> Path:
    import os

    import torch

    slim["provenance"] = dict(provenance or {})
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    torch.save(slim, tmp)
    os.replace(tmp, out)
    return out


def ensemble_of(paths: Sequence[str | Path]) -> ECGClassifier:
    """One classifier whose network averages the probabilities of the classifiers at ``paths``
    (:class:`ecglit.models.ensemble.Ensemble`), e.g. the same recipe trained from several seeds.

    They must agree on the network, classes, input scale and label definitions (a DataError names the
    first file that differs). The thresholds start as the members' mean; choose them on validation
    data for the ensemble itself (``scripts/build_pretrained.py`` does, ``python -m ecglit.calibrate`` can).
    """
    import torch

    from ecglit.models.ensemble import ENSEMBLE_TARGET

    if len(paths) < 2:
        raise ConfigError(f"an ensemble needs at least two checkpoints, got {len(paths)}")
    modules = [load_classifier(p) for p in paths]
    first = modules[0].hparams
    if first["net"]["_target_"] == ENSEMBLE_TARGET:
        raise DataError(paths[0], "is an ensemble already; give its members' checkpoints")
    for path, module in zip(paths[1:], modules[1:]):
        for key in ("net", "class_names", "input_scale", "label_definitions"):
            if module.hparams.get(key) != first.get(key):
                raise DataError(path, f"cannot join an ensemble with {paths[0]}: its {key} differs "
                                      f"({module.hparams.get(key)!r} vs {first.get(key)!r})")
    member = {k: v for k, v in first["net"].items() if k != "_target_"}
    ensemble = ECGClassifier(
        net={"_target_": ENSEMBLE_TARGET, "member": first["net"]["_target_"], "member_kwargs": member,
             "n_members": len(modules)},
        optimizer=first.get("optimizer"), scheduler=first.get("scheduler"),
        monitor=first.get("monitor", "val/loss"),
        class_names=first["class_names"], input_scale=first["input_scale"],
        label_definitions=first.get("label_definitions"), threshold_source="mean of the members' thresholds")
    for net, module in zip(ensemble.net.members, modules):
        net.load_state_dict(module.net.state_dict())
    with torch.no_grad():
        ensemble.thresholds.copy_(torch.stack([m.thresholds for m in modules]).mean(0))
    return ensemble.eval()


def check_finite_weights(module: ECGClassifier, path: str | Path) -> None:
    """A DataError naming the tensors that hold NaN/inf: such a model predicts NaN for every exam."""
    bad = [name for name, t in module.state_dict().items()
           if t.is_floating_point() and not bool(t.isfinite().all())]
    if bad:
        raise DataError(path, f"{len(bad)} weight tensor(s) hold NaN or inf values (e.g. {', '.join(bad[:3])}); "
                              "the training run diverged or the file is damaged")

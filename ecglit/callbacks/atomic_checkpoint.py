"""Checkpoint files that are complete or absent: written to a temporary file beside the target, synced,
then renamed over it (``os.replace`` is atomic on one file system), so a process killed while writing
``last.ckpt`` leaves the previous ``last.ckpt`` intact. And a check that a checkpoint to resume from is whole.
"""

from __future__ import annotations

import contextlib
import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from lightning.fabric.utilities.types import _PATH
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ecglit.errors import ConfigError
from ecglit.utils.io import pid_alive

_LIGHTNING_CKPT_ALIASES = ("last", "best", "hpc", "registry")


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # not possible everywhere (e.g. Windows): the rename is still atomic
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj, path)`` so that ``path`` is either its old content or all of the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by killed writers
        pid = stale.name[len(path.name) + 2: -len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
            stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's TorchCheckpointIO with local files written by :func:`atomic_torch_save`.

    Lightning's own writer serialises to memory and moves a file from the system temp directory, which
    copies (non-atomically) when that is another file system, and never syncs. Remote paths
    (``s3://`` ...) keep Lightning's writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: _PATH,
                        storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint takes no storage_options, got "
                            f"{storage_options!r}")
        if "://" in str(path) and not str(path).startswith("file://"):
            return super().save_checkpoint(checkpoint, path)
        atomic_torch_save(checkpoint, str(path).removeprefix("file://"))


def check_checkpoint(path: str | os.PathLike) -> None:
    """Raise a ConfigError naming ``path`` unless it is a complete checkpoint archive (all its CRCs match).

    A file cut short while being written (copied by hand, written by another tool) would otherwise fail
    deep inside ``torch.load``. Lightning's aliases (``last``, ``best``, ...) and remote paths pass.
    """
    text = str(path)
    if text in _LIGHTNING_CKPT_ALIASES or "://" in text:
        return
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"ckpt_path {p}: no such checkpoint file")
    if not zipfile.is_zipfile(p):
        raise ConfigError(f"ckpt_path {p}: not a complete checkpoint (truncated or not a torch.save file); "
                          "resume from an earlier checkpoint")
    try:
        with zipfile.ZipFile(p) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ConfigError(f"ckpt_path {p}: unreadable checkpoint ({e}); resume from an earlier "
                          "checkpoint") from None
    if bad is not None:
        raise ConfigError(f"ckpt_path {p}: corrupt checkpoint (member {bad} fails its CRC); resume from an "
                          "earlier checkpoint")

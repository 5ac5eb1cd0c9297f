"""Writing outputs safely: atomically, and never over a file the user already had unless asked.

Every output goes to a temporary file in the target's folder and is renamed onto the target when complete
(``os.replace`` within one folder is atomic), so a reader never sees half a file and an interrupted run
leaves the previous file (or none) rather than a truncated one. A target that already exists is refused
with an :class:`~ecglit.errors.OutputExistsError` naming it, unless ``overwrite`` is set; programs expose
that as ``overwrite=true``. Missing parent folders are created; when that fails the error names the folder.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ecglit.errors import DataError, OutputExistsError

OVERWRITE_HINT = "overwrite=true"


def ensure_dir(path: str | Path) -> Path:
    """Create folder ``path`` (and its parents); a :class:`DataError` naming it when that fails."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(path, f"cannot create the output folder ({err.strerror or err})") from None
    return path


def check_creatable(path: str | Path) -> None:
    """A :class:`DataError` naming folder ``path`` if it could not be created, without creating it (so a
    program can fail before its slow part and leave nothing behind)."""
    path = Path(path).absolute()
    ancestor = path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if ancestor == path and path.is_dir():
        return
    if not ancestor.is_dir():
        raise DataError(path, f"cannot create the output folder ({ancestor} is not a folder)")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise DataError(path, f"cannot create the output folder ({ancestor} is not writable)")


def refuse_existing(paths: Iterable[str | Path], overwrite: bool = False, hint: str = OVERWRITE_HINT) -> None:
    """Raise :class:`OutputExistsError` for the first of ``paths`` that exists, unless ``overwrite``."""
    if overwrite:
        return
    for path in paths:
        if os.path.lexists(path):
            raise OutputExistsError(path, f"already exists; nothing was replaced (pass {hint} to replace it)")


def temporary_sibling(path: str | Path) -> Path:
    """A unique temporary name beside ``path``, hidden and with the same suffix (so writers that go by
    the extension, e.g. matplotlib or numpy, write the right format)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{path.suffix}")


def _commit(tmp: Path, target: Path, overwrite: bool, hint: str) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    try:  # a hard link never replaces: refuses atomically even if the target appeared meanwhile
        os.link(tmp, target)
    except FileExistsError:
        refuse_existing([target], False, hint)
    except OSError:  # no hard links on this file system
        refuse_existing([target], False, hint)
        os.replace(tmp, target)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = False, hint: str = OVERWRITE_HINT) -> Iterator[Path]:
    """Yield a temporary path to write ``path``'s content to; it becomes ``path`` when the block succeeds
    and is removed when it fails. An existing ``path`` is refused before and after the block unless
    ``overwrite``."""
    target = Path(path)
    refuse_existing([target], overwrite, hint)
    ensure_dir(target.parent)
    tmp = temporary_sibling(target)
    try:
        yield tmp
        _commit(tmp, target, overwrite, hint)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", overwrite: bool = False, hint: str = OVERWRITE_HINT,
                **kwargs: Any) -> Iterator[IO]:
    """``open(path, mode)`` through :func:`atomic_path` (mode "w", "wb", "x" or "xb")."""
    if mode.replace("b", "").replace("t", "") not in ("w", "x"):
        raise ValueError(f"atomic_open writes new files only, got mode {mode!r}")
    with atomic_path(path, overwrite, hint) as tmp, open(tmp, mode.replace("x", "w"), **kwargs) as f:
        yield f


def write_text(path: str | Path, text: str, overwrite: bool = False, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see the module docstring); returns ``path``."""
    with atomic_open(path, "w", overwrite, encoding=encoding) as f:
        f.write(text)
    return Path(path)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a temporary file named after a dead one is left over)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True

"""Which exceptions are the user's to fix, and the one line that tells them what to fix.

:func:`describe_user_error` recognises, anywhere in an exception's cause/context chain:

- :class:`~ecglit.errors.EcglitError` (DataError, ConfigError, ...), also when Hydra's ``instantiate``
  wrapped it (``model.dropout=1.5`` is a ConfigError inside an InstantiationException) and also when it
  only survives as text: torch re-raises a DataLoader worker's exception in the main process as
  ``type(err)(traceback text)`` (or a RuntimeError when that cannot be built), and ``ddp_spawn`` workers
  come back as a ProcessRaisedException holding the traceback;
- Hydra's composition errors (unknown key, bad value type, unknown config group option, unparsable
  override, a sweep without ``-m``) and OmegaConf's missing ``???`` values and bad interpolations;
- OSError, naming the file (for h5py, which does not name it, the file being opened).

Anything else is a bug and keeps its traceback. Exit codes: 2 for the command line or configuration
(like argparse), 1 for data, files and the environment.
"""

from __future__ import annotations

import builtins
import difflib
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ecglit.errors import ConfigError, EcglitError

USAGE_EXIT, DATA_EXIT = 2, 1
_TRACEBACK = "Traceback (most recent call last):"
_EXCEPTION_LINE = re.compile(r"^(?P<cls>[A-Za-z_][\w.]*): (?P<msg>.*)$")
_FULL_KEY = re.compile(r"^full_key: (\S+)\s*$", re.MULTILINE)
_LEADING_NAME = re.compile(r"^([A-Za-z_]\w*)(?=[ \[])")
_AMBIGUOUS = re.compile(r"^Ambiguous value for argument '([^'=]+)=([^']*)'")


@dataclass(frozen=True)
class UserError:
    message: str  # one line, without the "<program>: error: " prefix
    exit_code: int


def one_line(text: str) -> str:
    """``text`` with its lines joined by "; " (and blank lines dropped)."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = err
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or (None if link.__suppress_context__ else link.__context__)


def describe_user_error(err: BaseException, cfg: Any = None) -> UserError | None:
    """The one-line message and exit code for ``err`` if it is the user's to fix, else None.

    ``cfg`` (the job's config, when there is one) lets messages such as "dropout must be ..." raised while
    Hydra instantiated ``module`` name the full key, ``model.dropout``."""
    chain = list(_chain(err))
    for link in chain:
        embedded = _embedded_error(str(link)) if _TRACEBACK in str(link) else None
        if embedded is not None:
            return embedded
        if isinstance(link, EcglitError):
            return _ecglit_error(link, chain, cfg)
    for link in chain:
        found = _hydra_error(link) or _omegaconf_error(link) or _os_error(link, chain)
        if found is not None:
            return found
    return None


# --- ecglit's own errors --------------------------------------------------------------------------
def _ecglit_error(err: EcglitError, chain: list[BaseException], cfg: Any) -> UserError:
    message = one_line(str(err))
    if isinstance(err, ConfigError):
        base = next((m.group(1) for link in chain if type(link).__name__ == "InstantiationException"
                     for m in [_FULL_KEY.search(str(link))] if m), None)
        return UserError(_name_the_key(message, base, cfg), USAGE_EXIT)
    return UserError(message, DATA_EXIT)


def _name_the_key(message: str, base: str | None, cfg: Any) -> str:
    """"dropout must be ..." -> "model.dropout must be ..." when that key is unique in the config (first
    under ``base``, the node Hydra was instantiating); else "base: message"."""
    match = _LEADING_NAME.match(message)
    if match and cfg is not None:
        path = _find_key(cfg, match.group(1), base)
        if path is not None:
            return path + message[match.end():]
    return f"{base}: {message}" if base else message


def _find_key(cfg: Any, name: str, base: str | None) -> str | None:
    from omegaconf import OmegaConf

    try:
        tree = OmegaConf.to_container(cfg, resolve=False)
    except Exception:  # a config that cannot even be listed: leave the message as it is
        return None
    tree.pop("hydra", None)
    for prefix in ([base] if base else []) + [""]:
        node: Any = tree
        for part in prefix.split(".") if prefix else []:
            node = node.get(part) if isinstance(node, dict) else None
        found = list(_paths_ending_in(node, name, prefix))
        if len(found) == 1:
            return found[0]
    return None


def _paths_ending_in(node: Any, name: str, prefix: str) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == name:
                yield path
            yield from _paths_ending_in(value, name, path)


def _embedded_error(text: str) -> UserError | None:
    """A user error whose traceback was turned into text (DataLoader workers, ddp_spawn processes)."""
    for line in reversed(text.splitlines()):
        match = _EXCEPTION_LINE.match(line)
        if match is None:
            continue
        cls = _exception_class(match.group("cls"))
        if cls is None:
            continue
        message = match.group("msg").strip()
        if issubclass(cls, EcglitError):
            return UserError(message, USAGE_EXIT if issubclass(cls, ConfigError) else DATA_EXIT)
        if issubclass(cls, OSError):
            return UserError(message, DATA_EXIT)
        return None  # the last exception of the text is something else: a bug
    return None


def _exception_class(name: str) -> type | None:
    module, _, attr = name.rpartition(".")
    owner = sys.modules.get(module) if module else builtins  # only what is already imported
    cls = getattr(owner, attr, None)
    return cls if isinstance(cls, type) and issubclass(cls, BaseException) else None


# --- Hydra and OmegaConf ----------------------------------------------------------------------------
def _hydra_error(err: BaseException) -> UserError | None:
    from hydra.errors import (ConfigCompositionException, HydraException, InstantiationException,
                              MissingConfigException, OverrideParseException)

    if not isinstance(err, HydraException) or isinstance(err, InstantiationException):
        return None
    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options is not None:
        group, _, option = str(err.missing_cfg_file).rpartition("/")
        return UserError(f"{group}={option}: no such option in config group '{group}'; available: "
                         f"{', '.join(err.options)}", USAGE_EXIT)
    if isinstance(err, OverrideParseException):
        return UserError(f"{err.override}: cannot parse this override ({one_line(err.message)})", USAGE_EXIT)
    if isinstance(err, ConfigCompositionException) and err.__cause__ is not None:
        found = _omegaconf_error(err.__cause__, str(err))
        if found is not None:
            return found
    sweep = _AMBIGUOUS.match(str(err))
    if sweep:
        key, value = sweep.group(1), sweep.group(2)
        return UserError(f"{key}={value}: a sweep needs -m (--multirun); for a list write {key}=[{value}], for "
                         f"a string quote it: {key}='{value}'", USAGE_EXIT)
    message = one_line(str(err))
    quoted = re.search(r"'([^'=\s]+)(=[^']*)?'", message)
    if quoted and not message.startswith(quoted.group(1)):
        message = f"{quoted.group(1)}: {message}"
    return UserError(message, USAGE_EXIT)


def _omegaconf_error(err: BaseException, context: str = "") -> UserError | None:
    from omegaconf.errors import (ConfigAttributeError, ConfigKeyError, InterpolationResolutionError,
                                  MissingMandatoryValue, OmegaConfBaseException)

    if not isinstance(err, OmegaConfBaseException):
        return None
    key = getattr(err, "full_key", None) or "?"
    cause = str(getattr(err, "msg", "") or err).splitlines()[0]
    if isinstance(err, MissingMandatoryValue):
        return UserError(f"{key}: missing mandatory value (give {key}=...)", USAGE_EXIT)
    if isinstance(err, InterpolationResolutionError):  # e.g. paths.data_dir=${nope}
        return UserError(f"{key}: {cause}", USAGE_EXIT)
    if not context:  # outside composition, a wrong key or type is the code's: a bug
        return None
    if isinstance(err, (ConfigKeyError, ConfigAttributeError)):
        return UserError(_unknown_key(key, getattr(err, "parent_node", None), context), USAGE_EXIT)
    return UserError(f"{key}: {cause}", USAGE_EXIT)  # ValidationError (bad value type) and the like


def _unknown_key(key: str, parent: Any, context: str) -> str:
    from omegaconf import OmegaConf

    name = key.rpartition(".")[2]
    try:
        valid = sorted(str(k) for k in parent.keys()) if parent is not None else []
        structured = parent is not None and OmegaConf.get_type(parent) not in (dict, None)
    except Exception:  # a parent that cannot list its keys
        valid, structured = [], False
    close = difflib.get_close_matches(name, valid, n=1)
    message = f"{key}: no such key"
    if close:
        message += f" (did you mean {close[0]}?)"
    elif context.startswith("Could not override") and not structured:
        message += f" (+{key}=... adds a new key)"
    if valid:
        message += f"; valid keys in {key.rpartition('.')[0] or 'the config'}: {', '.join(valid)}"
    return message


# --- files ------------------------------------------------------------------------------------------
def _os_error(err: BaseException, chain: list[BaseException]) -> UserError | None:
    if not isinstance(err, OSError):
        return None
    filename = err.filename or _h5py_file_name(chain)
    text = err.strerror if err.strerror and err.filename else one_line(str(err))
    return UserError(f"{filename}: {text}" if filename else text, DATA_EXIT)


def _h5py_file_name(chain: list[BaseException]) -> str | None:
    """The file h5py was opening when it raised (its OSError does not say which file)."""
    import os

    for err in chain:
        tb = err.__traceback__
        while tb is not None:
            code = tb.tb_frame.f_code
            if "h5py" in code.co_filename and code.co_name in ("__init__", "make_fid"):
                name = tb.tb_frame.f_locals.get("name")
                if isinstance(name, (str, bytes, os.PathLike)):
                    return os.fsdecode(name)
            tb = tb.tb_next
    return None

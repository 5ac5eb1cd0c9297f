"""What every ecglit program shares: the Hydra launch and one error boundary.

A user error (bad data, a bad override, a missing input, an existing output; see
:mod:`ecglit.utils.user_errors`) ends the program with ONE line on stderr, ``<program>: error: <file or
config key> ...: <cause>``, and exit code 2 (command line, configuration) or 1 (data, files); any other
exception is a bug and keeps its full traceback.

Two layers catch them. Inside the Hydra job, so that the line is also logged to the run's log file and
Hydra adds nothing to it (errors from the task, its instantiated objects, DataLoader workers). Around
``hydra.main``, for what Hydra raises before a job starts (overrides that do not compose): Hydra is run with
HYDRA_FULL_ERROR=1 so that it hands those exceptions over instead of printing them on several lines.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ecglit.errors import ConfigError
from ecglit.utils.user_errors import describe_user_error

Task = Callable[[DictConfig], Any]
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def config_dir() -> Path:
    """The folder of train.yaml & co.: ``ecglit/conf`` when installed (pyproject.toml ships the checkout's
    ``conf/`` there), else the checkout's top-level ``conf/``."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"ecglit's Hydra configs are neither in {PACKAGE_DIR / 'conf'} (installed "
                            f"package) nor in {PACKAGE_DIR.parent / 'conf'} (checkout)")


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse for ecglit's non-Hydra programs: a usage error is one line, like every other error (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def report_user_error(program: str, message: str) -> None:
    """Print ``<program>: error: <message>`` on stderr, and write it to the log files of a Hydra job (not
    to its console log, which would show the line twice)."""
    record = logging.LogRecord(program, logging.ERROR, __file__, 0, "%s", (message,), None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    print(f"{program}: error: {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def user_error_boundary(program: str, cfg: DictConfig | None = None) -> Iterator[None]:
    """Turn a user error raised in the block into one line and ``SystemExit``; re-raise anything else."""
    try:
        yield
    except Exception as err:
        problem = describe_user_error(err, cfg)
        if problem is None:
            raise
        report_user_error(program, problem.message)
        raise SystemExit(problem.exit_code) from None


def register_open_mapping() -> None:
    """``ecglit_open_mapping`` in Hydra's ConfigStore: an empty mapping that takes new keys although Hydra
    closes the config (``report.annotators.cardio=cardio.csv`` without ``+``)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="ecglit_open_mapping", node=OmegaConf.create({}, flags={"struct": False}))


def require_values(cfg: DictConfig) -> None:
    """A :class:`ConfigError` listing every mandatory value (``???``) the command line left unset."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        plural = "s" if len(missing) > 1 else ""
        raise ConfigError(f"{', '.join(missing)}: missing mandatory value{plural} (give "
                          f"{' '.join(k + '=...' for k in missing)})")


def load_task(task: Task | str) -> Task:
    """``task`` itself, or the function named by ``"package.module:function"`` (imported on first use, so
    that ``--help`` and bad overrides answer without importing torch)."""
    if callable(task):
        return task
    module, _, name = task.partition(":")
    return getattr(importlib.import_module(module), name)


# Libraries that, on import, give their logger a handler of its own on stderr and stop propagation.
SELF_LOGGING_LIBRARIES = ("lightning", "lightning.pytorch", "lightning.fabric")


def route_library_logs_to_hydra() -> None:
    """Send Lightning's INFO lines ("GPU available: ...") through Hydra's handlers (the console on stdout
    and the run's log file) instead of Lightning's own stderr handler, so that stderr holds only errors
    and an error stays the one line it is meant to be. Nothing changes when logging is not configured."""
    if not logging.getLogger().handlers:
        return
    for name in SELF_LOGGING_LIBRARIES:
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if type(handler) is logging.StreamHandler and handler.stream in (sys.stderr, sys.__stderr__):
                logger.removeHandler(handler)
        logger.propagate = True


@contextlib.contextmanager
def _hydra_hands_over_errors() -> Iterator[None]:
    old = os.environ.get("HYDRA_FULL_ERROR")
    os.environ["HYDRA_FULL_ERROR"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("HYDRA_FULL_ERROR", None)
        else:
            os.environ["HYDRA_FULL_ERROR"] = old


@contextlib.contextmanager
def _command_line(program: str, argv: Sequence[str] | None) -> Iterator[None]:
    if argv is None:
        yield
        return
    old = sys.argv
    sys.argv = [program, *argv]
    try:
        yield
    finally:
        sys.argv = old


def run_hydra_program(program: str, config_name: str, task: Task | str, argv: Sequence[str] | None = None,
                      register: Callable[[], None] | None = None) -> None:
    """Run ``task(cfg)`` as the Hydra app of ``conf/<config_name>.yaml`` behind the error boundary.

    Args:
        program: the name errors start with (``ecglit-train``, ``train.py``).
        config_name: the primary config.
        task: the job, a function or ``"module:function"``; its return value goes to Hydra's sweepers.
        argv: the command-line arguments (default: ``sys.argv[1:]``), all of Hydra's included
            (``-m``, ``--cfg job``, ``--help``).
        register: stores the structured configs the config uses in Hydra's ConfigStore
            (:func:`ecglit.configs.register_configs`; a layer above this one, hence passed in).
    """
    import hydra
    from hydra.core.global_hydra import GlobalHydra

    if register is not None:
        register()

    def job(cfg: DictConfig) -> Any:
        with user_error_boundary(program, cfg):
            require_values(cfg)
            loaded = load_task(task)
            route_library_logs_to_hydra()
            return loaded(cfg)

    main = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(job)
    with user_error_boundary(program), _hydra_hands_over_errors(), _command_line(program, argv):
        GlobalHydra.instance().clear()
        main()

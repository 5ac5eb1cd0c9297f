"""Errors that name the file (and row or record) and the cause, for users rather than tracebacks."""

from __future__ import annotations

from pathlib import Path


class EcglitError(Exception):
    """Base class: every ecglit error carries a message a user can act on."""


class ConfigError(EcglitError, ValueError):
    """A configuration value is invalid (negative size, probability outside [0, 1], ...)."""


class DataError(EcglitError):
    """Input data is unusable. The message names the file, the row/record when known, and the cause."""

    def __init__(self, path: str | Path | None, cause: str, *, record: str | int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.record = record
        self.cause = cause
        where = self.path or "<input>"
        if record is not None:
            where += f" [{record}]"
        super().__init__(f"{where}: {cause}")

"""Errors that name the file (and row or record) and the cause, for users rather than tracebacks.

Entry points turn them into one line, ``<program>: error: <message>`` (ecglit/utils/cli.py).
"""

from __future__ import annotations

from pathlib import Path


class EcglitError(Exception):
    """Base class: every ecglit error carries a message a user can act on."""


class ConfigError(EcglitError, ValueError):
    """A configuration value is invalid (negative size, probability outside [0, 1], ...)."""


class DataError(EcglitError):
    """Input data is unusable. The message names the file, the row/record when known, and the cause.

    ``DataError(path, cause, record=...)`` builds the message; ``DataError(message)`` takes a finished one.
    The second form is what copies of the error are built with: unpickling, and torch's DataLoader, which
    re-raises a worker's exception in the main process as ``type(err)(text)``.
    """

    def __init__(self, path: str | Path | None, cause: str | None = None, *,
                 record: str | int | None = None) -> None:
        if cause is None:  # DataError(message)
            self.path, self.record, self.cause = None, record, str(path)
            super().__init__(self.cause)
            return
        self.path = None if path is None else str(path)
        self.record = record
        self.cause = cause
        where = self.path or "<input>"
        if record is not None:
            where += f" [{record}]"
        super().__init__(f"{where}: {cause}")

    def __reduce__(self):  # pickles as its message (see the class docstring)
        return type(self), (str(self),)


class OutputExistsError(DataError):
    """An output file or folder already exists and the user did not ask to replace it."""

"""Entry-point helper: bad input or configuration ends with one line naming the cause, not a traceback."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from ecglit.errors import EcglitError

F = TypeVar("F", bound=Callable[..., Any])


def exit_on_user_error(program: str) -> Callable[[F], F]:
    """Turn an :class:`EcglitError` raised by ``fn`` into ``<program>: error: <message>`` and exit code 1."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except EcglitError as err:
                logging.getLogger(program).error("%s", err)
                print(f"{program}: error: {err}", file=sys.stderr)
                raise SystemExit(1) from None

        return wrapper  # type: ignore[return-value]

    return decorate

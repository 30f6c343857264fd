"""The current request's deadline, visible to every upstream call made on its behalf.

The service sets it (a `ContextVar`, so each fan-out task carries its own) and the funnel
reads it to skip a retry that could not finish in time: the source then reports the real
error instead of a timeout, and nobody waits for nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

_DEADLINE: ContextVar[float | None] = ContextVar("deadline", default=None)


@contextmanager
def deadline_in(seconds: float) -> Iterator[None]:
    """Set the deadline `seconds` from now (loop time) for the enclosed calls."""
    token = _DEADLINE.set(asyncio.get_running_loop().time() + seconds)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def set_deadline(at: float) -> Token[float | None]:
    """Set the deadline to loop time `at`, until `reset_deadline`.

    The request pipeline's form of `deadline_in`: no generator frame per request.
    """
    return _DEADLINE.set(at)


def reset_deadline(token: Token[float | None]) -> None:
    """Restore the deadline `set_deadline` replaced."""
    _DEADLINE.reset(token)


@contextmanager
def no_deadline() -> Iterator[None]:
    """Lift the deadline for the enclosed calls: work that must finish for others.

    (Storing a loaded value for the next callers, releasing a lock.)
    """
    token = _DEADLINE.set(None)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


def time_left() -> float | None:
    """Seconds until the deadline, or None when no deadline is set."""
    deadline = _DEADLINE.get()
    return None if deadline is None else deadline - asyncio.get_running_loop().time()

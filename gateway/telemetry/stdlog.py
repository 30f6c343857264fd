"""Library logs (aiohttp, asyncio) go through the same redaction as ours, rate-limited.

aiohttp logs "Error handling request" with a traceback whose text can quote raw request
bytes (an oversized `Authorization` header, say); asyncio logs every failed `accept()`
("Too many open files") and every socket error of a dying client. This handler turns
each standard-library record into one structlog event: the message's first line with
byte literals, credential-looking values and query strings blanked, cut short; the
exception reduced to its type name (never its text or traceback); and at most `burst`
events of one kind per `window_s`, the next one saying how many were dropped.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

import structlog

BYTES_RE = re.compile(r"""b(['"]).*?(?<!\\)\1""")
SECRET_VALUE_RE = re.compile(
    r"(?i)\b(bearer|basic|token|password|secret|api[_-]?key|authorization|cookie)"
    r"(\s*[:=]?\s*)[^\s,;&]+"
)
AUTH_SCHEME_RE = re.compile(r"(?i)\b(bearer|basic|digest)\s+[^\s,;&]+")
QUERY_RE = re.compile(r"\?\S*")
MAX_MESSAGE = 300


def scrub(text: str) -> str:
    """A library's message made safe to log: one line, no bytes, no secrets, no query."""
    line = text.splitlines()[0] if text else ""
    line = BYTES_RE.sub("[bytes]", line)
    line = AUTH_SCHEME_RE.sub(r"\1 [redacted]", line)
    line = SECRET_VALUE_RE.sub(r"\1\2[redacted]", line)
    return QUERY_RE.sub("?[query]", line)[:MAX_MESSAGE]


class RedactingHandler(logging.Handler):
    """A `logging.Handler` that forwards scrubbed, rate-limited records to structlog."""

    def __init__(
        self,
        burst: int = 5,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """At most `burst` records of one kind per `window_s`."""
        super().__init__()
        self._burst = burst
        self._window = window_s
        self._clock = clock
        self._seen: dict[tuple[str, str, str], tuple[float, int, int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        """Forward one record, unless its kind has used up its budget."""
        try:
            error = record.exc_info[1] if record.exc_info else None
            kind = type(error).__name__ if error is not None else ""
            dropped = self._admit((record.name, str(record.msg)[:80], kind))
            if dropped is None:
                return
            fields: dict[str, object] = {"library": record.name}
            if kind:
                fields["error"] = kind
            if dropped:
                fields["suppressed"] = dropped
            event = scrub(record.getMessage())
            structlog.get_logger("library").log(record.levelno, event, **fields)
        except Exception:  # noqa: BLE001 - a log handler must never raise
            self.handleError(record)

    def _admit(self, key: tuple[str, str, str]) -> int | None:
        """None to drop this record; else how many of its kind were dropped before it."""
        now = self._clock()
        start, count, dropped = self._seen.get(key, (now, 0, 0))
        if now - start >= self._window:
            start, count = now, 0
        if count >= self._burst:
            self._seen[key] = (start, count, dropped + 1)
            return None
        self._seen[key] = (start, count + 1, 0)
        if len(self._seen) > 1000:  # noqa: PLR2004 - bounded memory for kinds
            self._seen.pop(next(iter(self._seen)))
        return dropped


def route_library_logs(level: int = logging.WARNING) -> None:
    """Send every standard-library log record (aiohttp, asyncio, ...) through redaction."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(RedactingHandler())
    root.setLevel(level)
    logging.captureWarnings(capture=True)

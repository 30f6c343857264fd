"""structlog set-up: JSON lines (orjson) off a TTY, coloured console on one; no secrets.

The redaction processor blanks any event key that names a credential, whatever logged
it, as a last line of defence behind the habit of never logging secrets at all. Records
of the standard `logging` module (aiohttp's and asyncio's own) are routed through the
same pipeline, scrubbed and rate-limited (`gateway.telemetry.stdlog`). JSON lines reach
the file in batches, within `FLUSH_S` (one write for all the requests answered since),
and at once for warnings and errors or outside a running loop.

The access line, one per request, skips the processor chain when logs are JSON lines
(`access`): the same processors' work (context variables, level, UTC timestamp,
redaction) done inline for its known fields and rendered by one `orjson.dumps`. Whenever
structlog is configured otherwise (a console, a test capturing logs), it goes through
structlog like any other event.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import datetime as dt
import functools
import logging
import re
import select
import sys
import threading
import traceback
import weakref
from collections.abc import MutableMapping
from typing import Any, BinaryIO

import orjson
import structlog

from gateway.telemetry.stdlog import route_library_logs

SECRET_KEY_RE = re.compile(
    r"authorization|password|secret|token|api_?key|cookie|credential", re.IGNORECASE
)


def redact(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Replace values of credential-looking keys with a marker."""
    for key in list(event):
        if _names_secret(key):
            event[key] = "[redacted]"
    return event


@functools.lru_cache(maxsize=4096)
def _names_secret(key: str) -> bool:
    """Whether a field name looks like a credential's (keys are few: remember them)."""
    return SECRET_KEY_RE.search(key) is not None


def where_it_failed(err: BaseException, frames: int = 6) -> dict[str, Any]:
    """An exception as log fields without its message or locals (either may hold a secret).

    The type and the innermost frames (file, line, function) locate a bug; the message
    of an arbitrary exception may quote a token, a body or a URL with its query.
    """
    stack = traceback.extract_tb(err.__traceback__)[-frames:]
    return {
        "error_type": type(err).__name__,
        "at": [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}:{f.name}" for f in stack],
    }


FLUSH_S = 0.05  # how long an info line may wait in the buffer, at most
LOG_BUFFER_BYTES = 64 * 1024  # written out when this much waits, even before `FLUSH_S`
# Bytes one `write(2)` to a pipe puts in whole, never interleaved with another
# process's (POSIX PIPE_BUF; 4096 on Linux): workers share one stderr.
ATOMIC_WRITE = getattr(select, "PIPE_BUF", 512)


class BatchedLogger:
    """structlog's byte-line logger, flushing at most every `FLUSH_S` on a running loop.

    A busy server logs one line per request: a few `write(2)`s for all the lines of
    the last `FLUSH_S` instead of one each. Each write holds whole lines and at most
    `ATOMIC_WRITE` bytes (a longer line goes alone), so processes sharing a pipe never
    cut each other's lines. Warnings and errors, and lines logged outside a running
    loop (start-up, threads with no flush pending), are written at once after whatever
    waits; so is everything at exit (`flush_logs`). The lock is reentrant: a signal
    handler that logs while this thread is inside a log call must not deadlock it.
    """

    def __init__(self, file: BinaryIO) -> None:
        """Write to `file` (a binary stream: raw like `sys.stderr.buffer`, or buffered)."""
        self._file = file
        self._lock = threading.RLock()
        self._waiting: list[bytes] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        _LOGGERS.add(self)

    def msg(self, message: bytes) -> None:
        """Buffer a line; written within `FLUSH_S`."""
        self.line(message + b"\n")

    def line(self, line: bytes) -> None:
        """`msg` for a line that already ends in a newline."""
        with self._lock:
            self._waiting.append(line)
            self._size += len(line)
            pending = self._timer_loop
            if (
                self._timer is not None
                and pending is not None
                and not pending.is_closed()
            ):
                if self._size >= LOG_BUFFER_BYTES:
                    self._write_out()
                return  # a flush is due soon (not on a loop gone with its timer)
            try:
                loop = asyncio.get_running_loop()  # (a `getpid(2)`: once per flush)
            except RuntimeError:
                self._write_out()
                return
            self._timer_loop = loop
            self._timer = loop.call_later(FLUSH_S, self.flush)

    def urgent(self, message: bytes) -> None:
        """Write a line now, after whatever waits."""
        with self._lock:
            self._waiting.append(message + b"\n")
            self._write_out()

    def flush(self) -> None:
        """Write out what waits."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._write_out()

    def _write_out(self) -> None:
        """The waiting lines, in writes of whole lines of `ATOMIC_WRITE` bytes at most."""
        lines, self._waiting, self._size = self._waiting, [], 0
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > ATOMIC_WRITE:
                self._write(b"".join(chunk))
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            self._write(b"".join(chunk))
        self._file.flush()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a raw file may take part of it (a signal, a full pipe)
            written = self._file.write(view)
            # (None: a stream that buffers took it all; or a non-blocking raw file
            # that would block, which stderr is not: counted as written, not spun on)
            view = view[written or len(view) :]

    debug = info = log = msg
    warning = warn = error = err = critical = exception = fatal = failure = urgent


class _AccessLine:
    """Where the inline access line goes: set by `configure_logging` for JSON lines."""

    __slots__ = ("chain", "factory", "lines", "wrapper")

    def __init__(self) -> None:
        self.lines: BatchedLogger | None = None
        self.chain: tuple[Any, ...] = ()  # the processors `lines` belongs to
        self.wrapper: Any = None  # and the level filter
        self.factory: Any = None  # and the logger factory


_ACCESS = _AccessLine()
_ACCESS_FIELDS = frozenset(
    {
        "method",
        "route",
        "status",
        "duration_ms",
        "caller",
        "sources",
        "event",
        "request_id",
    }
)
_UTC = dt.UTC
# `2026-12-01T21:00:00.123456Z`, no fraction at 0 µs: TimeStamper's isoformat exactly.
_ACCESS_OPTIONS = orjson.OPT_UTC_Z | orjson.OPT_APPEND_NEWLINE
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
"""The request being answered, set by the request pipeline: every line logged for it
carries its id (`add_request_id`). Cheaper to set and reset than a structlog binding."""


# The context variables structlog has created, by name: while there are none, nothing
# was ever bound and merging (a scan of every context variable, ~1.5 µs on a request)
# finds nothing. A structlog without this registry (None) is merged always.
_STRUCTLOG_VARS: dict[str, object] | None = getattr(
    structlog.contextvars, "_CONTEXT_VARS", None
)


def add_request_id(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Processor: the request id of the request being answered, if any."""
    request_id = REQUEST_ID.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def access(
    method: str,
    route: str,
    status: int,
    duration_ms: float,
    caller: str | None,
    sources: list[str] | None,
) -> None:
    """Log one request's access line (event `request`), as `log.info` would render it.

    When structlog runs the JSON configuration installed here, the line is built
    inline: the same keys in the same order, context variables merged, credential-named
    keys redacted, then one `orjson.dumps` (which renders the timestamp too; unknown
    values by `repr`, as structlog's renderer does). Otherwise (console, another
    configuration, a test capturing logs) it goes through structlog.
    """
    fields: dict[str, Any] = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
        "caller": caller,
        "sources": sources,
    }
    lines = _ACCESS.lines
    config = structlog.get_config()
    if (
        lines is None
        or config["wrapper_class"] is not _ACCESS.wrapper
        or config["logger_factory"] is not _ACCESS.factory
        or tuple(config["processors"]) != _ACCESS.chain  # changed in place by tests
    ):
        # A new proxy: one cached under an earlier configuration would ignore this one.
        structlog.get_logger("access").info("request", **fields)
        return
    fields["event"] = "request"
    own = len(fields)
    if _STRUCTLOG_VARS is None or _STRUCTLOG_VARS:  # else none was ever bound
        structlog.contextvars.merge_contextvars(None, "info", fields)
    if len(fields) > own:  # something bound more: as `redact`
        for key in fields:
            if key not in _ACCESS_FIELDS and _names_secret(key):
                fields[key] = "[redacted]"
    add_request_id(None, "info", fields)
    fields["level"] = "info"
    fields["timestamp"] = dt.datetime.now(tz=_UTC)  # as TimeStamper's, by OPT_UTC_Z
    lines.line(orjson.dumps(fields, default=repr, option=_ACCESS_OPTIONS))


_LOGGERS: weakref.WeakSet[BatchedLogger] = weakref.WeakSet()  # every one alive


@atexit.register
def flush_logs() -> None:
    """Write out every logger's waiting lines now; done at exit too.

    Every one: a logger cached by structlog under an earlier configuration may
    still hold lines.
    """
    for lines in list(_LOGGERS):
        with contextlib.suppress(ValueError, OSError):  # closed, or the pipe is gone
            lines.flush()


def configure_logging(
    fmt: str = "auto", level: str = "info", stream: BinaryIO | None = None
) -> None:
    """Install the process-wide structlog configuration (`stream`: JSON lines' file)."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    _ACCESS.lines, _ACCESS.chain, _ACCESS.wrapper = None, (), None
    fast = False
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_request_id,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    if as_json:
        processors = [
            *shared,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ]
        lines = BatchedLogger(stream or sys.stderr.buffer)
        factory: Any = lambda *_: lines  # noqa: E731 - one logger: one buffer, one order
        fast = logging.getLevelNamesMapping()[level.upper()] <= logging.INFO
    else:
        processors = [*shared, structlog.dev.ConsoleRenderer()]
        factory = structlog.PrintLoggerFactory(sys.stderr)
    wrapper = structlog.make_filtering_bound_logger(
        logging.getLevelNamesMapping()[level.upper()]
    )
    structlog.configure(
        processors=processors,
        wrapper_class=wrapper,
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    if fast:
        _ACCESS.lines, _ACCESS.chain = lines, tuple(processors)
        _ACCESS.wrapper, _ACCESS.factory = wrapper, factory
    route_library_logs(
        max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()])
    )

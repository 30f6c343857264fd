"""structlog set-up: JSON lines (orjson) off a TTY, coloured console on one; no secrets.

The redaction processor blanks any event key that names a credential, whatever logged
it, as a last line of defence behind the habit of never logging secrets at all. Records
of the standard `logging` module (aiohttp's and asyncio's own) are routed through the
same pipeline, scrubbed and rate-limited (`gateway.telemetry.stdlog`).
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any

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
        if SECRET_KEY_RE.search(key):
            event[key] = "[redacted]"
    return event


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


def configure_logging(fmt: str = "auto", level: str = "info") -> None:
    """Install the process-wide structlog configuration."""
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
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
        factory: Any = structlog.BytesLoggerFactory(sys.stderr.buffer)
    else:
        processors = [*shared, structlog.dev.ConsoleRenderer()]
        factory = structlog.PrintLoggerFactory(sys.stderr)
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    route_library_logs(
        max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()])
    )

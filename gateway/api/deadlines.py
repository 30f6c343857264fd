"""Every route has a deadline: the configured one, or the caller's tighter `X-Deadline-Ms`.

The middleware puts the deadline where every upstream call made for the request sees it
(`gateway.upstream.deadline`), so retries, rate-limit pauses and each attempt's timeout are cut
to it, and the routes' own code answers in time (stale data, a source `timeout`, a 504
problem). A backstop timeout a little later answers 504 itself if anything still runs.
A streamed document disarms the backstop once its headers are out: from then on the
body may take as long as it keeps flowing (the funnel's inactivity timeout bounds it).
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.api import problems
from gateway.api.fields import ascii_int
from gateway.api.state import SETTINGS
from gateway.errors import FieldError, InvalidRequestError
from gateway.upstream.deadline import deadline_in

DEADLINE_HEADER = "X-Deadline-Ms"
MIN_DEADLINE_MS = 50
MAX_DEADLINE_MS = (
    3_600_000  # longer asks are meaningless: the gateway's own deadline rules
)
BACKSTOP_GRACE_S = 0.25
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEADLINE = web.RequestKey("deadline_backstop", asyncio.Timeout)


def caller_deadline(request: web.Request) -> float | None:
    """An internal caller's tighter deadline (`X-Deadline-Ms`), in seconds, or None."""
    raw = request.headers.get(DEADLINE_HEADER)
    if raw is None:
        return None
    value = ascii_int(raw.strip(), low=MIN_DEADLINE_MS, high=MAX_DEADLINE_MS)
    if value is None:
        raise InvalidRequestError(
            [
                FieldError(
                    DEADLINE_HEADER,
                    f"must be whole milliseconds from {MIN_DEADLINE_MS} "
                    f"to {MAX_DEADLINE_MS}",
                )
            ]
        )
    return value / 1000


def request_deadline(request: web.Request) -> float:
    """Seconds this request may take: the configured deadline or the caller's tighter one."""
    configured = request.app[SETTINGS].request_timeout_s
    asked = caller_deadline(request)
    return configured if asked is None else min(configured, asked)


def disarm(request: web.Request) -> None:
    """A streamed body has started: the backstop no longer applies."""
    backstop = request.get(DEADLINE)
    if backstop is not None:
        backstop.reschedule(None)


@web.middleware
async def deadline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler under the request's deadline; 504 problem if it overruns it."""
    seconds = request_deadline(request)
    backstop = asyncio.timeout(seconds + BACKSTOP_GRACE_S)
    request[DEADLINE] = backstop
    with deadline_in(seconds):
        try:
            async with backstop:
                return await handler(request)
        except TimeoutError:
            if not backstop.expired():
                raise
    detail = f"no answer within the request's {seconds:g}s deadline"
    if request.method not in SAFE_METHODS:
        # The write may have reached the upstream: never let it read as "not done".
        detail += (
            "; the write's outcome is uncertain: retry with the same Idempotency-Key"
            " (it will not be done twice) or read the resource"
        )
    return problems.problem(504, "deadline", "Gateway Timeout", detail)

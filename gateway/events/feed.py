"""The event feed: `GET /v1/events` (paged, long-poll) and `GET /v1/events/stream` (SSE).

Both read the same log after a cursor (the last event id the caller has seen) and show
a caller only the events whose invoice it may see (`Principal.may_see`). The cursor
returned always moves past what was scanned, shown or not, so paging visits every event
once and a caller never learns how many it was not shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterator

from aiohttp import web

from gateway import jsoncodec
from gateway.api.handlers import READ_SCOPE, require_scope
from gateway.api.middleware import start_stream
from gateway.api.state import SETTINGS
from gateway.errors import FieldError, InvalidRequestError
from gateway.events.model import EVENT_ID_RE, EVENT_TYPES, StoredEvent
from gateway.events.state import EVENT_STORE
from gateway.events.store import EventStore, id_key
from gateway.invoices.principal import Principal
from gateway.state.redis_client import REDIS_FAILURES

FEED_PARAMS = frozenset({"after", "types", "limit", "wait_s"})
STREAM_PARAMS = frozenset({"after", "types"})
MAX_LIMIT = 500
DEFAULT_LIMIT = 100
MAX_WAIT_S = 30
SCAN_BATCH = 500
MAX_SCAN = 10_000  # events looked at per request, shown or not
KEEPALIVE_S = 15.0
START = "0-0"
DIGITS_RE = re.compile(r"^[0-9]{1,4}$")


@contextlib.contextmanager
def log_unavailable() -> Iterator[None]:
    """The event log cannot be read (Redis away): a 503 the caller may retry, never a 500."""
    try:
        yield
    except REDIS_FAILURES as err:
        raise web.HTTPServiceUnavailable(reason="event log unavailable") from err


async def visible_page(
    store: EventStore,
    principal: Principal,
    after: str,
    types: frozenset[str],
    limit: int,
) -> tuple[list[StoredEvent], str]:
    """Up to `limit` events after `after` the caller may see, and the new cursor."""
    shown: list[StoredEvent] = []
    cursor, scanned = after, 0
    while len(shown) < limit and scanned < MAX_SCAN:
        batch = await store.read(cursor, SCAN_BATCH)
        for event in batch:
            cursor, scanned = event.id, scanned + 1
            if event.type in types and principal.may_see(event.invoice()):
                shown.append(event)
                if len(shown) == limit:
                    break
        if len(batch) < SCAN_BATCH:
            break
    return shown, cursor


def _parse(
    request: web.Request, allowed: frozenset[str]
) -> tuple[str | None, frozenset[str]]:
    errors = [
        FieldError(name, "unknown parameter")
        for name in request.query
        if name not in allowed
    ]
    after = request.query.get("after")
    if after is not None and not EVENT_ID_RE.match(after):
        errors.append(FieldError("after", "must be a cursor from this feed"))
    types = EVENT_TYPES
    if "types" in request.query:
        types = frozenset(t.strip() for t in request.query["types"].split(","))
        if not types or not types <= EVENT_TYPES:
            errors.append(
                FieldError("types", f"allowed: {', '.join(sorted(EVENT_TYPES))}")
            )
    if errors:
        raise InvalidRequestError(errors)
    return after, types


def _retained(request: web.Request, cursor: str | None) -> str | None:
    """The cursor, unless it is older than the retention (events after it may be gone)."""
    if cursor is None or cursor == START:
        return cursor
    retention_s = request.app[SETTINGS].events.retention_s
    if id_key(cursor)[0] < (time.time() - retention_s) * 1000:
        raise web.HTTPGone(
            reason="cursor older than the event retention; start again without one"
        )
    return cursor


def _bounded(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not DIGITS_RE.match(raw) or not low <= int(raw) <= high:
        raise InvalidRequestError(
            [FieldError(name, f"must be a whole number from {low} to {high}")]
        )
    return int(raw)


async def list_events(request: web.Request) -> web.Response:
    """`GET /v1/events`: a page of events after `after`, waiting up to `wait_s` for one."""
    principal = require_scope(request, READ_SCOPE)
    after, types = _parse(request, FEED_PARAMS)
    after = _retained(request, after)
    limit = _bounded(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    wait_s = _bounded(request, "wait_s", 0, 0, MAX_WAIT_S)
    store = request.app[EVENT_STORE]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    cursor = after or START
    with log_unavailable():
        while True:
            events, cursor = await visible_page(store, principal, cursor, types, limit)
            left = deadline - loop.time()
            if events or left <= 0:
                break
            await store.wait(cursor, left)
    body = {"data": [e.to_dict() for e in events], "next_cursor": cursor}
    return web.Response(
        body=jsoncodec.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


async def stream_events(request: web.Request) -> web.StreamResponse:
    """`GET /v1/events/stream`: Server-Sent Events, resumable with `Last-Event-ID`."""
    principal = require_scope(request, READ_SCOPE)
    after, types = _parse(request, STREAM_PARAMS)
    resume = request.headers.get("Last-Event-ID")
    if resume is not None and not EVENT_ID_RE.match(resume):
        raise InvalidRequestError(
            [FieldError("Last-Event-ID", "must be an event id from this stream")]
        )
    store = request.app[EVENT_STORE]
    start = _retained(request, resume or after)
    with log_unavailable():
        cursor = start or await store.latest()
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",
        }
    )
    await start_stream(request, response)
    with contextlib.suppress(
        *REDIS_FAILURES
    ):  # the log went away: end; the client resumes
        await _follow(response, store, principal, cursor, types)
    return response


async def _follow(
    response: web.StreamResponse,
    store: EventStore,
    principal: Principal,
    cursor: str,
    types: frozenset[str],
) -> None:
    """Write events as they come, forever (until the client or the log goes away)."""
    while True:
        events, cursor = await visible_page(store, principal, cursor, types, SCAN_BATCH)
        for event in events:
            data = jsoncodec.dumps(event.to_dict()).decode()
            await response.write(
                f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()
            )
        if not events:
            await store.wait(cursor, KEEPALIVE_S)
            if not await store.read(cursor, 1):
                await response.write(b": keep-alive\n\n")

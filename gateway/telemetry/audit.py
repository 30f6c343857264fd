"""The audit trail: every write and every denied access, as one structured event each.

Events go to their own structlog logger, `audit` (one JSON line each in production,
ship it to its own stream), and, when Redis is configured, to a capped Redis stream that
`GET /v1/audit` pages through for admin-scoped keys. An event says who (the principal's
name and kind), what (method, route, resource id), the outcome and HTTP status, the
idempotency key and the request id. It never holds a credential, a token or a body.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import structlog

from gateway import jsoncodec
from gateway.errors import AuditUnavailableError
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_calls import guarded
from gateway.state.redis_client import (
    REDIS_FAILURES,
    RedisClient,
    as_text,
    stream_entries,
)

log = structlog.get_logger("audit")
STREAM = "ig:v1:audit"
MAX_EVENTS = 100_000  # the Redis stream is trimmed to about this many


class AuditTrail(Protocol):
    """Where audit events are kept for reading back."""

    async def record(self, event: dict[str, Any]) -> None:
        """Keep one event."""
        ...


def emit(event: dict[str, Any]) -> None:
    """Write one event to the `audit` logger."""
    log.info("audit", **event)


class MemoryAuditTrail:
    """The last events of this process (no Redis).

    Not served by `GET /v1/audit`: each replica would show a different trail; the
    `audit` log stream is the record then.
    """

    def __init__(self, size: int = 1000) -> None:
        """Keep at most `size` events."""
        self.events: deque[dict[str, Any]] = deque(maxlen=size)

    async def record(self, event: dict[str, Any]) -> None:
        """Keep one event."""
        self.events.append(event)


class RedisAuditTrail:
    """A capped Redis stream shared by every replica."""

    def __init__(self, client: RedisClient, health: RedisHealth) -> None:
        """Use `client` for the stream."""
        self._r = guarded(client)  # bounded by the request deadline
        self._health = health

    async def record(self, event: dict[str, Any]) -> None:
        """Append; a Redis failure loses the stream copy, never the logged line."""
        try:
            await self._r.xadd(
                STREAM,
                {"e": jsoncodec.dumps(event)},
                maxlen=MAX_EVENTS,
                approximate=True,
            )
        except REDIS_FAILURES as err:
            self._health.down(err)

    async def page(
        self, limit: int, before: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Newest first, `limit` per page; the cursor is the last entry's stream id."""
        top = f"({before}" if before else "+"
        try:
            reply = await self._r.xrevrange(STREAM, max=top, min="-", count=limit + 1)
        except REDIS_FAILURES as err:
            self._health.down(err)
            raise AuditUnavailableError from err
        rows = stream_entries(reply)
        out = [
            {"id": as_text(entry_id), **jsoncodec.loads(fields[b"e"])}
            for entry_id, fields in rows[:limit]
        ]
        cursor = out[-1]["id"] if len(rows) > limit else None
        return out, cursor


def event(
    *,
    who: str | None,
    kind: str | None,
    method: str,
    route: str,
    resource: str | None,
    status: int,
    outcome: str,
    reason: str | None,
    idempotency_key: str | None,
    request_id: str,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """One audit event's fields."""
    return {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock())),
        "who": who,
        "kind": kind,
        "method": method,
        "route": route,
        "resource": resource,
        "status": status,
        "outcome": outcome,
        "reason": reason,
        "idempotency_key": idempotency_key,
        "request_id": request_id,
    }

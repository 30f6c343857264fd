"""The event log: the Protocol, and the in-memory log (one process, not durable).

The detector reads a connection's last snapshot (`mark` per invoice id) and commits,
in one step, the events it found, the new marks, and the webhooks' outbox entries. The
feed reads events after a cursor (the previous event's id). Event ids are
`<milliseconds>-<sequence>`, ordered, the same shape in memory and in Redis Streams.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from gateway.config.settings import WebhookSettings
from gateway.events.model import NewEvent, StoredEvent
from gateway.events.outbox import MemoryOutbox

BASELINE = "~synced"  # snapshot field: the connection has been read once already


class LeaseLostError(Exception):
    """The detector's lease changed hands before its commit: nothing was recorded."""


class EventStore(Protocol):
    """Snapshots, the event log and the outboxes, written together."""

    async def snapshot(self, connection: str) -> dict[str, str] | None:
        """Invoice id -> mark from the last commit; None before the first one."""
        ...

    async def commit(
        self,
        connection: str,
        fence: str,
        events: Sequence[NewEvent],
        marks: Mapping[str, str],
        dropped: Sequence[str],
    ) -> list[str]:
        """Record events (ids returned), set marks, drop ids; all or nothing.

        Raises `LeaseLostError` when `fence` no longer holds the detector's lease.
        """
        ...

    async def read(self, after: str, count: int) -> list[StoredEvent]:
        """Up to `count` events after the id `after` ("0-0": from the start)."""
        ...

    async def wait(self, after: str, timeout_s: float) -> None:
        """Return when an event after `after` may exist, or after `timeout_s`."""
        ...

    async def latest(self) -> str:
        """The newest event's id ("0-0" when the log is empty)."""
        ...

    async def close(self) -> None:
        """Stop any background work (at shutdown)."""
        ...


def id_key(event_id: str) -> tuple[int, int]:
    """An event id as a sortable pair."""
    ms, _, seq = event_id.partition("-")
    return int(ms), int(seq or 0)


class MemoryEventStore:
    """The log in this process's memory: lost at exit, never shared."""

    def __init__(
        self,
        webhooks: Sequence[WebhookSettings],
        outboxes: Mapping[str, MemoryOutbox],
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Outboxes by webhook name; events older than `retention_s` are dropped."""
        self._webhooks = webhooks
        self._outboxes = outboxes
        self._retention_s = retention_s
        self._clock = clock
        self._events: list[StoredEvent] = []
        self._keys: list[tuple[int, int]] = []
        self._snapshots: dict[str, dict[str, str]] = {}
        self._changed = asyncio.Event()

    async def snapshot(self, connection: str) -> dict[str, str] | None:
        """A copy of the last marks."""
        marks = self._snapshots.get(connection)
        return None if marks is None else dict(marks)

    async def commit(
        self,
        connection: str,
        fence: str,  # noqa: ARG002 - one process: always the leader
        events: Sequence[NewEvent],
        marks: Mapping[str, str],
        dropped: Sequence[str],
    ) -> list[str]:
        """Append, fan out to outboxes, update the snapshot."""
        ids = []
        for new in events:
            key = self._next_key()
            stored = StoredEvent(
                f"{key[0]}-{key[1]}",
                new.type,
                new.connection,
                new.invoice.id,
                new.occurred_at,
                new.data(),
            )
            self._events.append(stored)
            self._keys.append(key)
            ids.append(stored.id)
            for hook in self._webhooks:
                if hook.wants(new.type, new.connection):
                    self._outboxes[hook.name].add(stored)
        snap = self._snapshots.setdefault(connection, {})
        snap.update(marks)
        for invoice_id in dropped:
            snap.pop(invoice_id, None)
        self._trim()
        if ids:
            self._changed.set()
            self._changed = asyncio.Event()
        return ids

    async def read(self, after: str, count: int) -> list[StoredEvent]:
        """Events strictly after `after`."""
        start = bisect.bisect_right(self._keys, id_key(after))
        return self._events[start : start + count]

    async def wait(self, after: str, timeout_s: float) -> None:
        """Until an event is appended (or the timeout)."""
        if await self.read(after, 1):
            return
        changed = self._changed
        try:
            async with asyncio.timeout(timeout_s):
                await changed.wait()
        except TimeoutError:
            return

    async def latest(self) -> str:
        """The newest event's id."""
        return self._events[-1].id if self._events else "0-0"

    async def close(self) -> None:
        """Nothing runs in the background."""

    def _next_key(self) -> tuple[int, int]:
        ms = int(self._clock() * 1000)
        if self._keys and self._keys[-1][0] >= ms:
            return self._keys[-1][0], self._keys[-1][1] + 1
        return ms, 0

    def _trim(self) -> None:
        cutoff = (int((self._clock() - self._retention_s) * 1000), 0)
        drop = bisect.bisect_left(self._keys, cutoff)
        if drop:
            del self._events[:drop]
            del self._keys[:drop]

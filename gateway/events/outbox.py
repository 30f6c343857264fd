"""A webhook's queue of deliveries: the Protocol, and the in-memory one.

Each webhook has its own outbox. The detector puts an event in every outbox whose
subscription wants it, in the same step that records the event. Delivery order is kept
per invoice: only the oldest undelivered entry of an invoice is ever handed out (`due`),
so a retried `invoice.updated` can never be overtaken by the `invoice.paid` behind it.
A delivery that keeps failing past its age limit becomes a dead letter, listed and
replayable. The memory outbox serves a single process and is lost with it.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.events.model import StoredEvent


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event on its way to one webhook, with its attempts so far."""

    entry_id: str
    event: StoredEvent
    attempts: int = 0
    first_at: float | None = None  # first attempt (epoch seconds)
    next_at: float = 0.0
    error: str | None = None


class Outbox(Protocol):
    """The deliveries of one webhook."""

    async def due(self, now: float) -> list[Delivery]:
        """Deliveries to attempt now: each its invoice's oldest, its retry time reached."""
        ...

    async def touch(self) -> None:
        """Show this replica is alive and still owns what it holds (long passes)."""
        ...

    async def succeeded(self, delivery: Delivery) -> None:
        """Delivered: forget it (the next entry of the invoice becomes due)."""
        ...

    async def retry_later(self, delivery: Delivery) -> None:
        """Failed; `delivery` carries the attempt count, error and next try."""
        ...

    async def dead(self, delivery: Delivery, now: float) -> None:
        """Gave up: move it to the dead letters (it stops blocking its invoice)."""
        ...

    async def dead_letters(self) -> list[dict[str, Any]]:
        """The dead letters, oldest event first."""
        ...

    async def log_attempt(self, delivery: Delivery, outcome: str, now: float) -> None:
        """Add one attempt to the recent delivery log (bounded, newest first)."""
        ...

    async def recent(self) -> list[dict[str, Any]]:
        """The most recent attempts, newest first."""
        ...

    async def replay(self, event_id: str) -> bool:
        """Queue a dead letter again (same event id); False if there is none."""
        ...


def dead_letter(delivery: Delivery, now: float) -> dict[str, Any]:
    """The listed form of a dead delivery (instants as ISO 8601, UTC)."""
    return {
        "event_id": delivery.event.id,
        "type": delivery.event.type,
        "invoice_id": delivery.event.invoice_id,
        "attempts": delivery.attempts,
        "first_attempt_at": _iso(delivery.first_at),
        "dead_at": _iso(now),
        "last_error": delivery.error,
    }


RECENT = 100  # attempts kept in the delivery log


def attempt_entry(delivery: Delivery, outcome: str, now: float) -> dict[str, Any]:
    """One line of the delivery log."""
    return {
        "event_id": delivery.event.id,
        "type": delivery.event.type,
        "invoice_id": delivery.event.invoice_id,
        "attempt": delivery.attempts
        if outcome != "delivered"
        else delivery.attempts + 1,
        "outcome": outcome,
        "error": delivery.error if outcome != "delivered" else None,
        "at": _iso(now),
    }


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()


class MemoryOutbox:
    """An outbox for a single process (not durable)."""

    def __init__(self) -> None:
        """Empty."""
        self._pending: OrderedDict[str, Delivery] = OrderedDict()
        self._dead: dict[str, tuple[StoredEvent, dict[str, Any]]] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._seq = 0

    def add(self, event: StoredEvent) -> None:
        """Queue an event (called by the event store when it records one)."""
        self._seq += 1
        entry = f"{self._seq}"
        self._pending[entry] = Delivery(entry, event)

    async def due(self, now: float) -> list[Delivery]:
        """The oldest delivery of each invoice, when its time has come."""
        heads: dict[str, Delivery] = {}
        for delivery in self._pending.values():
            heads.setdefault(delivery.event.invoice_id, delivery)
        return [d for d in heads.values() if d.next_at <= now]

    async def touch(self) -> None:
        """One process: nobody else could take anything over."""

    async def succeeded(self, delivery: Delivery) -> None:
        """Forget it."""
        self._pending.pop(delivery.entry_id, None)

    async def retry_later(self, delivery: Delivery) -> None:
        """Keep its new attempt count and time."""
        if delivery.entry_id in self._pending:
            self._pending[delivery.entry_id] = delivery

    async def dead(self, delivery: Delivery, now: float) -> None:
        """Move it to the dead letters."""
        self._pending.pop(delivery.entry_id, None)
        self._dead[delivery.event.id] = (delivery.event, dead_letter(delivery, now))

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter."""
        return [letter for _, letter in self._dead.values()]

    async def log_attempt(self, delivery: Delivery, outcome: str, now: float) -> None:
        """Remember the attempt (the oldest fall off)."""
        self._recent.appendleft(attempt_entry(delivery, outcome, now))

    async def recent(self) -> list[dict[str, Any]]:
        """The kept attempts, newest first."""
        return list(self._recent)

    async def replay(self, event_id: str) -> bool:
        """Queue it again, attempts reset."""
        found = self._dead.pop(event_id, None)
        if found is None:
            return False
        self.add(found[0])
        return True


def with_failure(
    delivery: Delivery, error: str, now: float, next_at: float
) -> Delivery:
    """The delivery after one more failed attempt."""
    return replace(
        delivery,
        attempts=delivery.attempts + 1,
        first_at=delivery.first_at if delivery.first_at is not None else now,
        next_at=next_at,
        error=error,
    )

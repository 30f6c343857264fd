"""Idempotency keys for writes: one upstream effect per key, the first answer replayed.

A record goes `pending` (a request owns it) -> `done` (status + body kept for replay), or
-> `uncertain` when the upstream never said whether the write happened; the next request
with the key then takes the record over and must look the effect up before writing again.
A definite failure before anything was sent releases the key. Records live 24 h.

The owner of a `pending` record beats it while it works: a contender that watches the
beat stand still for a lease (a few seconds) knows the owner died and takes the record
over. A beat that finds the record gone (Redis restarted empty) puts it back, and so does
recording the outcome: an accepted write is never forgotten by the store while its owner
lives. The store is a Protocol: the memory backend serves one process; a Redis backend
with one Lua script per transition serves replicas.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, Protocol

State = Literal["pending", "done", "uncertain"]
DAY_S = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """What is known about one key."""

    fingerprint: str
    state: State
    started_at: float  # when the current owner began (a takeover restarts it)
    expires_at: float
    status: int = 0
    body: bytes = b""
    owner: str = ""
    beat: int = 0


class IdempotencyStore(Protocol):
    """Atomic operations on idempotency records."""

    async def reserve(
        self, key: str, fingerprint: str, owner: str
    ) -> IdempotencyRecord | None:
        """Create a `pending` record owned by `owner` and return None, or the existing one."""
        ...

    async def beat(self, key: str, fingerprint: str, owner: str) -> bool:
        """Show `owner` still works on the key; recreate the record if it vanished."""
        ...

    async def take_over(self, key: str, owner: str, seen: tuple[str, int]) -> bool:
        """Claim an `uncertain` record, or a `pending` one still at `seen` (owner, beat).

        The caller saw that beat stand still for a lease: its owner died mid-write.
        """
        ...

    async def complete(
        self, key: str, fingerprint: str, status: int, body: bytes
    ) -> bool:
        """Record the answer to replay (recreating a vanished record); False if refused."""
        ...

    async def mark_uncertain(self, key: str, fingerprint: str) -> None:
        """The write's outcome is unknown; the next attempt must look before writing."""
        ...

    async def release(self, key: str, owner: str) -> None:
        """Forget `owner`'s pending key (nothing reached the upstream)."""
        ...


class MemoryIdempotencyStore:
    """Process-local records (a dict; operations are atomic on one event loop)."""

    def __init__(
        self, ttl_s: float = DAY_S, clock: Callable[[], float] = time.time
    ) -> None:
        """Keep records `ttl_s` seconds."""
        self._ttl = ttl_s
        self._clock = clock
        self._records: dict[str, IdempotencyRecord] = {}

    def _live(self, key: str) -> IdempotencyRecord | None:
        record = self._records.get(key)
        if record is not None and record.expires_at <= self._clock():
            del self._records[key]
            return None
        return record

    def _new(self, fingerprint: str, state: State, owner: str) -> IdempotencyRecord:
        now = self._clock()
        return IdempotencyRecord(fingerprint, state, now, now + self._ttl, owner=owner)

    async def reserve(
        self, key: str, fingerprint: str, owner: str
    ) -> IdempotencyRecord | None:
        """Create `pending` unless a live record exists."""
        existing = self._live(key)
        if existing is not None:
            return existing
        self._records[key] = self._new(fingerprint, "pending", owner)
        if len(self._records) % 1024 == 0:
            self._sweep()
        return None

    async def beat(self, key: str, fingerprint: str, owner: str) -> bool:
        """Count a beat of the owner's pending record."""
        record = self._live(key)
        if record is None:
            self._records[key] = self._new(fingerprint, "pending", owner)
            return True
        if record.state != "pending" or record.owner != owner:
            return False
        self._records[key] = replace(record, beat=record.beat + 1)
        return True

    async def take_over(self, key: str, owner: str, seen: tuple[str, int]) -> bool:
        """`uncertain` (or a silent `pending`) -> `pending` for the caller, once."""
        record = self._live(key)
        if record is None or record.state == "done":
            return False
        if record.state == "pending" and (record.owner, record.beat) != seen:
            return False
        self._records[key] = replace(
            record, state="pending", started_at=self._clock(), owner=owner, beat=0
        )
        return True

    async def complete(
        self, key: str, fingerprint: str, status: int, body: bytes
    ) -> bool:
        """-> `done` with the answer."""
        record = self._live(key) or self._new(fingerprint, "pending", "")
        if record.fingerprint != fingerprint:
            return False
        self._records[key] = replace(record, state="done", status=status, body=body)
        return True

    async def mark_uncertain(self, key: str, fingerprint: str) -> None:
        """`pending` (or nothing) -> `uncertain`."""
        record = self._live(key) or self._new(fingerprint, "pending", "")
        if record.state != "done":
            self._records[key] = replace(record, state="uncertain")

    async def release(self, key: str, owner: str) -> None:
        """Drop the owner's pending record."""
        record = self._live(key)
        if record is not None and record.state == "pending" and record.owner == owner:
            del self._records[key]

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, r in self._records.items() if r.expires_at <= now]:
            del self._records[key]

"""Idempotency keys for writes: one upstream effect per key, the first answer replayed.

A record goes `pending` (a request owns it) -> `done` (status + body kept for replay), or
-> `uncertain` when the upstream never said whether the write happened; the next request
with the key then takes the record over and must look the effect up before writing again.
A definite failure before anything was sent releases the key. Records live 24 h. The
store is a Protocol: the memory backend serves one process; a Redis backend with atomic
operations serves replicas.
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


class IdempotencyStore(Protocol):
    """Atomic operations on idempotency records."""

    async def reserve(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Create a `pending` record and return None, or return the existing one."""
        ...

    async def take_over(self, key: str, stale_before: float) -> bool:
        """Claim an `uncertain` record, or a `pending` one older than `stale_before`.

        A `pending` record that old lost its owner (the process died mid-write).
        """
        ...

    async def complete(self, key: str, status: int, body: bytes) -> None:
        """Record the answer to replay."""
        ...

    async def mark_uncertain(self, key: str) -> None:
        """The write's outcome is unknown; the next attempt must look before writing."""
        ...

    async def release(self, key: str) -> None:
        """Forget the key (nothing reached the upstream)."""
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

    async def reserve(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Create `pending` unless a live record exists."""
        existing = self._live(key)
        if existing is not None:
            return existing
        now = self._clock()
        self._records[key] = IdempotencyRecord(
            fingerprint, "pending", now, now + self._ttl
        )
        if len(self._records) % 1024 == 0:
            self._sweep()
        return None

    async def take_over(self, key: str, stale_before: float) -> bool:
        """`uncertain` (or long-`pending`) -> `pending` for the caller, once."""
        record = self._live(key)
        if record is None or record.state == "done":
            return False
        if record.state == "pending" and record.started_at >= stale_before:
            return False
        self._records[key] = replace(record, state="pending", started_at=self._clock())
        return True

    async def complete(self, key: str, status: int, body: bytes) -> None:
        """`pending` -> `done` with the answer."""
        record = self._live(key)
        if record is not None:
            self._records[key] = replace(record, state="done", status=status, body=body)

    async def mark_uncertain(self, key: str) -> None:
        """`pending` -> `uncertain`."""
        record = self._live(key)
        if record is not None:
            self._records[key] = replace(record, state="uncertain")

    async def release(self, key: str) -> None:
        """Drop the record."""
        self._records.pop(key, None)

    def _sweep(self) -> None:
        now = self._clock()
        for key in [k for k, r in self._records.items() if r.expires_at <= now]:
            del self._records[key]

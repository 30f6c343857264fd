"""The write journal: what this gateway itself changed lately, shared by every replica.

An upstream may apply a write late (Fintera only schedules a deletion) and a cached list may
predate a write, so invalidating caches alone lets a deleted record linger in a list. Each
write is noted here per connection and record id, with when it happened and what the record
now is (or that it is gone); reads lay these notes over what the upstream or cache said.
Notes live `ttl_s` after the last write of their connection. Memory and Redis backends
share one Protocol; the Redis one is a hash per connection (one round trip to read), and
like the cache it fails open: a Redis outage loses notes, never a read.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway import jsoncodec
from gateway.state.cache import KEY_PREFIX
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_calls import bounded, guarded
from gateway.state.redis_client import REDIS_FAILURES, RedisClient, as_text

JOURNAL_TTL_S = 600.0


@dataclass(frozen=True, slots=True)
class Note:
    """One record's last write: when, and its state after it (None: deleted)."""

    at: float
    record: dict[str, Any] | None


class WriteJournal(Protocol):
    """Recent writes per scope (a connection's sale accounts, say), by record id."""

    async def note(self, scope: str, record_id: str, note: Note) -> None:
        """Remember a write (the newest note of a record wins)."""
        ...

    async def notes(self, scope: str) -> dict[str, Note]:
        """Every live note of the scope."""
        ...


def _encode(note: Note) -> bytes:
    return jsoncodec.dumps({"at": note.at, "record": note.record})


def _decode(raw: bytes | str) -> Note | None:
    try:
        value = jsoncodec.loads(raw)
        return Note(float(value["at"]), value["record"])
    except (ValueError, KeyError, TypeError):
        return None


class MemoryJournal:
    """One process's journal (the memory-cache deployment has one process)."""

    def __init__(
        self, ttl_s: float = JOURNAL_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        """Notes expire `ttl_s` after the last write of their scope."""
        self._ttl = ttl_s
        self._clock = clock
        self._scopes: dict[str, tuple[float, dict[str, Note]]] = {}

    async def note(self, scope: str, record_id: str, note: Note) -> None:
        """Remember a write and extend the scope's life."""
        _, notes = self._scopes.get(scope, (0.0, {}))
        notes[record_id] = note
        self._scopes[scope] = (self._clock() + self._ttl, notes)

    async def notes(self, scope: str) -> dict[str, Note]:
        """The scope's notes, or none once it expired."""
        until, notes = self._scopes.get(scope, (0.0, {}))
        if self._clock() >= until:
            self._scopes.pop(scope, None)
            return {}
        return dict(notes)


class RedisJournal:
    """The journal as one Redis hash per scope, so every replica reads the same notes."""

    def __init__(
        self, client: RedisClient, health: RedisHealth, ttl_s: float = JOURNAL_TTL_S
    ) -> None:
        """`client` is a `redis.asyncio.Redis` or `RedisCluster` (bytes responses)."""
        self._r = guarded(client)  # bounded by the request deadline
        self._health = health
        self._ttl_ms = int(ttl_s * 1000)

    async def note(self, scope: str, record_id: str, note: Note) -> None:
        """HSET the note and extend the hash's TTL, in one transaction."""
        key = _key(scope)
        try:
            async with self._r.pipeline(transaction=True) as pipe:
                pipe.hset(key, record_id, _encode(note))
                pipe.pexpire(key, self._ttl_ms)
                await bounded(pipe.execute())
        except REDIS_FAILURES as err:
            self._health.down(err)
            return
        self._health.up()

    async def notes(self, scope: str) -> dict[str, Note]:
        """HGETALL: every note of the scope (none when Redis is away)."""
        try:
            raw = await self._r.hgetall(_key(scope))
        except REDIS_FAILURES as err:
            self._health.down(err)
            return {}
        self._health.up()
        notes = {as_text(k): _decode(v) for k, v in raw.items()}
        return {k: v for k, v in notes.items() if v is not None}


def _key(scope: str) -> str:
    return f"{KEY_PREFIX}journal:{{{scope}}}"

"""Idempotency records on Redis, so one key means one write across every replica.

A record is a hash (`fp`, `state`, `started`, `status`, `body`) with a 24 h TTL; every
transition is one Lua script, atomic on the server. If Redis cannot be reached, the store
raises `IdempotencyUnavailableError` (503): a write that needs the guarantee is refused
rather than risk a duplicate. A crash between the upstream write and `complete` leaves the
record `pending`; after the lease it is taken over and the effect looked up first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from gateway.errors import IdempotencyUnavailableError
from gateway.idempotency import DAY_S, IdempotencyRecord
from gateway.redis_calls import guarded

RESERVE = """
if redis.call('exists', KEYS[1]) == 1 then
  return redis.call('hmget', KEYS[1], 'fp', 'state', 'started', 'status', 'body')
end
redis.call('hset', KEYS[1], 'fp', ARGV[1], 'state', 'pending', 'started', ARGV[2])
redis.call('pexpire', KEYS[1], ARGV[3])
return false
"""
TAKE_OVER = """
local state = redis.call('hget', KEYS[1], 'state')
local started = tonumber(redis.call('hget', KEYS[1], 'started') or '0')
if state == 'uncertain' or (state == 'pending' and started < tonumber(ARGV[1])) then
  redis.call('hset', KEYS[1], 'state', 'pending', 'started', ARGV[2])
  return 1
end
return 0
"""
SET_IF_EXISTS = """
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], unpack(ARGV))
return 1
"""
FAILURES = (RedisError, OSError, TimeoutError)


class RedisIdempotencyStore:
    """`IdempotencyStore` on Redis or Redis Cluster (one key per record: any slot)."""

    def __init__(
        self, client: Any, ttl_s: float = DAY_S, clock: Callable[[], float] = time.time
    ) -> None:
        """Share the gateway's Redis client."""
        self._r = guarded(client)
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock

    async def reserve(self, key: str, fingerprint: str) -> IdempotencyRecord | None:
        """Create `pending` atomically, or return the record that exists."""
        now = self._clock()
        found = await self._eval(RESERVE, key, fingerprint, repr(now), self._ttl_ms)
        if not found:
            return None
        fp, state, started, status, body = found
        return IdempotencyRecord(
            fingerprint=fp.decode(),
            state=state.decode(),
            started_at=float(started),
            expires_at=now + self._ttl_ms / 1000,
            status=int(status or 0),
            body=body or b"",
        )

    async def take_over(self, key: str, stale_before: float) -> bool:
        """`uncertain` (or long-`pending`) -> `pending`, once across all replicas."""
        return bool(
            await self._eval(TAKE_OVER, key, repr(stale_before), repr(self._clock()))
        )

    async def complete(self, key: str, status: int, body: bytes) -> None:
        """Keep the answer for replay."""
        await self._eval(
            SET_IF_EXISTS, key, "state", "done", "status", status, "body", body
        )

    async def mark_uncertain(self, key: str) -> None:
        """The outcome is unknown."""
        await self._eval(SET_IF_EXISTS, key, "state", "uncertain")

    async def release(self, key: str) -> None:
        """Forget the key."""
        try:
            await self._r.delete(_key(key))
        except FAILURES as err:
            raise IdempotencyUnavailableError from err

    async def _eval(self, script: str, key: str, *args: Any) -> Any:
        try:
            return await self._r.eval(script, 1, _key(key), *args)
        except FAILURES as err:
            raise IdempotencyUnavailableError from err


def _key(key: str) -> str:
    return f"ig:v1:idem:{key}"

"""Idempotency records on Redis, so one key means one write across every replica.

A record is a hash (`fp`, `state`, `started`, `owner`, `beat`, `status`, `body`) with a
24 h TTL; every transition is one Lua script, atomic on the server, and every script's
answer is checked. If Redis cannot be reached, the store raises
`IdempotencyUnavailableError`; the write service decides what that means (before the
upstream call: refuse, 503; after it: keep trying to record, never "not attempted").
After Redis restarted empty, `reserve` waits out the settle window
(`gateway.state.redis_epoch`) so owners and journals of writes already accepted can put their
records back before a retry could create again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from redis.typing import EncodableT

from gateway.errors import IdempotencyUnavailableError
from gateway.state.idempotency import DAY_S, IdempotencyRecord
from gateway.state.redis_calls import guarded
from gateway.state.redis_client import REDIS_FAILURES, LuaScript, RedisClient
from gateway.state.redis_epoch import SETTLE_S, settle_left

RESERVE = LuaScript(
    """
if redis.call('exists', KEYS[1]) == 1 then
  return redis.call('hmget', KEYS[1], 'fp', 'state', 'started', 'status', 'body',
                    'owner', 'beat')
end
redis.call('hset', KEYS[1], 'fp', ARGV[1], 'state', 'pending', 'started', ARGV[2],
           'owner', ARGV[3], 'beat', 0)
redis.call('pexpire', KEYS[1], ARGV[4])
return false
""",
    keys=1,
)
BEAT = LuaScript(
    """
if redis.call('exists', KEYS[1]) == 0 then
  redis.call('hset', KEYS[1], 'fp', ARGV[1], 'state', 'pending', 'started', ARGV[3],
             'owner', ARGV[2], 'beat', 0)
  redis.call('pexpire', KEYS[1], ARGV[4])
  return 1
end
local h = redis.call('hmget', KEYS[1], 'state', 'owner')
if h[1] ~= 'pending' or h[2] ~= ARGV[2] then return 0 end
redis.call('hincrby', KEYS[1], 'beat', 1)
return 1
""",
    keys=1,
)
TAKE_OVER = LuaScript(
    """
local h = redis.call('hmget', KEYS[1], 'state', 'owner', 'beat')
local silent = h[1] == 'pending' and h[2] == ARGV[3] and tonumber(h[3] or '0') == tonumber(ARGV[4])
if h[1] == 'uncertain' or silent then
  redis.call('hset', KEYS[1], 'state', 'pending', 'started', ARGV[2], 'owner', ARGV[1],
             'beat', 0)
  return 1
end
return 0
""",
    keys=1,
)
COMPLETE = LuaScript(
    """
local fp = redis.call('hget', KEYS[1], 'fp')
if fp and fp ~= ARGV[1] then return 0 end
if not fp then
  redis.call('hset', KEYS[1], 'fp', ARGV[1], 'started', ARGV[4])
  redis.call('pexpire', KEYS[1], ARGV[5])
end
redis.call('hset', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3])
return 1
""",
    keys=1,
)
MARK_UNCERTAIN = LuaScript(
    """
local state = redis.call('hget', KEYS[1], 'state')
if state == 'done' then return 0 end
if not state then
  redis.call('hset', KEYS[1], 'fp', ARGV[1], 'started', ARGV[2])
  redis.call('pexpire', KEYS[1], ARGV[3])
end
redis.call('hset', KEYS[1], 'state', 'uncertain')
return 1
""",
    keys=1,
)
RELEASE = LuaScript(
    """
local h = redis.call('hmget', KEYS[1], 'state', 'owner')
if h[1] == 'pending' and h[2] == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
""",
    keys=1,
)


class RedisIdempotencyStore:
    """`IdempotencyStore` on Redis or Redis Cluster (one key per record: any slot)."""

    def __init__(
        self,
        client: RedisClient,
        ttl_s: float = DAY_S,
        clock: Callable[[], float] = time.time,
        settle_s: float = SETTLE_S,
    ) -> None:
        """Share the gateway's Redis client."""
        self._r = guarded(client)
        self._ttl_ms = int(ttl_s * 1000)
        self._clock = clock
        self._settle_s = settle_s

    async def reserve(
        self, key: str, fingerprint: str, owner: str
    ) -> IdempotencyRecord | None:
        """Create `pending` atomically, or return the record that exists."""
        left = await self._settle_left()
        if left > 0:  # measured on the server's clock: one wait covers it
            await asyncio.sleep(left)
        now = self._clock()
        found = await self._eval(
            RESERVE, key, fingerprint, repr(now), owner, self._ttl_ms
        )
        if not found:
            return None
        fp, state, started, status, body, holder, beat = found
        return IdempotencyRecord(
            fingerprint=fp.decode(),
            state=state.decode(),
            started_at=float(started or now),
            expires_at=now + self._ttl_ms / 1000,
            status=int(status or 0),
            body=body or b"",
            owner=(holder or b"").decode(),
            beat=int(beat or 0),
        )

    async def beat(self, key: str, fingerprint: str, owner: str) -> bool:
        """The owner is alive; a record Redis lost is put back as the owner's."""
        return bool(
            await self._eval(
                BEAT, key, fingerprint, owner, repr(self._clock()), self._ttl_ms
            )
        )

    async def take_over(self, key: str, owner: str, seen: tuple[str, int]) -> bool:
        """`uncertain` (or a silent `pending`) -> ours, once across all replicas."""
        return bool(
            await self._eval(
                TAKE_OVER, key, owner, repr(self._clock()), seen[0], seen[1]
            )
        )

    async def complete(
        self, key: str, fingerprint: str, status: int, body: bytes
    ) -> bool:
        """Keep the answer for replay; False when the key holds another request."""
        return bool(
            await self._eval(
                COMPLETE,
                key,
                fingerprint,
                status,
                body,
                repr(self._clock()),
                self._ttl_ms,
            )
        )

    async def mark_uncertain(self, key: str, fingerprint: str) -> None:
        """The outcome is unknown (a record Redis lost is put back as such)."""
        await self._eval(
            MARK_UNCERTAIN, key, fingerprint, repr(self._clock()), self._ttl_ms
        )

    async def release(self, key: str, owner: str) -> None:
        """Forget the key if it is still our pending one."""
        await self._eval(RELEASE, key, owner)

    async def _settle_left(self) -> float:
        try:
            return await settle_left(self._r, self._settle_s)
        except REDIS_FAILURES as err:
            raise IdempotencyUnavailableError from err

    async def _eval(self, script: LuaScript, key: str, *args: EncodableT) -> Any:
        try:
            return await script.run(self._r, [_key(key)], *args)
        except REDIS_FAILURES as err:
            raise IdempotencyUnavailableError from err


def _key(key: str) -> str:
    return f"ig:v1:idem:{key}"

"""An upstream rate budget shared by every replica: a token bucket in Redis (Lua, atomic).

Same sizing and signals as `LocalRateLimiter`, but the bucket and the "hold until" instant
live in Redis, so N replicas together stay under the upstream's limit. The funnel's
`observe`/`pause` are synchronous: they update the local limiter at once and the shared
state in the background. If Redis cannot be reached, the local limiter paces this process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from gateway.state.ratelimit import (
    BACKGROUND,
    REMAINING,
    RESET,
    LocalRateLimiter,
    background_reserve,
    capped_until,
    check_wait,
    parse_remaining,
    parse_reset,
)
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_calls import guarded
from gateway.state.redis_client import REDIS_FAILURES, LuaScript, RedisClient

TAKE = LuaScript(
    """
local hold = tonumber(redis.call('get', KEYS[2]) or '0')
local now = tonumber(ARGV[1])
if hold > now then return tostring(hold - now) end
local rate, cap = tonumber(ARGV[2]), tonumber(ARGV[3])
if rate <= 0 then return '0' end
local b = redis.call('hmget', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(b[1] or ARGV[3])
local stamp = tonumber(b[2] or ARGV[1])
tokens = math.min(cap, tokens + (now - stamp) * rate)
local need = 1 + tonumber(ARGV[4] or '0')
local wait = 0
if tokens >= need then tokens = tokens - 1 else wait = (need - tokens) / rate end
redis.call('hset', KEYS[1], 'tokens', tostring(tokens), 'stamp', ARGV[1])
redis.call('expire', KEYS[1], 3600)
return tostring(wait)
""",
    keys=2,
)
HOLD = LuaScript(
    """
local hold = tonumber(redis.call('get', KEYS[1]) or '0')
if tonumber(ARGV[1]) > hold then redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) end
return 1
""",
    keys=1,
)


class RedisRateLimiter:
    """`RateLimiter` whose budget is shared through Redis."""

    def __init__(
        self,
        client: RedisClient,
        health: RedisHealth,
        connection: str,
        local: LocalRateLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`local` (sized like the connection) serves when Redis is away."""
        self._r = guarded(client)
        self._health = health
        self._local = local
        self._clock = clock
        self._keys = (f"ig:v1:bucket:{{{connection}}}", f"ig:v1:hold:{{{connection}}}")
        self._pending: set[asyncio.Task[None]] = set()
        self._queue = asyncio.Lock()  # live callers of this process, in arrival order

    async def acquire(self) -> None:
        """Take one token from the shared bucket, waiting as long as it says.

        Live callers of this process queue in arrival order and only the head asks
        Redis, as `LocalRateLimiter` does: were every waiter to poll, the first to wake
        after each refill would win, and an unlucky request could lose every draw until
        its deadline (a 504 while the others were served).
        """
        if BACKGROUND.get():
            await self._take()
            return
        async with self._queue:
            await self._take()

    async def _take(self) -> None:
        rate, capacity = self._local.rate, self._local.capacity
        while True:
            try:
                wait = float(
                    await TAKE.run(
                        self._r,
                        self._keys,
                        repr(self._clock()),
                        rate,
                        capacity,
                        background_reserve(capacity),
                    )
                )
            except REDIS_FAILURES as err:
                self._health.down(err)
                await self._local.acquire()
                return
            if wait <= 0:
                return
            wait = min(wait, self._local.max_pause_s)
            check_wait(wait)
            await asyncio.sleep(wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """At zero remaining, hold every replica until the announced reset."""
        self._local.observe(headers)
        remaining = parse_remaining(headers.get(REMAINING))
        if remaining is not None and remaining <= 0:
            now = self._clock()
            reset = parse_reset(headers.get(RESET), now)
            self._hold(capped_until(reset, now, self._local.max_pause_s))

    def pause(self, seconds: float) -> None:
        """Hold every replica for `seconds` (after a 429), at most `max_pause_s`."""
        self._local.pause(seconds)
        self._hold(self._clock() + min(seconds, self._local.max_pause_s))

    def _hold(self, until: float) -> None:
        task = asyncio.get_running_loop().create_task(self._write_hold(until))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _write_hold(self, until: float) -> None:
        ttl_ms = max(1, int((until - self._clock()) * 1000))
        try:
            await HOLD.run(self._r, [self._keys[1]], repr(until), ttl_ms)
        except REDIS_FAILURES as err:
            self._health.down(err)

"""The Redis cache backend (`REDIS_URL`): one Cache for every replica, failing open.

Each entry is one string: 24 bytes of instants (`fetched_at`, `fresh_until`,
`stale_until`, big-endian doubles) then the value, with a TTL of `stale_until`. The load
lock is a short lease, `SET NX PX` with a random token, renewed by its owner and released
by compare-and-delete scripts. Keys are
namespaced and versioned by the loader (`ig:v1:`). Any Redis failure makes the call behave
as a miss (get), a no-op (set, delete) or a granted local lock, so requests keep being
answered from the upstreams while Redis is away; `RedisHealth` says so (logged once per
change) and the client library reconnects by itself when Redis returns.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from gateway.state.cache import LOCAL_LOCK, CacheEntry
from gateway.state.redis_calls import bounded, guarded
from gateway.state.redis_client import REDIS_FAILURES, UNLOCK, LuaScript, RedisClient

log = structlog.get_logger("redis")
HEADER = struct.Struct("!ddd")
STAMP = struct.Struct("!d")  # the header's first field: `fetched_at`, the version
RENEW = LuaScript(
    """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
""",
    keys=1,
)


class RedisHealth:
    """Whether Redis answered the last call; logged once per change."""

    def __init__(self) -> None:
        """Unknown until the first call."""
        self.state = "unknown"
        self.last_error: str | None = None

    def up(self) -> None:
        """A call succeeded."""
        if self.state != "up":
            log.info("redis_up")
        self.state = "up"

    def down(self, err: BaseException) -> None:
        """A call failed; the gateway carries on without Redis.

        A call cut short by the request's own deadline says nothing about Redis.
        """
        if getattr(err, "request_bound", False):
            return
        self.last_error = type(err).__name__
        if self.state != "down":
            log.warning("redis_down", error=self.last_error)
        self.state = "down"


class RedisCache:
    """`Cache` on Redis (or Redis Cluster): same contract as the memory backend."""

    def __init__(
        self,
        client: RedisClient,
        health: RedisHealth,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`client` is a `redis.asyncio.Redis` or `RedisCluster` (bytes responses)."""
        self._r = guarded(client)
        self.health = health
        self._clock = clock

    async def get(self, key: str) -> CacheEntry | None:
        """The entry, or None when absent, expired, unreadable or Redis is away."""
        try:
            blob = await self._r.get(key)
        except REDIS_FAILURES as err:
            self.health.down(err)
            return None
        self.health.up()
        if not isinstance(blob, bytes) or len(blob) < HEADER.size:
            return None
        fetched, fresh, stale = HEADER.unpack_from(blob)
        if self._clock() >= stale:
            return None
        return CacheEntry(bytes(blob[HEADER.size :]), fetched, fresh, stale)

    async def stamps(self, keys: list[str]) -> list[float | None]:
        """Each entry's `fetched_at` (its first 8 bytes), in one round trip.

        `GETRANGE` reads 8 bytes, not the value; several keys go in one pipeline (keys
        sharing a hash tag sit on one Cluster node). Redis away: all None (a miss).
        """
        try:
            if len(keys) == 1:
                heads = [await self._r.getrange(keys[0], 0, STAMP.size - 1)]
            else:
                async with self._r.pipeline(transaction=False) as pipe:
                    for key in keys:
                        pipe.getrange(key, 0, STAMP.size - 1)
                    heads = await bounded(pipe.execute())
        except REDIS_FAILURES as err:
            self.health.down(err)
            return [None] * len(keys)
        self.health.up()
        return [
            STAMP.unpack(head)[0]
            if isinstance(head, bytes) and len(head) == STAMP.size
            else None
            for head in heads
        ]

    async def set(self, key: str, entry: CacheEntry) -> None:
        """Store until `stale_until` (nothing if already past it)."""
        ttl_ms = int((entry.stale_until - self._clock()) * 1000)
        if ttl_ms <= 0:
            return
        blob = (
            HEADER.pack(entry.fetched_at, entry.fresh_until, entry.stale_until)
            + entry.value
        )
        await self._call("set", key, blob, px=ttl_ms)

    async def delete(self, key: str) -> None:
        """Forget the key."""
        await self._call("delete", key)

    async def try_lock(self, key: str, ttl_s: float) -> str | None:
        """`SET NX PX`: a token, None if held elsewhere, or a local grant if Redis is away."""
        token = uuid.uuid4().hex
        try:
            taken = await self._r.set(_lock(key), token, nx=True, px=int(ttl_s * 1000))
        except REDIS_FAILURES as err:
            self.health.down(err)
            return LOCAL_LOCK  # fail open: this process's single-flight still holds
        self.health.up()
        return token if taken else None

    async def locked(self, key: str) -> bool:
        """Whether the lock key exists (False when Redis is away: stop waiting)."""
        try:
            exists = await self._r.exists(_lock(key))
        except REDIS_FAILURES as err:
            self.health.down(err)
            return False
        return bool(exists)

    async def renew(self, key: str, token: str, ttl_s: float) -> bool:
        """Extend our lease (`PEXPIRE` if we still hold it); False once lost.

        Redis away: True, the local grant stands and a lease held there lapses alone.
        """
        if token == LOCAL_LOCK:
            return True
        renewed = await self._call(
            "eval", RENEW.source, RENEW.keys, _lock(key), token, int(ttl_s * 1000)
        )
        return renewed is None or bool(renewed)

    async def unlock(self, key: str, token: str) -> None:
        """Compare-and-delete, so a lock that expired and was retaken is left alone."""
        if token != LOCAL_LOCK:
            await self._call("eval", UNLOCK.source, UNLOCK.keys, _lock(key), token)

    async def ping(self) -> bool:
        """Whether Redis answers right now (for `/readyz`)."""
        return await self._call("ping") is not None

    async def _call(self, command: str, *args: Any, **kwargs: Any) -> Any:
        try:
            result = await getattr(self._r, command)(*args, **kwargs)
        except REDIS_FAILURES as err:
            self.health.down(err)
            return None
        self.health.up()
        return result if result is not None else True


def _lock(key: str) -> str:
    # The same hash tag as the entry keeps both in one Redis Cluster slot; the prefix
    # keeps it inside the gateway's ACL key pattern (ig:v1:*).
    return f"ig:v1:lock:{{{key}}}"

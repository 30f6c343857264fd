"""Upstream tokens shared by every replica through Redis: one refresh at a time, cluster-wide.

A connection's token lives in one hash (`ig:v1:token:{<connection>}`) with a `version`.
To refresh, a replica takes a lock (`SET NX PX`), re-reads the token (another replica may
have just refreshed: then it uses that one), calls the upstream, and writes the result
with a compare-and-set on the version it read — so a slow replica never overwrites a newer
token — before anyone uses it (a rotated refresh token must not be lost). Replicas that
find the lock taken wait for the new version instead of refreshing again. Each process
keeps a local copy so a valid token costs no Redis round trip. If Redis is away, the
in-process provider takes over (fail-open) until it is back.

The token keys hold live credentials: give the gateway its own Redis ACL user, use
`rediss://` (TLS) off-host, and keep Redis off public networks.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog
from redis.exceptions import RedisError

from gateway.redis_cache import RedisHealth
from gateway.settings import Secret
from gateway.tokens import LocalTokenProvider, Token, TokenFetcher, TokenState

log = structlog.get_logger("tokens")
FAILURES = (RedisError, OSError, TimeoutError)
LOCK_TTL_MS = 30_000
WAIT_STEP_S = 0.05
CAS_WRITE = """
local current = tonumber(redis.call('hget', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then return 0 end
redis.call('hset', KEYS[1], 'access', ARGV[2], 'issued_at', ARGV[3], 'expires_at', ARGV[4],
           'refresh', ARGV[5], 'version', current + 1)
return 1
"""
EXPIRE_IF_SAME = """
if redis.call('hget', KEYS[1], 'access') == ARGV[1] then
  redis.call('hset', KEYS[1], 'expires_at', redis.call('hget', KEYS[1], 'issued_at'))
  return 1
end
return 0
"""
UNLOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class RedisTokenProvider:
    """`TokenProvider` shared through Redis, falling back to a local one."""

    def __init__(
        self,
        client: Any,
        health: RedisHealth,
        fallback: LocalTokenProvider,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Share the gateway's Redis client and health; `fallback` serves while it is away."""
        self._r = client
        self._health = health
        self._fallback = fallback
        self._clock = clock
        self._local: dict[str, tuple[Token, int]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.refreshes: dict[str, int] = {}

    async def get(self, connection: str, fetch: TokenFetcher) -> Token:
        """A usable token; at most one refresh at a time across all replicas."""
        cached = self._local.get(connection)
        if cached is not None and cached[0].usable(self._clock()):
            return cached[0]
        try:
            async with self._locks.setdefault(connection, asyncio.Lock()):
                return await self._shared_get(connection, fetch)
        except FAILURES as err:
            self._health.down(err)
            # Carry on alone, from the newest token this process has seen: refreshing with
            # an older refresh token would be a reuse, and rotating upstreams revoke on that.
            if cached is not None:
                self._fallback.seed(connection, cached[0])
            return await self._fallback.get(connection, fetch)

    async def _shared_get(self, connection: str, fetch: TokenFetcher) -> Token:
        while True:
            token, version = await self._read(connection)
            if token is not None and token.usable(self._clock()):
                self._local[connection] = (token, version)
                return token
            holder = uuid.uuid4().hex
            if await self._r.set(_lock(connection), holder, nx=True, px=LOCK_TTL_MS):
                try:
                    return await self._refresh(connection, fetch, holder)
                finally:
                    await self._r.eval(UNLOCK, 1, _lock(connection), holder)
            await self._wait_for_new(connection, version)

    async def _refresh(
        self, connection: str, fetch: TokenFetcher, holder: str
    ) -> Token:
        token, version = await self._read(connection)  # under the lock: read again
        if token is not None and token.usable(self._clock()):
            return token
        fresh = await fetch(token)
        written = await self._r.eval(
            CAS_WRITE,
            1,
            _key(connection),
            version,
            fresh.access.reveal(),
            repr(fresh.issued_at),
            repr(fresh.expires_at),
            fresh.refresh.reveal() if fresh.refresh else "",
        )
        self._health.up()
        self.refreshes[connection] = self.refreshes.get(connection, 0) + 1
        if (
            not written
        ):  # a newer token exists (our lock had expired): never overwrite it
            log.warning(
                "token_write_lost_race", connection=connection, holder=holder[:8]
            )
            newer, newer_version = await self._read(connection)
            if newer is not None:
                self._local[connection] = (newer, newer_version)
                return newer
        self._local[connection] = (fresh, version + 1)
        return fresh

    async def _wait_for_new(self, connection: str, seen_version: int) -> None:
        deadline = self._clock() + LOCK_TTL_MS / 1000
        while self._clock() < deadline:
            await asyncio.sleep(WAIT_STEP_S)
            _, version = await self._read(connection)
            if version != seen_version or not await self._r.exists(_lock(connection)):
                return

    async def _read(self, connection: str) -> tuple[Token | None, int]:
        raw = await self._r.hgetall(_key(connection))
        self._health.up()
        if not raw or b"access" not in raw:
            return None, int(raw.get(b"version", 0)) if raw else 0
        refresh = raw.get(b"refresh", b"").decode()
        token = Token(
            Secret(raw[b"access"].decode()),
            float(raw[b"issued_at"]),
            float(raw[b"expires_at"]),
            Secret(refresh) if refresh else None,
        )
        return token, int(raw.get(b"version", 0))

    async def invalidate(self, connection: str, rejected: Token) -> None:
        """Expire the rejected token everywhere, unless a newer one replaced it."""
        cached = self._local.get(connection)
        if cached is not None and cached[0].access == rejected.access:
            del self._local[connection]
        try:
            await self._r.eval(
                EXPIRE_IF_SAME, 1, _key(connection), rejected.access.reveal()
            )
        except FAILURES as err:
            self._health.down(err)
        await self._fallback.invalidate(connection, rejected)

    def state(self, connection: str) -> TokenState:
        """What this process knows, never the token."""
        cached = self._local.get(connection)
        if cached is None:
            return self._fallback.state(connection)
        left = max(0.0, round(cached[0].expires_at - self._clock(), 1))
        return TokenState(
            present=True, expires_in_s=left, refreshes=self.refreshes.get(connection, 0)
        )


def _key(connection: str) -> str:
    return f"ig:v1:token:{{{connection}}}"


def _lock(connection: str) -> str:
    return f"ig:v1:tokenlock:{{{connection}}}"

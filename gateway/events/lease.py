"""Who runs the change detector: a leader lease with a fencing token.

The lease is a Redis key holding the holder's fencing token (a counter only ever
increased), set with a short expiry that the live holder renews. A holder that dies
stops renewing and another replica takes over once the key expires (within `lease_s`).
Every write the detector makes is checked, atomically, against the key still holding
its token (see `RedisEventStore.commit`), so a paused ex-leader that wakes up late cannot
record anything. Without Redis there is one process, which always leads.
"""

from __future__ import annotations

from typing import Protocol

from gateway.state.redis_client import REDIS_FAILURES, UNLOCK, LuaScript, RedisClient

TAKE_OR_RENEW = LuaScript(
    """
local cur = redis.call('get', KEYS[1])
if cur then
  if cur == ARGV[1] then
    redis.call('pexpire', KEYS[1], ARGV[2])
    return cur
  end
  return false
end
local token = redis.call('incr', KEYS[2])
redis.call('set', KEYS[1], token, 'px', ARGV[2])
return tostring(token)
""",
    keys=2,
)


class Lease(Protocol):
    """A leadership that must be renewed; its token fences the leader's writes."""

    async def hold(self, token: str | None) -> str | None:
        """Take or renew the lease; the fencing token while held, else None."""
        ...

    async def release(self, token: str) -> None:
        """Give the lease up (at shutdown), if still ours."""
        ...


class LocalLease:
    """One process, always the leader."""

    async def hold(self, token: str | None) -> str | None:
        """Always held."""
        return token or "local"

    async def release(self, token: str) -> None:
        """Nothing to release."""


class RedisLease:
    """A lease shared by every replica through one Redis key."""

    def __init__(
        self, client: RedisClient, key: str, fence_key: str, ttl_s: float
    ) -> None:
        """`key` holds the token; `fence_key` is the token counter."""
        self._client = client
        self._keys = [key, fence_key]
        self._ttl_ms = max(1, int(ttl_s * 1000))

    async def hold(self, token: str | None) -> str | None:
        """Take the free lease or renew ours; None when another holds it or Redis fails."""
        try:
            got = await TAKE_OR_RENEW.run(
                self._client, self._keys, token or "", self._ttl_ms
            )
        except REDIS_FAILURES:
            return None
        if got is None:
            return None
        return got.decode() if isinstance(got, bytes) else str(got)

    async def release(self, token: str) -> None:
        """Delete the key if it still holds our token (best effort)."""
        try:
            await UNLOCK.run(self._client, [self._keys[0]], token)
        except REDIS_FAILURES:
            return

"""The Redis client every Redis-backed store shares: its type, its failures, its scripts.

`RedisClient` is a `redis.asyncio` single-node or Cluster client; `connect_redis` makes
one with the gateway's short timeouts and `close_redis` closes it. `REDIS_FAILURES` is
what "Redis is away" looks like to a caller (the stores fail open on it). `LuaScript`
is a script with the number of keys it touches; the scripts more than one store runs
(`UNLOCK`, compare-and-delete of a token-held key) are defined here, once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, cast

from redis.asyncio import BlockingConnectionPool, Redis, RedisCluster
from redis.exceptions import RedisError
from redis.typing import EncodableT

RedisClient: TypeAlias = Redis | RedisCluster
# A stream entry as the client answers it (bytes: no `decode_responses`).
StreamEntry: TypeAlias = tuple[bytes, dict[bytes, bytes]]
# A Redis error, a socket error, or a command that ran out of time (`bounded`).
REDIS_FAILURES = (RedisError, OSError, TimeoutError)

REDIS_TIMEOUT_S = 0.5
# Waiting for a free pooled connection is local queueing under a burst, not Redis being
# away: it may take longer than one slow command before the caller gives up (every Redis
# call is bounded by the request's deadline anyway). Too short a wait made a rotating
# grant's refresh look like "token store unavailable" during a 300-request burst.
REDIS_POOL_WAIT_S = 2.0
REDIS_MAX_CONNECTIONS = 64


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A Lua script and how many keys it takes (`KEYS`; its other arguments are `ARGV`).

    `keys` None: a script over a set of keys that varies from call to call.
    """

    source: str
    keys: int | None

    async def run(
        self, client: RedisClient, keys: Sequence[str], *args: EncodableT
    ) -> Any:
        """`EVAL` the script on `keys` with `args`; a wrong number of keys is a bug."""
        if self.keys is not None and len(keys) != self.keys:
            msg = f"the script takes {self.keys} key(s), not {len(keys)}"
            raise ValueError(msg)
        return await client.eval(self.source, len(keys), *keys, *args)


# Delete KEYS[1] only while it still holds ARGV[1]: a lease that expired and was taken
# by someone else is left alone. Returns 1 when deleted, else 0.
UNLOCK = LuaScript(
    """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
""",
    keys=1,
)


def as_text(reply: bytes | str) -> str:
    """A reply as text (the client answers bytes: no `decode_responses`)."""
    return reply.decode() if isinstance(reply, bytes) else reply


def stream_entries(reply: object) -> list[StreamEntry]:
    """An `XRANGE`, `XREVRANGE` or `XCLAIM` reply, which redis-py types loosely."""
    return cast("list[StreamEntry]", reply)


def connect_redis(url: str, *, cluster: bool) -> RedisClient:
    """A Redis (or Redis Cluster) client with short timeouts.

    A slow Redis must not stall requests: they fall back to the upstreams instead.
    """
    if cluster:
        return RedisCluster.from_url(
            url,
            max_connections=REDIS_MAX_CONNECTIONS,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
    # A blocking pool: under a burst, callers queue for a connection (briefly) instead of
    # failing with "too many connections", which would look like Redis being down.
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=REDIS_MAX_CONNECTIONS,
        timeout=REDIS_POOL_WAIT_S,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )
    return Redis(connection_pool=pool)


async def close_redis(client: RedisClient) -> None:
    """Close a client from `connect_redis`, its connection pool included."""
    if isinstance(client, RedisCluster):
        await client.aclose()
    else:
        await client.aclose(close_connection_pool=True)

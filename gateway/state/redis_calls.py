"""Every Redis command bounded by the request's deadline, and cancellable for real.

`guarded(client)` wraps a `redis.asyncio` client (single node or Cluster) so that each
command runs in its own task that the caller awaits through a shield with a time limit:
the smaller of `CALL_MAX_S` and what is left of the request's deadline. Two things follow.
No Redis call outlives the deadline (a cluster client retrying redirects or reconnecting
can take several socket timeouts). And a caller that is cancelled stops waiting at once,
even when the client library swallows a cancellation in its own retry or clean-up code
(RedisCluster does, under load): the command's task is cancelled and left to finish on its
own, bounded by the socket timeout. A call that runs out of time raises
`RedisDeadlineError`, a `TimeoutError`, which the stores already treat as "Redis away".

A Cluster client learns the topology on first use. Commands sent concurrently while it
does (a cold start under a burst) race in redis-py: some are written to a connection
torn down under them (`AttributeError ... 'writelines'`) or hang until the bound. So each
command of a Cluster client first awaits `initialize()`: one topology fetch behind the
client's own lock, a no-op once it is known.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

from redis.asyncio import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.state.redis_client import RedisClient
from gateway.upstream.deadline import time_left

CALL_MAX_S = 5.0  # one command, retries inside the client included (a safety net)
T = TypeVar("T")
# Methods that build an object rather than send a command (a pipeline is awaitable, but is
# used as a context manager; its `execute` is what to bound).
FACTORIES = frozenset({"pipeline", "pubsub", "lock", "register_script", "monitor"})
_orphans: set[asyncio.Future[Any]] = set()  # commands whose caller stopped waiting


class RedisDeadlineError(TimeoutError):
    """A Redis command did not finish within its bound.

    `request_bound` says the request's deadline (not Redis's slowness) set that bound:
    then Redis is not to be reported down.
    """

    def __init__(self, message: str, *, request_bound: bool) -> None:
        """Say which bound ran out."""
        super().__init__(message)
        self.request_bound = request_bound


async def bounded(
    awaitable: Awaitable[T],
    limit_s: float = CALL_MAX_S,
    *,
    unsent: Awaitable[Any] | None = None,
) -> T:
    """Await a Redis command within `limit_s` and the request's deadline.

    `unsent`: the client's own command coroutine when `awaitable` wraps it; a wrapper
    closed before it ran never awaits it, so it is closed too (or Python warns, late,
    in whatever test runs then, that it was never awaited).
    """
    left = time_left()
    limit = limit_s if left is None else min(limit_s, left)
    if limit <= 0:
        for coro in (awaitable, unsent):
            if inspect.iscoroutine(coro):
                coro.close()
        raise RedisDeadlineError(
            "the request's deadline passed before a Redis call", request_bound=True
        )
    task = asyncio.ensure_future(awaitable)
    _orphans.add(task)
    task.add_done_callback(_forget)
    try:
        # Not `asyncio.wait_for`: on Python 3.11 a cancel landing in the iteration the
        # answer does is swallowed (it returns the answer), and a cancelled caller runs on.
        async with asyncio.timeout(limit):
            return await asyncio.shield(task)
    except TimeoutError as err:
        task.cancel()
        raise RedisDeadlineError(
            f"Redis did not answer within {limit:.2f}s", request_bound=limit < limit_s
        ) from err
    except asyncio.CancelledError:
        task.cancel()
        raise


def _forget(task: asyncio.Future[Any]) -> None:
    _orphans.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: nobody may be waiting for it any more


class GuardedRedis:
    """A Redis client whose awaitable commands go through `bounded`."""

    def __init__(self, client: RedisClient) -> None:
        """Wrap `client` (a `Redis` or `RedisCluster`)."""
        self.client = client
        self._cluster = client if isinstance(client, RedisCluster) else None

    def __getattr__(self, name: str) -> Any:
        """The client's attribute; methods return bounded awaitables."""
        attr = getattr(self.client, name)
        if not callable(attr) or name in FACTORIES:
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if not inspect.isawaitable(result):
                return result
            command = result
            if self._cluster is not None:
                command = _after_initialize(self._cluster, command)
            return bounded(_connection_errors(command), unsent=result)

        return call

    async def aclose(self) -> None:
        """Close the wrapped client (not bounded: shutdown must finish)."""
        await self.client.aclose()


async def _after_initialize(cluster: RedisCluster, command: Awaitable[T]) -> T:
    """`command` once the Cluster client knows the topology (never concurrently with that)."""
    try:
        await cluster.initialize()
    except BaseException:
        if inspect.iscoroutine(command):
            command.close()  # never sent: no "never awaited" warning
        raise
    return await command


async def _connection_errors(awaitable: Awaitable[T]) -> T:
    """A connection torn down under a command is a connection error, not a crash.

    The cluster client can send on a connection whose writer is already gone
    (`AttributeError: 'NoneType' object has no attribute 'writelines'`: its first-use race,
    avoided by `_after_initialize`, or a topology refresh under load); callers treat
    Redis errors as "Redis away" and carry on, so that is what this becomes.
    """
    try:
        return await awaitable
    except AttributeError as err:
        raise RedisConnectionError("Redis connection lost mid-command") from err


def guarded(client: RedisClient) -> RedisClient:
    """`client` wrapped once (wrapping a wrapped client returns it unchanged).

    Typed as the client it wraps: every command keeps the client's signature, only the
    wait for its answer is bounded.
    """
    seen: object = client  # a wrapped client passes for a plain one
    if isinstance(seen, GuardedRedis):
        return client
    return cast("RedisClient", GuardedRedis(client))

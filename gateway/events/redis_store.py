"""The event log in Redis Streams: durable, shared by every replica, trimmed by age.

Keys share one hash tag (`{events}`) so the commit script may touch them all, in a
Redis Cluster too. The commit is one Lua script: it checks the detector's fencing token
against the lease key, then appends the events to the log, copies each to the outbox
of every webhook that wants it, and writes the snapshot — all or nothing. Entries older
than the retention leave the log (`XADD ... MINID ~`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from redis.exceptions import ResponseError

from gateway.config.settings import WebhookSettings
from gateway.events.model import NewEvent, StoredEvent
from gateway.events.store import BASELINE, LeaseLostError, id_key
from gateway.state.redis_client import (
    REDIS_FAILURES,
    LuaScript,
    RedisClient,
    as_text,
    stream_entries,
)

PREFIX = "ig:v1:{events}:"
POLL_S = 0.25
COMMIT = LuaScript(
    """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return redis.error_reply('LEASE_LOST') end
local i = 4
local ids = {}
for e = 1, tonumber(ARGV[3]) do
  local f = {'type', ARGV[i], 'connection', ARGV[i+1], 'invoice', ARGV[i+2],
             'at', ARGV[i+3], 'data', ARGV[i+4]}
  local id = redis.call('xadd', KEYS[2], 'MINID', '~', ARGV[2], '*', unpack(f))
  ids[#ids + 1] = id
  local hooks = tonumber(ARGV[i+5])
  for k = 1, hooks do
    redis.call('xadd', KEYS[tonumber(ARGV[i+5+k])], 'MINID', '~', ARGV[2], '*',
               'event', id, unpack(f))
  end
  i = i + 6 + hooks
end
for k = 1, tonumber(ARGV[i]) do
  redis.call('hset', KEYS[3], ARGV[i + 2*k - 1], ARGV[i + 2*k])
end
i = i + 1 + 2 * tonumber(ARGV[i])
for k = 1, tonumber(ARGV[i]) do redis.call('hdel', KEYS[3], ARGV[i + k]) end
redis.call('hset', KEYS[3], ARGV[i + tonumber(ARGV[i]) + 1], '1')
return ids
""",
    keys=None,
)


def key(*parts: str) -> str:
    """A key of the events family."""
    return PREFIX + ":".join(parts)


LOG = key("log")
LEASE = key("leader")
FENCE = key("fence")


def outbox_key(webhook: str) -> str:
    """The stream of deliveries of one webhook."""
    return key("out", webhook)


class RedisEventStore:
    """`EventStore` on Redis Streams (Redis or Redis Cluster)."""

    def __init__(
        self,
        client: RedisClient,
        webhooks: Sequence[WebhookSettings],
        retention_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Events older than `retention_s` are trimmed from the log and the outboxes."""
        self._client = client
        self._webhooks = webhooks
        self._retention_s = retention_s
        self._clock = clock
        self._latest = "0-0"  # the newest id the tail poller saw
        self._tick = asyncio.Event()  # set (and replaced) when it moves
        self._tailer: asyncio.Task[None] | None = None

    async def snapshot(self, connection: str) -> dict[str, str] | None:
        """The marks of the last commit; None before the first."""
        raw = await self._client.hgetall(key("snap", connection))
        if not raw:
            return None
        marks = {as_text(k): as_text(v) for k, v in raw.items()}
        marks.pop(BASELINE, None)
        return marks

    async def commit(
        self,
        connection: str,
        fence: str,
        events: Sequence[NewEvent],
        marks: Mapping[str, str],
        dropped: Sequence[str],
    ) -> list[str]:
        """One fenced script: log, outboxes and snapshot together."""
        keys = [LEASE, LOG, key("snap", connection)]
        keys += [outbox_key(h.name) for h in self._webhooks]
        minid = f"{int((self._clock() - self._retention_s) * 1000)}-0"
        args: list[Any] = [fence, minid, len(events)]
        for new in events:
            args += [new.type, new.connection, new.invoice.id, new.occurred_at]
            args.append(new.data())
            wanted = [
                str(4 + n)
                for n, hook in enumerate(self._webhooks)
                if hook.wants(new.type, new.connection)
            ]
            args += [len(wanted), *wanted]
        args.append(len(marks))
        for invoice_id, value in marks.items():
            args += [invoice_id, value]
        args += [len(dropped), *dropped, BASELINE]
        try:
            ids = await COMMIT.run(self._client, keys, *args)
        except ResponseError as err:
            if "LEASE_LOST" in str(err):
                raise LeaseLostError(connection) from err
            raise
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    async def read(self, after: str, count: int) -> list[StoredEvent]:
        """Events strictly after `after`, oldest first."""
        reply = await self._client.xrange(LOG, min=f"({after}", max="+", count=count)
        return [
            StoredEvent.of(
                entry_id.decode(), {k.decode(): v for k, v in fields.items()}
            )
            for entry_id, fields in stream_entries(reply)
        ]

    async def latest(self) -> str:
        """The newest entry's id."""
        rows = stream_entries(await self._client.xrevrange(LOG, count=1))
        return rows[0][0].decode() if rows else "0-0"

    async def wait(self, after: str, timeout_s: float) -> None:
        """Until the log's tail passes `after` (or the timeout).

        One task per process polls the tail and wakes every waiter, so a thousand
        long-polls cost Redis one small read per poll interval, not a thousand.
        """
        if await self.read(after, 1):
            return
        if self._tailer is None or self._tailer.done():
            self._tailer = asyncio.create_task(self._tail())
        try:
            async with asyncio.timeout(timeout_s):
                while id_key(self._latest) <= id_key(after):
                    await self._tick.wait()
        except TimeoutError:
            return

    async def close(self) -> None:
        """Stop the tail poller."""
        if self._tailer is not None:
            self._tailer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._tailer

    async def _tail(self) -> None:
        while True:
            try:
                latest = await self.latest()
            except REDIS_FAILURES:
                latest = self._latest  # waiters time out; the feed answers empty
            if latest != self._latest:
                self._latest = latest
                self._tick.set()
                self._tick = asyncio.Event()
            await asyncio.sleep(POLL_S)

"""A webhook's outbox as a Redis Stream read by one consumer group shared by all replicas.

Each replica is a consumer. New entries are taken with `XREADGROUP` inside a script
that also files each under its invoice in an ordering set (`<invoice>NUL<entry id>`,
sorted by bytes), so "the oldest undelivered entry of this invoice" is one range read
no matter which replica holds it. A replica re-claims its own pending entries on every
pass (which resets their idle time); entries of a replica that stopped doing so — it
crashed — become idle and are taken over with `XAUTOCLAIM` by another. Retry state
(attempts, next try, last error) is kept per entry in a hash; dead letters in another.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from redis.exceptions import ResponseError
from redis.typing import StreamIdT

from gateway.events.model import StoredEvent
from gateway.events.outbox import RECENT, Delivery, attempt_entry, dead_letter
from gateway.events.redis_store import key, outbox_key
from gateway.state.redis_client import REDIS_FAILURES, LuaScript, RedisClient

GROUP = "delivery"
BATCH = 100
TAKE = LuaScript(
    """
local r = redis.call('xreadgroup', 'GROUP', ARGV[1], ARGV[2], 'COUNT', ARGV[3],
                     'STREAMS', KEYS[1], '>')
if not r then return {} end
for _, e in ipairs(r[1][2]) do
  local ms, seq = string.match(e[1], '(%d+)-(%d+)')
  local padded = string.rep('0', 20 - #ms) .. ms .. '-' .. string.rep('0', 20 - #seq) .. seq
  local f = e[2]
  for j = 1, #f, 2 do
    if f[j] == 'invoice' then
      redis.call('zadd', KEYS[2], 0, f[j+1] .. '\\0' .. padded)
    end
  end
end
return #r[1][2]
""",
    keys=2,
)
FINISH = LuaScript(
    """
redis.call('xack', KEYS[1], ARGV[1], ARGV[2])
redis.call('xdel', KEYS[1], ARGV[2])
redis.call('zrem', KEYS[2], ARGV[3])
redis.call('hdel', KEYS[3], ARGV[2])
if ARGV[4] ~= '' then redis.call('hset', KEYS[4], ARGV[5], ARGV[4]) end
return 1
""",
    keys=4,
)


def _padded(entry_id: str) -> str:
    """An entry id whose byte order is its numeric order."""
    ms, _, seq = entry_id.partition("-")
    return f"{int(ms):020d}-{int(seq or 0):020d}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class RedisOutbox:
    """`Outbox` of one webhook, worked on by every replica."""

    def __init__(
        self, client: RedisClient, webhook: str, consumer: str, claim_idle_s: float
    ) -> None:
        """`consumer` names this replica; idle entries are taken after `claim_idle_s`."""
        self._client = client
        self._consumer = consumer
        self._claim_idle_ms = int(claim_idle_s * 1000)
        self._stream = outbox_key(webhook)
        self._order = key("order", webhook)
        self._state = key("state", webhook)
        self._dead = key("dead", webhook)
        self._log = key("attempts", webhook)
        self._ready = False

    async def due(self, now: float) -> list[Delivery]:
        """Claim the abandoned, take the new, renew ours; hand out the due heads."""
        await self._ensure_group()
        await self._client.xautoclaim(
            self._stream, GROUP, self._consumer, self._claim_idle_ms, "0-0", count=BATCH
        )
        await TAKE.run(
            self._client, [self._stream, self._order], GROUP, self._consumer, BATCH
        )
        pending = await self._client.xpending_range(
            self._stream, GROUP, "-", "+", BATCH, consumername=self._consumer
        )
        ids: list[StreamIdT] = [_text(p["message_id"]) for p in pending]
        if not ids:
            return []
        reply = await self._client.xclaim(self._stream, GROUP, self._consumer, 0, ids)
        # An entry deleted since it was delivered comes back without its fields.
        entries = cast("list[tuple[bytes, dict[bytes, bytes] | None]]", reply)
        states = await self._client.hmget(self._state, [e[0] for e in entries])
        out = []
        for (entry_id, fields), state in zip(entries, states, strict=True):
            if fields is None:
                continue
            delivery = self._delivery(_text(entry_id), fields, state)
            if delivery.next_at <= now and await self._is_head(delivery):
                out.append(delivery)
        return out

    async def touch(self) -> None:
        """Re-claim our pending entries (ids only), which resets their idle time."""
        pending = await self._client.xpending_range(
            self._stream, GROUP, "-", "+", BATCH, consumername=self._consumer
        )
        ids: list[StreamIdT] = [_text(p["message_id"]) for p in pending]
        if ids:
            await self._client.xclaim(
                self._stream, GROUP, self._consumer, 0, ids, justid=True
            )

    async def succeeded(self, delivery: Delivery) -> None:
        """Ack, unblock the invoice's next entry, forget the retry state."""
        await self._finish(delivery, "")

    async def retry_later(self, delivery: Delivery) -> None:
        """Store attempts, error and next try."""
        state = {
            "attempts": delivery.attempts,
            "first_at": delivery.first_at,
            "next_at": delivery.next_at,
            "error": delivery.error,
        }
        await self._client.hset(self._state, delivery.entry_id, orjson.dumps(state))

    async def dead(self, delivery: Delivery, now: float) -> None:
        """Ack and move to the dead letters, with the event for replays."""
        letter = {
            **dead_letter(delivery, now),
            "fields": {k: _text(v) for k, v in delivery.event.fields().items()},
        }
        await self._finish(delivery, orjson.dumps(letter).decode())

    async def dead_letters(self) -> list[dict[str, Any]]:
        """Every dead letter, oldest event first."""
        raw = await self._client.hgetall(self._dead)
        letters = [orjson.loads(v) for v in raw.values()]
        for letter in letters:
            letter.pop("fields", None)
        return sorted(letters, key=lambda x: _padded(x["event_id"]))

    async def log_attempt(self, delivery: Delivery, outcome: str, now: float) -> None:
        """Push the attempt on the shared log, trimmed to the most recent."""
        entry = orjson.dumps(attempt_entry(delivery, outcome, now))
        async with self._client.pipeline(transaction=True) as pipe:
            pipe.lpush(self._log, entry)
            pipe.ltrim(self._log, 0, RECENT - 1)
            await pipe.execute()

    async def recent(self) -> list[dict[str, Any]]:
        """The kept attempts of every replica, newest first."""
        return [orjson.loads(x) for x in await self._client.lrange(self._log, 0, -1)]

    async def replay(self, event_id: str) -> bool:
        """Append the dead letter's event to the outbox again (same event id)."""
        raw = await self._client.hget(self._dead, event_id)
        if raw is None:
            return False
        fields = orjson.loads(raw)["fields"]
        await self._client.xadd(self._stream, {"event": event_id, **fields})
        await self._client.hdel(self._dead, event_id)
        return True

    async def leave(self) -> None:
        """At shutdown: drop this replica's consumer from the group if it holds nothing.

        A consumer with pending entries stays: they are claimed by another replica later.
        """
        try:
            pending = await self._client.xpending_range(
                self._stream, GROUP, "-", "+", 1, consumername=self._consumer
            )
            if not pending:
                await self._client.xgroup_delconsumer(
                    self._stream, GROUP, self._consumer
                )
        except REDIS_FAILURES:
            return

    async def _finish(self, delivery: Delivery, letter: str) -> None:
        member = f"{delivery.event.invoice_id}\0{_padded(delivery.entry_id)}"
        await FINISH.run(
            self._client,
            [self._stream, self._order, self._state, self._dead],
            GROUP,
            delivery.entry_id,
            member,
            letter,
            delivery.event.id,
        )

    async def _is_head(self, delivery: Delivery) -> bool:
        prefix = delivery.event.invoice_id + "\0"
        first = await self._client.zrangebylex(
            self._order, f"[{prefix}", f"({delivery.event.invoice_id}\1", 0, 1
        )
        return bool(first) and _text(first[0]) == prefix + _padded(delivery.entry_id)

    def _delivery(self, entry_id: str, fields: dict[Any, Any], state: Any) -> Delivery:
        named = {_text(k): v for k, v in fields.items()}
        event = StoredEvent.of(_text(named.pop("event")), named)
        if state is None:
            return Delivery(entry_id, event)
        saved = orjson.loads(state)
        return Delivery(
            entry_id,
            event,
            attempts=saved["attempts"],
            first_at=saved["first_at"],
            next_at=saved["next_at"],
            error=saved["error"],
        )

    async def _ensure_group(self) -> None:
        if self._ready:
            return
        try:
            await self._client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
        self._ready = True

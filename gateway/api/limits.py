"""Per-caller request budgets: GCRA in Redis (one round trip) or in memory.

Each caller (an API key, or an end user: issuer + subject) with a configured limit may
make `requests` per `window_s`, all at once or spread out (GCRA: a token bucket of that
size refilling continuously, kept as one "theoretical arrival time" per caller). Every
answer to such a caller carries the IETF `RateLimit-Policy` and `RateLimit` headers; an
answer over budget is a 429 problem with `Retry-After`. When Redis is configured the
budget is shared by every replica; if Redis cannot be reached, each process keeps its
own budget meanwhile (fail-open to a local limit, never to no limit).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.config.settings import CallerLimit
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_calls import guarded
from gateway.state.redis_client import REDIS_FAILURES, LuaScript, RedisClient

POLICY = "caller"
# KEYS[1] the caller's TAT; ARGV now, emission interval, window (all seconds).
# Returns {allowed 0/1, remaining, seconds to full, retry after} as strings.
GCRA = LuaScript(
    """
local now, t, w = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('get', KEYS[1]) or ARGV[1])
if tat < now then tat = now end
local new = tat + t
if new - now > w then
  return {'0', '0', tostring(tat - now), tostring(new - now - w)}
end
redis.call('set', KEYS[1], string.format('%.17g', new), 'px',
  math.max(1, math.ceil((new - now) * 1000)))
return {'1', tostring(math.floor((w - (new - now)) / t + 1e-6)), tostring(new - now), '0'}
""",
    keys=1,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """One request's standing against its caller's budget."""

    allowed: bool
    limit: CallerLimit
    remaining: int
    reset_s: float  # until the budget is whole again
    retry_after_s: float

    def headers(self) -> dict[str, str]:
        """`RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers)."""
        out = {
            "RateLimit-Policy": (
                f'"{POLICY}";q={self.limit.requests};w={math.ceil(self.limit.window_s)}'
            ),
            "RateLimit": f'"{POLICY}";r={self.remaining};t={math.ceil(self.reset_s)}',
        }
        if not self.allowed:
            out["Retry-After"] = str(max(1, math.ceil(self.retry_after_s)))
        return out


class CallerLimiter(Protocol):
    """Charges one request to a caller's budget."""

    async def charge(self, caller: str, limit: CallerLimit) -> Verdict:
        """Take one request from `caller`'s budget (or say when to come back)."""
        ...


def _verdict(limit: CallerLimit, tat: float, now: float) -> tuple[Verdict, float]:
    """GCRA on one caller's theoretical arrival time; (verdict, new TAT)."""
    interval = limit.window_s / limit.requests
    tat = max(tat, now)
    new = tat + interval
    if new - now > limit.window_s:
        late = new - now - limit.window_s
        return Verdict(
            allowed=False,
            limit=limit,
            remaining=0,
            reset_s=tat - now,
            retry_after_s=late,
        ), tat
    # (+1e-6: a whole count computed a hair below itself is still that count)
    remaining = math.floor((limit.window_s - (new - now)) / interval + 1e-6)
    return Verdict(
        allowed=True,
        limit=limit,
        remaining=remaining,
        reset_s=new - now,
        retry_after_s=0.0,
    ), new


class MemoryCallerLimiter:
    """Budgets of this process only (no Redis, or while Redis is away)."""

    MAX_CALLERS = 100_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Start with every budget whole."""
        self._clock = clock
        self._tat: OrderedDict[str, float] = OrderedDict()

    async def charge(self, caller: str, limit: CallerLimit) -> Verdict:
        """Charge synchronously (one event loop: no races)."""
        now = self._clock()
        verdict, tat = _verdict(limit, self._tat.get(caller, now), now)
        self._tat[caller] = tat
        self._tat.move_to_end(caller)
        while len(self._tat) > self.MAX_CALLERS:
            self._tat.popitem(last=False)
        return verdict


class RedisCallerLimiter:
    """Budgets shared by every replica: one Lua GCRA call per request."""

    def __init__(
        self,
        client: RedisClient,
        health: RedisHealth,
        fallback: MemoryCallerLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`fallback` charges locally while Redis cannot be reached."""
        self._r = guarded(client)  # bounded by the request deadline
        self._health = health
        self._fallback = fallback
        self._clock = clock

    async def charge(self, caller: str, limit: CallerLimit) -> Verdict:
        """One round trip; the caller's name is hashed into the key, never stored."""
        digest = hashlib.sha256(caller.encode()).hexdigest()[:32]
        try:
            raw = await GCRA.run(
                self._r,
                [f"ig:v1:caller:{digest}"],
                repr(self._clock()),
                repr(limit.window_s / limit.requests),
                repr(limit.window_s),
            )
        except REDIS_FAILURES as err:
            self._health.down(err)
            return await self._fallback.charge(caller, limit)
        self._health.up()
        allowed, remaining, reset, retry = (float(x) for x in raw)
        return Verdict(
            allowed=bool(allowed),
            limit=limit,
            remaining=int(remaining),
            reset_s=reset,
            retry_after_s=retry,
        )

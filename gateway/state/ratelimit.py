"""Upstream rate limits: pace calls before the upstream has to say no.

`RateLimiter` is the extension point (a Redis-shared bucket can replace the local one so
replicas share one budget). `LocalRateLimiter` combines what we were told with what we
observe: a token bucket sized from the connection's configured limit (rate and burst chosen
so that no fixed window of the upstream ever sees more than the limit), the upstream's own
`X-RateLimit-Remaining`/`X-RateLimit-Reset` (at zero remaining, wait for the reset), and a
pause after a 429 for its `Retry-After`. Without a configured limit only the last two apply.

Background work (the change detector) shares the budget at a lower priority: a call made
while `BACKGROUND` is set only spends tokens above a reserve kept for live traffic, and
never holds the queue that live callers wait in.

Upstream data never holds us for long: a reset or `Retry-After` further away than the
connection's `max_pause_s` (default 300 s) is cut to it, and a wait that would outlast the
current request's deadline is not waited at all — `acquire` raises `PauseTooLongError`
at once, so the caller can serve stale data or report the source as rate limited.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from datetime import datetime
from typing import Protocol

from gateway.upstream.deadline import time_left

REMAINING = "X-RateLimit-Remaining"
RESET = "X-RateLimit-Reset"
REMAINING_RE = re.compile(r"-?[0-9]{1,12}")
EPOCH_THRESHOLD = (
    1e9  # a Reset value above this is an epoch timestamp, below it a delta
)
DEFAULT_MAX_PAUSE_S = 300.0
BACKGROUND: ContextVar[bool] = ContextVar("background_calls", default=False)
LIVE_SHARE = 0.5  # share of the burst that background calls leave to live traffic


class PauseTooLongError(Exception):
    """The next call may only go out after the request's deadline."""

    def __init__(self, wait_s: float) -> None:
        """Remember how long the pause still lasts."""
        self.wait_s = wait_s
        super().__init__(f"paused for another {wait_s:.0f}s")


def check_wait(wait_s: float) -> None:
    """Raise `PauseTooLongError` when waiting `wait_s` would pass the deadline."""
    left = time_left()
    if left is not None and wait_s >= left:
        raise PauseTooLongError(wait_s)


def capped_until(reset: float | None, now: float, max_pause_s: float) -> float:
    """When an announced reset ends the hold: at most `max_pause_s` away, 1 s if unknown."""
    if reset is None:
        return now + 1.0
    return min(max(reset, now), now + max_pause_s)


def background_reserve(capacity: float) -> float:
    """Tokens the current caller must leave in the bucket (0 for live traffic)."""
    return capacity * LIVE_SHARE if BACKGROUND.get() else 0.0


class RateLimiter(Protocol):
    """Paces the calls of one connection."""

    async def acquire(self) -> None:
        """Wait until one more call may go out."""
        ...

    def observe(self, headers: Mapping[str, str]) -> None:
        """Learn from a response's rate-limit headers."""
        ...

    def pause(self, seconds: float) -> None:
        """Send nothing for `seconds` (after a 429)."""
        ...


def parse_remaining(raw: str | None) -> int | None:
    """`X-RateLimit-Remaining` as an int, when it is (signed) ASCII digits; else None.

    `str.isdigit()` accepts `²`, which `int()` then refuses: upstream headers are input too.
    """
    text = None if raw is None else raw.strip(" \t")
    if text is None or not REMAINING_RE.fullmatch(text):
        return None
    return int(text)


def parse_reset(raw: str | None, now: float) -> float | None:
    """`X-RateLimit-Reset` as an epoch instant: ISO timestamp, epoch seconds or a delta."""
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            return datetime.fromisoformat(raw).timestamp()
        except (ValueError, OverflowError, OSError):  # year 1 has no local epoch time
            return None
    if not math.isfinite(value):
        return None
    return value if value > EPOCH_THRESHOLD else now + value


class LocalRateLimiter:
    """In-process pacing for one connection."""

    def __init__(
        self,
        requests: int | None = None,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        max_pause_s: float = DEFAULT_MAX_PAUSE_S,
    ) -> None:
        """`requests` per `window_s` is the upstream's limit (None: headers only)."""
        self._clock = clock
        self.max_pause_s = max_pause_s
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self.rate = self.capacity = 0.0
        if requests and window_s > 0:
            # capacity + rate * window <= requests: no upstream window can overflow.
            self.capacity = max(1.0, requests * 0.2)
            self.rate = (requests - self.capacity) / window_s or requests / window_s
        self._tokens = self.capacity
        self._stamp = clock()

    async def acquire(self) -> None:
        """Wait for a token (and any pause), in arrival order; never past the deadline."""
        if BACKGROUND.get():
            reserve = background_reserve(self.capacity)
            while True:  # until a token is taken; each wait is bounded
                wait = self._take_above(reserve)
                if wait <= 0:
                    return
                check_wait(wait)
                await asyncio.sleep(min(wait, self.max_pause_s))
        async with self._lock:
            while True:
                now = self._clock()
                wait = self._blocked_until - now
                if wait <= 0 and self.rate:
                    self._tokens = min(
                        self.capacity, self._tokens + (now - self._stamp) * self.rate
                    )
                    self._stamp = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    wait = (1 - self._tokens) / self.rate
                elif wait <= 0:
                    return
                check_wait(wait)
                await asyncio.sleep(min(wait, self.max_pause_s))

    def _take_above(self, reserve: float) -> float:
        """Take a token only if `reserve` remain after it; else the wait, in seconds."""
        now = self._clock()
        if self._blocked_until > now:
            return self._blocked_until - now
        if not self.rate:
            return 0.0
        self._tokens = min(
            self.capacity, self._tokens + (now - self._stamp) * self.rate
        )
        self._stamp = now
        if self._tokens >= 1 + reserve:
            self._tokens -= 1
            return 0.0
        return (1 + reserve - self._tokens) / self.rate

    def observe(self, headers: Mapping[str, str]) -> None:
        """At zero remaining, hold every call until the announced reset."""
        remaining = parse_remaining(headers.get(REMAINING))
        if remaining is None:
            return
        if remaining <= 0:
            now = self._clock()
            reset = parse_reset(headers.get(RESET), now)
            self._blocked_until = max(
                self._blocked_until, capped_until(reset, now, self.max_pause_s)
            )

    def hold_s(self) -> float:
        """Seconds until calls may go out again (0 when they may now)."""
        return max(0.0, self._blocked_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every call for `seconds` (at most `max_pause_s`)."""
        wait = min(seconds, self.max_pause_s)
        self._blocked_until = max(self._blocked_until, self._clock() + wait)

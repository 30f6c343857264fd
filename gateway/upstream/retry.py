"""Retries of idempotent upstream reads: the per-call policy, the shared budget, `Retry-After`.

`RetryPolicy` says how many tries one call gets and how long to back off between them.
`RetryBudget` bounds retries across all calls of a connection, like Envoy's and gRPC's
retry budgets: over a sliding window, retries may be at most `ratio` of the calls
started (plus a small floor so a quiet connection can still retry). A half-failing
upstream gets its retries; a dead one is not stampeded with them.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

BUDGET_WINDOW_S = 10.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for idempotent calls: jittered exponential backoff."""

    attempts: int = 2
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before attempt `attempt + 1` (0-based attempt just failed)."""
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return random.uniform(0, backoff)  # noqa: S311 - jitter, not cryptography


NO_RETRY = RetryPolicy(attempts=1)


class RetryBudget:
    """Retries allowed as a share of the calls started over the last few seconds."""

    def __init__(
        self,
        ratio: float = 0.6,
        floor: int = 10,
        window_s: float = BUDGET_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """At most `floor + ratio * calls` retries in any `window_s`."""
        self.ratio = ratio
        self.floor = floor
        self._window = window_s
        self._clock = clock
        self._calls: deque[float] = deque()
        self._retries: deque[float] = deque()

    def started(self) -> None:
        """A logical call begins (its first attempt)."""
        self._calls.append(self._clock())

    def try_spend(self) -> bool:
        """Take one retry from the budget if there is one left."""
        now = self._clock()
        for stamps in (self._calls, self._retries):
            while stamps and stamps[0] <= now - self._window:
                stamps.popleft()
        if len(self._retries) >= self.floor + self.ratio * len(self._calls):
            return False
        self._retries.append(now)
        return True


def parse_retry_after(raw: str | None) -> float | None:
    """`Retry-After` as seconds, from either delta-seconds or an HTTP date."""
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None

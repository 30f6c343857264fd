"""Retry policy for idempotent upstream reads, and reading `Retry-After`."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime


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


def parse_retry_after(raw: str | None) -> float | None:
    """`Retry-After` as seconds, from either delta-seconds or an HTTP date."""
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None

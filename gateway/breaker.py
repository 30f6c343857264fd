"""Circuit breaker per connection: stop calling a dead upstream, probe it again later.

Closed: calls flow; `failures` consecutive failures open it. Open: calls fail at once
(`CircuitOpenError`, never retried) until `cooldown_s` has passed. Half-open: one probe
goes through; success closes the circuit, failure opens it again. A probe that never
reports (cancelled by a deadline) frees the slot after another cool-down. Each change of
state is logged once, not each rejected call.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

import structlog

from gateway.errors import UpstreamUnavailableError

log = structlog.get_logger("breaker")
State = Literal["closed", "open", "half_open"]
EVENTS = {
    "closed": "circuit_closed",
    "open": "circuit_opened",
    "half_open": "circuit_half_open",
}


class CircuitOpenError(UpstreamUnavailableError):
    """The connection's circuit is open: no call was made."""

    retriable = False


class CircuitBreaker:
    """Consecutive-failure breaker for one connection."""

    def __init__(
        self,
        connection: str,
        failures: int = 5,
        cooldown_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Open after `failures` in a row; probe after `cooldown_s`."""
        self.connection = connection
        self.threshold = failures
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.state: State = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self._probe_at: float | None = None

    def before_call(self, method: str, path: str) -> None:
        """Let the call through, or raise `CircuitOpenError` without calling."""
        now = self._clock()
        if self.state == "closed":
            return
        waited = now - self.opened_at
        probe_stuck = (
            self._probe_at is not None and now - self._probe_at >= self.cooldown_s
        )
        if self.state == "open" and waited >= self.cooldown_s:
            self._change("half_open")
        if self.state == "half_open" and (self._probe_at is None or probe_stuck):
            self._probe_at = now
            return
        left = max(0.0, self.cooldown_s - waited)
        raise CircuitOpenError(
            self.connection,
            method,
            path,
            f"circuit open after {self.failures} failures; next probe in {left:.0f}s",
        )

    def record_success(self) -> None:
        """A call worked: close (or stay closed)."""
        self.failures = 0
        self._probe_at = None
        if self.state != "closed":
            self._change("closed")

    def record_failure(self) -> None:
        """A call failed: count it, open when the threshold is reached or a probe failed."""
        self.failures += 1
        if self.state == "half_open" or (
            self.state == "closed" and self.failures >= self.threshold
        ):
            self.opened_at = self._clock()
            self._probe_at = None
            self._change("open")

    def as_dict(self) -> dict[str, Any]:
        """Public state for `/v1/connections`."""
        out: dict[str, Any] = {
            "state": self.state,
            "consecutive_failures": self.failures,
        }
        if self.state != "closed":
            out["probe_in_s"] = round(
                max(0.0, self.cooldown_s - (self._clock() - self.opened_at)), 1
            )
        return out

    def _change(self, state: State) -> None:
        log.warning(EVENTS[state], connection=self.connection, failures=self.failures)
        self.state = state

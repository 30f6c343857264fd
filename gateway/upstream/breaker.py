"""Circuit breaker per connection: stop calling a dead upstream, probe it again later.

It judges logical calls, not attempts: a read that failed once and worked on its retry
is one success. Closed: calls flow; the circuit opens when the last `window` calls hold
at least `min_calls` and a `failure_ratio` share of them failed (the resilience4j /
Envoy outlier model), or when `consecutive` calls in a row failed (a dead upstream is
cut off quickly). Open: calls fail at once (`CircuitOpenError`, never retried) until
`cooldown_s` has passed. Half-open: `probes` calls go through; when they have all
reported, the circuit closes unless their failure share reaches the ratio, in which case
it opens again. A call that ends without a verdict (cancelled by a deadline, refused
before sending) frees its probe slot. Outcomes of calls admitted under an earlier state
are ignored. Each change of state is logged once, not each rejected call.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import structlog

from gateway.errors import CircuitOpenError

log = structlog.get_logger("breaker")
State = Literal["closed", "open", "half_open"]
EVENTS = {
    "closed": "circuit_closed",
    "open": "circuit_opened",
    "half_open": "circuit_half_open",
}


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a connection's circuit opens and how it recovers.

    The defaults leave a connection failing half its calls closed (a ratio of 0.8 over 20+
    calls is ~4 standard deviations away), while a dead one opens after 10 calls.
    """

    consecutive: int = 10
    window: int = 50
    min_calls: int = 20
    failure_ratio: float = 0.8
    cooldown_s: float = 30.0
    probes: int = 3


@dataclass(frozen=True, slots=True)
class Ticket:
    """What `admit` hands a call, to be given back to `settle`."""

    generation: int
    probe: bool


class CircuitBreaker:
    """Failure-ratio plus consecutive-failure breaker for one connection."""

    def __init__(
        self,
        connection: str,
        policy: BreakerPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """A closed circuit judged by `policy`."""
        self.connection = connection
        self.policy = policy or BreakerPolicy()
        self._clock = clock
        self.state: State = "closed"
        self.consecutive = 0
        self.opened_at = 0.0
        self._recent: deque[bool] = deque(maxlen=self.policy.window)
        self._generation = 0
        self._probes_out = 0
        self._probe_results: list[bool] = []

    def admit(self, method: str, path: str) -> Ticket:
        """Let the call through (a ticket to settle), or raise `CircuitOpenError`."""
        if self.state == "open" and self._clock() - self.opened_at >= (
            self.policy.cooldown_s
        ):
            self._change("half_open")
        if self.state == "closed":
            return Ticket(self._generation, probe=False)
        if self.state == "half_open" and (
            self._probes_out + len(self._probe_results) < self.policy.probes
        ):
            self._probes_out += 1
            return Ticket(self._generation, probe=True)
        left = max(0.0, self.policy.cooldown_s - (self._clock() - self.opened_at))
        raise CircuitOpenError(
            self.connection,
            method,
            path,
            f"circuit open after repeated failures; next probe in {left:.0f}s",
        )

    def settle(self, ticket: Ticket, ok: bool | None) -> None:
        """The call's verdict: True worked, False failed, None no verdict (not judged)."""
        if ticket.generation != self._generation:
            return  # admitted under an earlier state: its outcome no longer matters
        if ticket.probe:
            self._probes_out -= 1
            if ok is not None:
                self._probe_results.append(ok)
                self._judge_probes()
            return
        if ok is None:
            return
        self._recent.append(ok)
        self.consecutive = 0 if ok else self.consecutive + 1
        if not ok and self._tripped():
            self._open()

    def _tripped(self) -> bool:
        policy = self.policy
        if self.consecutive >= policy.consecutive:
            return True
        calls = len(self._recent)
        failures = calls - sum(self._recent)
        return calls >= policy.min_calls and failures >= policy.failure_ratio * calls

    def _judge_probes(self) -> None:
        results = self._probe_results
        if len(results) < self.policy.probes:
            return
        failures = len(results) - sum(results)
        if failures >= self.policy.failure_ratio * len(results):
            self._open()
        else:
            self._recent.clear()
            self.consecutive = 0
            self._change("closed")

    def _open(self) -> None:
        self.opened_at = self._clock()
        self._change("open")

    def as_dict(self) -> dict[str, Any]:
        """Public state for `/v1/connections`."""
        calls = len(self._recent)
        out: dict[str, Any] = {
            "state": self.state,
            "consecutive_failures": self.consecutive,
            "recent_calls": calls,
            "recent_failures": calls - sum(self._recent),
        }
        if self.state != "closed":
            out["probe_in_s"] = round(
                max(0.0, self.policy.cooldown_s - (self._clock() - self.opened_at)), 1
            )
        return out

    def _change(self, state: State) -> None:
        log.warning(
            EVENTS[state],
            connection=self.connection,
            consecutive_failures=self.consecutive,
        )
        self.state = state
        self._generation += 1
        self._probes_out = 0
        self._probe_results = []

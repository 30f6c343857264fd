"""What the gateway last observed about each connection, known without calling it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class UpstreamHealth:
    """The last thing observed about a connection (no upstream call to learn it)."""

    last_ok_at: float | None = None
    last_error_at: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    calls: int = 0

    def as_status(self) -> str:
        """`unknown` before any call, then `up` or `down` by the last outcome."""
        if self.calls == 0:
            return "unknown"
        return "down" if self.consecutive_failures else "up"

"""Limits on the clients' side of the socket, so slow or many clients cannot starve the rest.

- A connection limit per process: past it, a new connection is answered a short 503
  problem (`Connection: close`) as soon as it speaks, and closed; it never reaches aiohttp.
- A header timeout: a connection must deliver a complete request head within
  `header_timeout_s` of connecting; later heads on a kept-alive connection are bounded
  by aiohttp's keep-alive timeout, set to the same value.
- A body timeout (`read_body_in_time`, in the request pipeline): a request body must
  arrive whole within `body_timeout_s`, else 408 and the connection is closed.
- The soft open-files limit is raised to the hard one at start-up, and the connection
  limit sits below it with room for upstream and Redis sockets.
"""

from __future__ import annotations

import asyncio
import resource
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from gateway import jsoncodec
from gateway.api import problems

RESERVED_FDS = 256  # upstream, Redis, files: kept free under the open-files limit
REJECT_WAIT_S = 1.0  # a refused connection that says nothing is closed after this


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """What one serving process allows its clients."""

    max_connections: int = 4096
    header_timeout_s: float = 10.0
    body_timeout_s: float = 10.0


def raise_open_files_limit() -> int:
    """Lift the soft RLIMIT_NOFILE to the hard limit; the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft
        return target
    return soft


def connection_cap(wanted: int, open_files: int) -> int:
    """The connection limit: what was asked, never more than the descriptors allow."""
    return max(1, min(wanted, open_files - RESERVED_FDS))


def _overloaded_response() -> bytes:
    body = jsoncodec.dumps(
        {
            "type": problems.TYPE_BASE + "overloaded",
            "title": "Service Unavailable",
            "status": 503,
            "detail": "too many open connections to this gateway process; retry shortly",
        }
    )
    head = (
        "HTTP/1.1 503 Service Unavailable\r\n"
        f"Content-Type: {problems.PROBLEM_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Retry-After: 1\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


OVERLOADED = _overloaded_response()


class ConnectionGuard:
    """Protocol factory in front of aiohttp's: counts connections, times the first head."""

    def __init__(
        self, inner: Callable[[], asyncio.Protocol], limits: ClientLimits
    ) -> None:
        """`inner` builds aiohttp's protocol (the runner's `server`)."""
        self.inner = inner
        self.limits = limits
        self.open = 0
        self.refused = 0
        self.timed_out = 0

    def __call__(self) -> asyncio.Protocol:
        """A protocol for one new connection."""
        if self.open >= self.limits.max_connections:
            self.refused += 1
            return _Refused()
        return _Guarded(self)


class _Refused(asyncio.Protocol):
    """Answers 503 to the first bytes (so the client reads it), then closes."""

    def __init__(self) -> None:
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # noqa: S101 - TCP only
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(REJECT_WAIT_S, self._answer)

    def data_received(self, data: bytes) -> None:  # noqa: ARG002 - discarded
        self._answer()

    def _answer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(OVERLOADED)
            self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:  # noqa: ARG002
        if self._timer is not None:
            self._timer.cancel()


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol, plus a deadline for the first complete request head."""

    def __init__(self, guard: ConnectionGuard) -> None:
        self._guard = guard
        self._inner = guard.inner()
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._transport: asyncio.BaseTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._guard.open += 1
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._guard.limits.header_timeout_s, self._expire)
        self._inner.connection_made(transport)

    def _expire(self) -> None:
        self._timer = None
        self._guard.timed_out += 1
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._timer.cancel()
                self._timer = None
            self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard.open -= 1
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._inner.connection_lost(exc)


async def read_body_in_time(
    request: web.Request, seconds: float
) -> web.StreamResponse | None:
    """Read any request body within `seconds` (kept for the handler's `read()`).

    None when it arrived (or there is none); else the 408 problem, closing the connection.
    Called by the request pipeline before the handler runs.
    """
    try:
        async with asyncio.timeout(seconds):
            await request.read()
    except TimeoutError:
        response = problems.problem(
            408,
            "request-timeout",
            "Request Timeout",
            f"the request body did not arrive within {seconds:g}s",
            headers={"Connection": "close"},
        )
        response.force_close()
        return response
    return None

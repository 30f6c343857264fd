"""Every route has a deadline: the configured one, or the caller's tighter `X-Deadline-Ms`.

The request pipeline (`gateway.api.middleware`) puts the deadline where every upstream call
made for the request sees it (`gateway.upstream.deadline`), so retries, rate-limit pauses
and each attempt's timeout are cut to it, and the routes' own code answers in time (stale
data, a source `timeout`, a 504 problem). A backstop a little later cancels the handler
and answers 504 itself if anything still runs. A streamed document disarms the backstop
once its headers are out: from then on the body may take as long as it keeps flowing (the
funnel's inactivity timeout bounds it).

The backstops of all requests in flight share one timer (`Backstops`): arming one is a
set insertion, not a timer of its own, because almost every request (a cache hit) ends
long before its backstop could fire. The price is precision: a backstop fires up to two
ticks (`BACKSTOP_TICK_S`) after its time, well inside its grace.
"""

from __future__ import annotations

import asyncio
import math

from aiohttp import web

from gateway.api import problems
from gateway.api.fields import ascii_int
from gateway.api.state import SETTINGS
from gateway.errors import FieldError, InvalidRequestError

DEADLINE_HEADER = "X-Deadline-Ms"
MIN_DEADLINE_MS = 50
MAX_DEADLINE_MS = (
    3_600_000  # longer asks are meaningless: the gateway's own deadline rules
)
BACKSTOP_GRACE_S = 0.25
BACKSTOP_TICK_S = 0.05
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Backstop:
    """One request's backstop: cancels its task once `when` (loop time) has passed."""

    __slots__ = ("_bucket", "expired", "task", "when")

    def __init__(
        self, task: asyncio.Task[object], when: float, bucket: set[Backstop]
    ) -> None:
        """Armed in `bucket` (owned by `Backstops`)."""
        self.task = task
        self.when = when
        self.expired = False
        self._bucket: set[Backstop] | None = bucket

    def disarm(self) -> None:
        """The request is done, or its body streams: never fire."""
        if self._bucket is not None:
            self._bucket.discard(self)
            self._bucket = None

    def fire(self) -> None:
        """The request overran: cancel its handler (the pipeline answers 504)."""
        self._bucket = None
        self.expired = True
        self.task.cancel()


class Backstops:
    """The backstops of the requests in flight, swept by one timer while any is armed."""

    def __init__(self, tick_s: float = BACKSTOP_TICK_S) -> None:
        """Sweep every `tick_s` seconds."""
        self._tick_s = tick_s
        self._buckets: dict[int, set[Backstop]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def arm(self, seconds: float) -> Backstop:
        """A backstop for the current task, `seconds` from now."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None  # noqa: S101 - called from a request's handler task
        when = loop.time() + seconds
        slot = math.ceil(when / self._tick_s)
        bucket = self._buckets.get(slot)
        if bucket is None:
            bucket = self._buckets[slot] = set()
        backstop = Backstop(task, when, bucket)
        bucket.add(backstop)
        if self._timer is None or self._loop is not loop:  # (a test's new loop)
            self._loop = loop
            self._timer = loop.call_later(self._tick_s, self._sweep, loop)
        return backstop

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop:
            return  # a timer of a loop this app no longer serves on
        self._timer = None
        now = loop.time()
        due = [slot for slot in self._buckets if slot * self._tick_s <= now]
        for slot in due:
            bucket = self._buckets.pop(slot)
            for backstop in list(bucket):
                backstop.fire()
        for slot in [slot for slot, bucket in self._buckets.items() if not bucket]:
            del self._buckets[slot]
        if self._buckets:
            self._timer = loop.call_later(self._tick_s, self._sweep, loop)

    def __len__(self) -> int:
        """Backstops armed."""
        return sum(len(bucket) for bucket in self._buckets.values())


BACKSTOPS = web.AppKey("backstops", Backstops)
DEADLINE = web.RequestKey("deadline_backstop", Backstop)


def caller_deadline(request: web.Request) -> float | None:
    """An internal caller's tighter deadline (`X-Deadline-Ms`), in seconds, or None."""
    raw = request.headers.get(DEADLINE_HEADER)
    if raw is None:
        return None
    value = ascii_int(raw.strip(), low=MIN_DEADLINE_MS, high=MAX_DEADLINE_MS)
    if value is None:
        raise InvalidRequestError(
            [
                FieldError(
                    DEADLINE_HEADER,
                    f"must be whole milliseconds from {MIN_DEADLINE_MS} "
                    f"to {MAX_DEADLINE_MS}",
                )
            ]
        )
    return value / 1000


def request_deadline(request: web.Request) -> float:
    """Seconds this request may take: the configured deadline or the caller's tighter one."""
    configured = request.app[SETTINGS].request_timeout_s
    asked = caller_deadline(request)
    return configured if asked is None else min(configured, asked)


def disarm(request: web.Request) -> None:
    """A streamed body has started: the backstop no longer applies."""
    backstop = request.get(DEADLINE)
    if backstop is not None:
        backstop.disarm()


def overran(request: web.Request, seconds: float) -> web.Response:
    """The 504 problem for a request its backstop cut."""
    detail = f"no answer within the request's {seconds:g}s deadline"
    if request.method not in SAFE_METHODS:
        # The write may have reached the upstream: never let it read as "not done".
        detail += (
            "; the write's outcome is uncertain: retry with the same Idempotency-Key"
            " (it will not be done twice) or read the resource"
        )
    return problems.problem(504, "deadline", "Gateway Timeout", detail)

"""One upstream effect per Idempotency-Key: claim the key, beat it, record the outcome.

`KeyedWrites.run` owns a key for one write attempt. A new key is reserved; the same key
and body replay the recorded answer; another body is a 422; a key another request works
on is waited for (409 when it takes too long). The owner beats the key while it works: a
contender that sees the beat stand still for `LEASE_S` takes the key over (the owner
died) and the attempt is told when the earlier one started, so it looks for the effect
before writing again. An upstream that refused the write releases the key; one that gave
no usable answer leaves it `uncertain` (504, retry with the same key).

Once the upstream accepted, the client is never told the write was not attempted: the
outcome is recorded, retried for `RECORD_WAIT_S` while Redis is away (201 once recorded),
else answered 504 "outcome uncertain, retry with the same Idempotency-Key" and kept in a
backlog that records it as soon as the store takes it, so the retry replays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from gateway.errors import (
    IdempotencyError,
    IdempotencyUnavailableError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    WriteUncertainError,
)
from gateway.state.idempotency import IdempotencyStore
from gateway.upstream.deadline import time_left

log = structlog.get_logger("writes")
WAIT_STEP_S = 0.05
LEASE_S = 3.0  # an owner whose beat stood still this long died mid-write
BEAT_S = 0.5
RECORD_WAIT_S = 5.0  # a request keeps trying to record an accepted write this long
RECORD_MARGIN_S = 0.5  # ...but stops this long before its deadline, to answer in time
BACKLOG_STEP_S = 0.25
BACKLOG_KEEP_S = 3600.0  # then the backlog keeps trying in the background this long
UNCERTAIN = (
    "outcome uncertain: the account may or may not exist; retry with the same "
    "Idempotency-Key (it will not be created twice)"
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """An HTTP-shaped outcome of a create, replayable byte for byte."""

    status: int
    body: bytes
    replayed: bool = False


Attempt = Callable[[float | None], Awaitable[WriteResult]]
"""One write; given the start instant of an earlier attempt whose outcome is unknown."""


class KeyedWrites:
    """Idempotent writes over an `IdempotencyStore`; see the module docstring."""

    def __init__(self, store: IdempotencyStore, *, wait_s: float) -> None:
        """`wait_s` bounds how long a duplicate waits for the first request."""
        self._store = store
        self._wait_s = wait_s
        self._unrecorded: dict[str, tuple[str, WriteResult, float]] = {}
        self._flusher: asyncio.Task[None] | None = None

    async def run(
        self, key: str, fingerprint: str, connection: str, attempt: Attempt
    ) -> WriteResult:
        """Run `attempt` once for the key, or replay what the key already holds."""
        owner = uuid.uuid4().hex
        claimed = await self._claim(key, fingerprint, owner)
        if isinstance(claimed, WriteResult):
            return claimed
        beating = asyncio.create_task(self._beat(key, fingerprint, owner))
        try:
            try:
                result = await attempt(claimed)
            except (UpstreamRejectedError, UpstreamAuthError, UpstreamRateLimitedError):
                # Refused, throttled or held back by a rate pause: nothing happened, a
                # retry may go ahead.
                with contextlib.suppress(IdempotencyUnavailableError):
                    await self._store.release(key, owner)
                raise
            except UpstreamError as err:
                # Sent, and no usable answer: it may have happened. Never guess.
                with contextlib.suppress(IdempotencyUnavailableError):
                    await self._store.mark_uncertain(key, fingerprint)
                raise WriteUncertainError(
                    err.connection, err.method, err.path, UNCERTAIN
                ) from err
            return await self._record(connection, key, fingerprint, result)
        finally:
            beating.cancel()

    async def _claim(
        self, key: str, fingerprint: str, owner: str
    ) -> WriteResult | float | None:
        """Own the key: None (new), a start instant (uncertain, taken over) or a replay."""
        deadline = time.monotonic() + self._wait_s
        watched: tuple[tuple[str, int], float] | None = None  # (owner, beat), since
        while True:
            existing = await self._store.reserve(key, fingerprint, owner)
            if existing is None:
                return None
            if existing.fingerprint != fingerprint:
                raise IdempotencyError(
                    "this Idempotency-Key was used with a different request body",
                    status=422,
                )
            if existing.state == "done":
                return WriteResult(existing.status, existing.body, replayed=True)
            seen, now = (existing.owner, existing.beat), time.monotonic()
            if watched is None or watched[0] != seen:
                watched = (seen, now)
            silent = now - watched[1] >= LEASE_S
            if (
                existing.state == "uncertain" or silent
            ) and await self._store.take_over(key, owner, seen):
                # The record's start instant bounds where the earlier effect can be found.
                return existing.started_at
            if now >= deadline:
                raise IdempotencyError(
                    "a request with this Idempotency-Key is still in progress; retry later",
                    status=409,
                )
            await asyncio.sleep(WAIT_STEP_S)

    async def _record(
        self, connection: str, key: str, fingerprint: str, result: WriteResult
    ) -> WriteResult:
        """Record an accepted create's answer; 504 (and the backlog) if Redis refuses."""
        wait = min(RECORD_WAIT_S, self._wait_s)
        left = time_left()
        if (
            left is not None
        ):  # answer 504 "uncertain" before the request's deadline does
            wait = min(wait, max(0.0, left - RECORD_MARGIN_S))
        give_up = time.monotonic() + wait
        while True:
            try:
                recorded = await self._store.complete(
                    key, fingerprint, result.status, result.body
                )
            except IdempotencyUnavailableError:
                if time.monotonic() >= give_up:
                    break
                await asyncio.sleep(BACKLOG_STEP_S)
                continue
            if not recorded:
                log.error("idempotency_record_refused", connection=connection)
            return result
        log.warning("idempotency_record_deferred", connection=connection)
        self._unrecorded[key] = (fingerprint, result, time.monotonic())
        if self._flusher is None or self._flusher.done():
            # Its own context: the request's deadline must not bound the journal.
            self._flusher = asyncio.create_task(
                self._flush(), context=contextvars.Context()
            )
        raise WriteUncertainError(connection, "POST", "(idempotency record)", UNCERTAIN)

    async def _flush(self) -> None:
        """Record backlogged outcomes as soon as the store takes them."""
        while self._unrecorded:
            await asyncio.sleep(BACKLOG_STEP_S)
            for key, (fingerprint, result, since) in list(self._unrecorded.items()):
                try:
                    await self._store.complete(
                        key, fingerprint, result.status, result.body
                    )
                except IdempotencyUnavailableError:
                    if time.monotonic() - since >= BACKLOG_KEEP_S:
                        del self._unrecorded[key]
                        log.warning("idempotency_record_lost", key_hash=_short(key))
                    continue
                del self._unrecorded[key]
                log.info("idempotency_record_written", key_hash=_short(key))

    async def _beat(self, key: str, fingerprint: str, owner: str) -> None:
        """Show contenders the owner is alive (and put back a record Redis lost)."""
        while True:
            await asyncio.sleep(BEAT_S)
            with contextlib.suppress(IdempotencyUnavailableError):
                await self._store.beat(key, fingerprint, owner)

    async def close(self) -> None:
        """Stop the backlog (at shutdown; what it still holds is logged as lost)."""
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
        for key in self._unrecorded:
            log.warning("idempotency_record_lost", key_hash=_short(key))


def _short(key: str) -> str:
    """A log-safe handle on an idempotency key (the key itself may carry meaning)."""
    return hashlib.sha256(key.encode()).hexdigest()[:12]

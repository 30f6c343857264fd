"""Webhook delivery: Standard Webhooks signatures, retries with backoff, dead letters.

Each replica runs one worker per webhook over that webhook's outbox. A delivery is a
POST of the event's JSON with `webhook-id` (the event id, the same on every retry, so
receivers can drop duplicates), `webhook-timestamp` and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the decoded `whsec_` secret).
A 2xx is success; anything else (or no answer within the timeout) is retried after an
exponentially growing, jittered delay, until the delivery is older than its age limit:
then it becomes a dead letter. Redirects are not followed, and only the configured
host is ever contacted.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
import structlog

from gateway import jsoncodec
from gateway.config.settings import EventSettings, WebhookSettings
from gateway.events.config import SECRET_PREFIX, host_of
from gateway.events.outbox import Delivery, Outbox, with_failure
from gateway.state.redis_client import REDIS_FAILURES

log = structlog.get_logger("webhooks")
MAX_PARALLEL = 8
MAX_ANSWER_BYTES = 4096
MAX_DOUBLINGS = 60  # far past any cap; keeps the power finite


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value for one message (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def backoff_s(attempts: int, settings: EventSettings, rng: random.Random) -> float:
    """Delay before the next try: doubling from the base, capped, then jittered.

    The jitter draws between half and all of it, so receivers coming back after an
    outage are not hit by every replica's retries at the same instant.
    """
    doublings = min(attempts - 1, MAX_DOUBLINGS)
    ceiling: float = min(settings.retry_max_s, settings.retry_base_s * 2.0**doublings)
    return ceiling * (0.5 + rng.random() / 2)


class WebhookWorker:
    """Delivers one webhook's due deliveries, pass after pass."""

    def __init__(
        self,
        hook: WebhookSettings,
        outbox: Outbox,
        session: aiohttp.ClientSession,
        settings: EventSettings,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        """Wire the subscription, its outbox and the shared HTTP session."""
        self._hook = hook
        self._outbox = outbox
        self._session = session
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.SystemRandom()
        self._allowed = host_of(hook.url) in settings.allowed_hosts
        self.outcomes: Counter[str] = Counter()  # delivered | failed | dead (metrics)

    async def run(self) -> None:
        """Deliver forever; an unreachable Redis is waited out, never fatal."""
        while True:
            try:
                await self.pass_once()
            except REDIS_FAILURES as err:
                log.warning(
                    "webhook_pass_failed", webhook=self._hook.name, reason=str(err)
                )
            await asyncio.sleep(self._settings.delivery_poll_s)

    async def pass_once(self) -> int:
        """Attempt every due delivery once (in parallel across invoices)."""
        due = await self._outbox.due(self._clock())
        limit = asyncio.Semaphore(MAX_PARALLEL)

        async def one(delivery: Delivery) -> None:
            async with limit:
                await self._attempt(delivery)

        heartbeat = asyncio.create_task(self._keep_claims())
        try:
            await asyncio.gather(*(one(d) for d in due))
        finally:
            heartbeat.cancel()
        return len(due)

    async def _keep_claims(self) -> None:
        """While a long pass runs, keep what it holds from being taken over as abandoned."""
        while True:
            await asyncio.sleep(self._settings.claim_idle_s / 3)
            try:
                await self._outbox.touch()
            except REDIS_FAILURES as err:
                log.warning(
                    "webhook_touch_failed", webhook=self._hook.name, reason=str(err)
                )

    async def _attempt(self, delivery: Delivery) -> None:
        error = await self._post(delivery)
        now = self._clock()
        if error is None:
            await self._outbox.succeeded(delivery)
            await self._outbox.log_attempt(delivery, "delivered", now)
            self.outcomes["delivered"] += 1
            log.info(
                "webhook_delivered",
                webhook=self._hook.name,
                event_id=delivery.event.id,
                attempt=delivery.attempts + 1,
            )
            return
        retry_at = now + backoff_s(delivery.attempts + 1, self._settings, self._rng)
        failed = with_failure(delivery, error, now, retry_at)
        log.warning(
            "webhook_failed",
            webhook=self._hook.name,
            event_id=delivery.event.id,
            attempt=failed.attempts,
            reason=error,
        )
        if retry_at - (failed.first_at or now) > self._settings.max_delivery_age_s:
            await self._outbox.dead(failed, now)
            outcome = "dead"
        else:
            await self._outbox.retry_later(failed)
            outcome = "failed"
        await self._outbox.log_attempt(failed, outcome, now)
        self.outcomes[outcome] += 1

    async def _post(self, delivery: Delivery) -> str | None:
        """None on success, else a short reason (never the secret or the body)."""
        if not self._allowed:
            return "destination host is not allowed"
        body = jsoncodec.dumps(delivery.event.to_dict())
        stamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            "webhook-id": delivery.event.id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": sign(
                self._hook.secret.reveal(), delivery.event.id, stamp, body
            ),
        }
        timeout = aiohttp.ClientTimeout(total=self._settings.delivery_timeout_s)
        try:
            async with self._session.post(
                self._hook.url,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=timeout,
            ) as resp:
                await resp.content.read(MAX_ANSWER_BYTES)  # the answer is not used
                if 200 <= resp.status < 300:  # noqa: PLR2004 - the 2xx family
                    return None
                return f"HTTP {resp.status}"
        except TimeoutError:
            return f"no answer within {self._settings.delivery_timeout_s:g}s"
        except aiohttp.ClientError as err:
            return f"connection failed: {type(err).__name__}"

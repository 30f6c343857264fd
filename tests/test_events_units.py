"""The detector's naming of changes, per-invoice order in the Redis outbox, Redis outages."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from datetime import date
from decimal import Decimal

import pytest
from redis.asyncio import Redis

from gateway.config.settings import EventSettings, Secret
from gateway.events.model import StoredEvent, classify, mark
from gateway.events.outbox import with_failure
from gateway.events.redis_outbox import RedisOutbox
from gateway.events.redis_store import outbox_key
from gateway.events.webhooks import backoff_s
from gateway.invoices.models import Customer, Invoice, InvoiceStatus
from tests.support import API_KEY, hubsoft_connection, make_settings

OPEN = Invoice(
    provider="hubsoft",
    connection="acme-isp",
    remote_id="1099-1",
    status=InvoiceStatus.OPEN,
    customer=Customer("1099", "12345678909", "Maria Silva"),
    currency="BRL",
    amount=Decimal("10.00"),
    amount_due=Decimal("10.00"),
    due_date=date(2026, 11, 30),
)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (OPEN, None),
        (dataclasses.replace(OPEN, amount=Decimal("12.00")), "invoice.updated"),
        (dataclasses.replace(OPEN, status=InvoiceStatus.PAID), "invoice.paid"),
        (dataclasses.replace(OPEN, status=InvoiceStatus.OVERDUE), "invoice.overdue"),
        (
            dataclasses.replace(OPEN, status=InvoiceStatus.CANCELLED),
            "invoice.cancelled",
        ),
        (dataclasses.replace(OPEN, status=InvoiceStatus.UNKNOWN), "invoice.updated"),
    ],
)
def test_each_change_is_named_by_what_moved(now, expected):
    """Same content: nothing; a new status names the event; other changes are updates."""
    assert classify(mark(OPEN), now) == expected


def test_an_invoice_never_seen_is_created():
    """No previous mark: invoice.created."""
    assert classify(None, OPEN) == "invoice.created"


def event(n: int, invoice: str) -> dict[str, str]:
    """Outbox entry fields of event `n` about `invoice`."""
    fields = StoredEvent(f"{n}-0", "invoice.updated", "acme-isp", invoice, "t", b"{}")
    return {"event": fields.id, **fields.fields()}


async def test_redis_outbox_hands_out_an_invoice_in_order(redis_server):
    """A later event of an invoice waits until the earlier one is delivered; others don't."""
    client = Redis.from_url(redis_server.url)
    try:
        one = RedisOutbox(client, "ledger", "replica-1", claim_idle_s=60)
        two = RedisOutbox(client, "ledger", "replica-2", claim_idle_s=60)
        await one.due(time.time())  # creates the group
        for n, invoice in ((1, "a"), (2, "a"), (3, "b")):
            await client.xadd(outbox_key("ledger"), event(n, invoice))
        first = await one.due(time.time())
        assert sorted(d.event.id for d in first) == ["1-0", "3-0"]
        await client.xadd(outbox_key("ledger"), event(4, "a"))
        assert await two.due(time.time()) == []  # "a" is held by replica-1's first
        [a1] = [d for d in first if d.event.id == "1-0"]
        failed = with_failure(a1, "HTTP 500", time.time(), time.time() + 60)
        await one.retry_later(failed)
        assert [d.event.id for d in await one.due(time.time())] == ["3-0"]
        await one.succeeded(a1)
        pending = await one.due(time.time()) + await two.due(time.time())
        assert sorted(d.event.id for d in pending) == ["2-0", "3-0"]
    finally:
        await client.aclose()


async def test_feed_is_503_while_redis_is_away(
    gateway_factory, hubsoft_url, redis_server
):
    """The event log unreachable: the feed says 503 (problem+json), never 500."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
    )
    client = await gateway_factory(settings)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with client.get("/v1/events", headers=headers) as resp:
        assert resp.status == 200
    redis_server.stop()
    async with client.get("/v1/events", headers=headers) as resp:
        assert resp.status == 503
        assert resp.content_type == "application/problem+json"


async def test_a_replica_busy_delivering_keeps_its_claims(redis_server):
    """Touching its entries during a long pass keeps another replica from taking them."""
    client = Redis.from_url(redis_server.url)
    try:
        one = RedisOutbox(client, "ledger", "replica-1", claim_idle_s=4)
        two = RedisOutbox(client, "ledger", "replica-2", claim_idle_s=4)
        await one.due(time.time())  # creates the group
        await client.xadd(outbox_key("ledger"), event(1, "a"))
        [held] = await one.due(time.time())
        await asyncio.sleep(1.5)
        await one.touch()
        await asyncio.sleep(1.5)  # 3 s since taken, 1.5 s since touched: not abandoned
        assert await two.due(time.time()) == []
        pending = await client.xpending_range(
            outbox_key("ledger"), "delivery", "-", "+", 5
        )
        assert [p["consumer"] for p in pending] == [b"replica-1"]
        assert held.event.id == "1-0"
    finally:
        await client.aclose()


def test_backoff_doubles_to_its_cap_with_jitter():
    """Retry delays double from the base up to the cap, each jittered to half..all of it."""
    settings = EventSettings(retry_base_s=5, retry_max_s=3600)
    rng = random.Random(1)  # noqa: S311 - repeatable jitter, not secrecy
    for attempts, ceiling in ((1, 5), (2, 10), (4, 40), (20, 3600), (5000, 3600)):
        delay = backoff_s(attempts, settings, rng)
        assert ceiling / 2 <= delay <= ceiling

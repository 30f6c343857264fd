"""Change events across real gateway processes, one Redis, a Hubsoft simulator and a receiver."""

from __future__ import annotations

import asyncio
from datetime import datetime

import aiohttp
import orjson
import pytest
from standardwebhooks import Webhook

from tests.events_support import (
    WEBHOOK_SECRET,
    Gateways,
    Receiver,
    eventually,
    is_leader,
    unpaid_in_window,
    write_config,
)

SNAPSHOT = "ig:v1:{events}:snap:acme-isp"


@pytest.fixture
def receiver():
    """A webhook receiver that succeeds at once."""
    return Receiver()


@pytest.fixture
def events_table():
    """Overrides of the `[events]` settings for one test."""
    return {}


@pytest.fixture
async def gateways(
    tmp_path, redis_server, hubsoft_url, receiver, events_table, aiohttp_server
):
    """A launcher of gateway processes watching the simulator, delivering to `receiver`."""
    server = await aiohttp_server(receiver.app())
    conf = tmp_path / "connections.toml"
    write_config(conf, hubsoft_url, server.port, events=events_table)
    launcher = Gateways(conf, redis_server.url, tmp_path / "state")
    yield launcher
    receiver.release.set()
    await launcher.stop_all()


async def baseline_taken(redis_server) -> None:
    """Wait until the detector has recorded its first snapshot (no events yet)."""
    from redis.asyncio import Redis  # noqa: PLC0415 - only these tests need a client

    client = Redis.from_url(redis_server.url)
    try:
        await eventually(lambda: client.exists(SNAPSHOT))
    finally:
        await client.aclose()


def paid_deliveries(receiver: Receiver, invoice_id: int) -> list[dict]:
    """Successful deliveries of invoice.paid for the simulator's invoice `invoice_id`."""
    out = []
    for entry in receiver.delivered():
        event = orjson.loads(entry["body"])
        if event["type"] == "invoice.paid" and event["data"]["remote_id"].endswith(
            f"-{invoice_id}"
        ):
            out.append(entry)
    return out


async def test_paid_invoice_is_delivered_once_and_signed(
    gateways, redis_server, hubsoft_sim, receiver
):
    """A payment upstream becomes exactly one signed invoice.paid, with two replicas up."""
    await gateways.start()
    await gateways.start()  # both deliver webhooks; only one may deliver this event
    await baseline_taken(redis_server)
    invoice_id = unpaid_in_window(hubsoft_sim, datetime.now().date())  # noqa: DTZ005
    hubsoft_sim.mark_paid(invoice_id)
    await eventually(lambda: asyncio.sleep(0, paid_deliveries(receiver, invoice_id)))
    await asyncio.sleep(2.0)  # several more sync intervals: nothing new may arrive
    [delivery] = paid_deliveries(receiver, invoice_id)
    verified = Webhook(WEBHOOK_SECRET).verify(delivery["body"], delivery["headers"])
    assert verified["data"]["status"] == "paid"
    assert verified["data"]["amount_due"] == "0.00"
    assert delivery["headers"]["webhook-id"] == verified["id"]


@pytest.mark.parametrize("receiver", [Receiver(fail_first=3)])
async def test_receiver_failing_three_times_gets_the_fourth_try(
    gateways, redis_server, hubsoft_sim, receiver
):
    """Three 500s, then success: four tries of one delivery, one webhook-id throughout."""
    base = await gateways.start()
    await baseline_taken(redis_server)
    invoice_id = unpaid_in_window(hubsoft_sim, datetime.now().date())  # noqa: DTZ005
    hubsoft_sim.mark_paid(invoice_id)
    await eventually(lambda: asyncio.sleep(0, paid_deliveries(receiver, invoice_id)))
    attempts = receiver.received
    assert [a["status"] for a in attempts] == [500, 500, 500, 204]
    assert len({a["headers"]["webhook-id"] for a in attempts}) == 1
    expected = [
        f'gateway_webhook_deliveries_total{{outcome="{outcome}",webhook="ledger"}}'
        f" {count}.0"
        for outcome, count in (("delivered", 1), ("failed", 3))
    ]

    async def counted() -> bool:
        # The receiver has its 204 before the sender has read it and counted it.
        async with aiohttp.ClientSession() as http, http.get(f"{base}/metrics") as r:
            metrics = await r.text()
        return all(line in metrics for line in expected)

    await eventually(counted)


@pytest.mark.parametrize(
    ("receiver", "events_table"),
    [(Receiver(hang_first=True), {"delivery_timeout_s": 8, "claim_idle_s": 9})],
)
async def test_replica_killed_mid_delivery_is_replaced(
    gateways, redis_server, hubsoft_sim, receiver
):
    """The replica delivering dies; another claims the delivery and sends the same id."""
    first = await gateways.start()
    await baseline_taken(redis_server)
    invoice_id = unpaid_in_window(hubsoft_sim, datetime.now().date())  # noqa: DTZ005
    hubsoft_sim.mark_paid(invoice_id)
    await eventually(lambda: asyncio.sleep(0, receiver.received))  # first is hanging
    await gateways.kill(first)  # well inside its 8 s delivery timeout
    await gateways.start()
    await eventually(lambda: asyncio.sleep(0, paid_deliveries(receiver, invoice_id)))
    ids = {r["headers"]["webhook-id"] for r in receiver.received}
    assert len(ids) == 1  # the retry is the same message, never a new one
    assert receiver.received[0]["status"] == 0  # the dead replica's try never finished


async def test_two_replicas_elect_one_leader_and_fail_over(gateways):
    """Two replicas: one sync leader; when it dies the other leads within 10 s."""
    bases = [await gateways.start(), await gateways.start()]

    async def leaders() -> list[str]:
        return [b for b in bases if await is_leader(b)]

    [leader] = await eventually(leaders)
    await asyncio.sleep(2.0)  # leadership is stable, never shared
    assert await leaders() == [leader]
    await gateways.kill(leader)
    bases.remove(leader)
    loop = asyncio.get_running_loop()
    killed_at = loop.time()
    await eventually(leaders, timeout_s=10.0)
    assert loop.time() - killed_at < 10.0

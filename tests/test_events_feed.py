"""The event feed, the stream, dead letters and the detector's rules, in one process."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from datetime import timedelta

import orjson
import pytest

from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.app import create_app
from gateway.config.settings import ApiKey, EventSettings, Secret, WebhookSettings
from gateway.events.state import DETECTOR, EVENT_STORE
from tests.events_support import WEBHOOK_SECRET, Receiver, eventually
from tests.support import API_KEY, NOW, TODAY, hubsoft_connection, make_settings

ACME_KEY = "acme-only-key-0123456789"
ADMIN = "admin-key-0123456789"
HOUR = 3600.0


def keys(settings):
    """The test keys plus one limited to acme-isp and one admin key."""
    extra = (
        ApiKey(
            "acme-only",
            hashlib.sha256(ACME_KEY.encode()).hexdigest(),
            frozenset({"invoices:read"}),
            frozenset({"acme-isp"}),
        ),
        ApiKey(
            "admin",
            hashlib.sha256(ADMIN.encode()).hexdigest(),
            frozenset({"invoices:read", "admin"}),
            None,
        ),
    )
    return dataclasses.replace(settings, api_keys=settings.api_keys + extra)


def auth(key: str) -> dict[str, str]:
    """Bearer header for `key`."""
    return {"Authorization": f"Bearer {key}"}


class Clock:
    """The gateway's 'now', moved by the test (the calendar decides overdue)."""

    def __init__(self) -> None:
        """Start at the suite's fixed instant."""
        self.at = NOW

    def __call__(self):
        """The current instant."""
        return self.at


def unpaid(sim: HubsoftSimulator, count: int, *, future: bool = False) -> list[int]:
    """Unpaid invoices due in the watched window (before TODAY, or from TODAY on)."""
    found = [
        inv.id
        for inv in sim.invoices
        if inv.paid_on is None
        and (
            TODAY <= inv.due <= TODAY + timedelta(days=30)
            if future
            else TODAY - timedelta(days=60) <= inv.due < TODAY
        )
    ]
    assert len(found) >= count
    return found[:count]


@pytest.fixture
async def two_tenants(aiohttp_server):
    """Two Hubsoft tenants (different seeds) on loopback: (sim, url) pairs."""
    out = []
    for seed in (7, 8):
        sim = HubsoftSimulator(today=TODAY, seed=seed)
        server = await aiohttp_server(sim.app())
        out.append((sim, str(server.make_url("")).rstrip("/")))
    return out


@pytest.fixture
def build(aiohttp_client, two_tenants):
    """A gateway watching both tenants (acme-isp, other-isp); extra settings by keyword."""

    async def make(clock=None, **kw):
        conns = [
            hubsoft_connection(url, cid, sync_interval_s=HOUR)
            for cid, (_, url) in zip(
                ("acme-isp", "other-isp"), two_tenants, strict=True
            )
        ]
        settings = keys(make_settings(*conns, **kw))
        app = create_app(settings, now=clock or (lambda: NOW))
        client = await aiohttp_client(app)
        store = app[EVENT_STORE]
        for cid in ("acme-isp", "other-isp"):
            await eventually(lambda cid=cid: store.snapshot(cid))  # baselines taken
        return client, app

    return make


async def pages(client, key: str, limit: int, **params) -> list[dict]:
    """Every event of the feed, page by page."""
    seen, cursor = [], None
    while True:
        query = {"limit": str(limit), **params}
        if cursor:
            query["after"] = cursor
        async with client.get("/v1/events", params=query, headers=auth(key)) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
        if not body["data"]:
            return seen
        seen.extend(body["data"])
        cursor = body["next_cursor"]


@pytest.mark.parametrize("backend", ["memory", "redis", "cluster"])
async def test_feed_pages_every_event_once_and_only_what_the_caller_may_see(
    backend, build, two_tenants, request
):
    """Paging by 2 visits each event once, in order; a limited key sees its connection only."""
    kw = {}
    if backend == "redis":
        redis = request.getfixturevalue("redis_server")
        kw["redis_url"] = Secret(redis.url)
    if backend == "cluster":
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        kw |= {"redis_url": Secret(cluster.url), "redis_cluster": True}
    client, app = await build(**kw)
    (acme, _), (other, _) = two_tenants
    for inv in unpaid(acme, 5):
        acme.mark_paid(inv)
    for inv in unpaid(other, 3):
        other.mark_paid(inv)
    await app[DETECTOR].sync_now()
    everything = await app[EVENT_STORE].read("0-0", 100)
    assert len(everything) == 8
    seen = await pages(client, API_KEY, 2)
    assert [e["id"] for e in seen] == [e.id for e in everything]
    assert {e["type"] for e in seen} == {"invoice.paid"}
    limited = await pages(client, ACME_KEY, 2)
    assert len(limited) == 5
    assert {e["data"]["connection"] for e in limited} == {"acme-isp"}


async def test_only_the_calendar_moving_makes_an_invoice_overdue(build, two_tenants):
    """No upstream change, a day passes: the invoice due yesterday gets invoice.overdue."""
    clock = Clock()
    client, app = await build(clock)
    (acme, _), _ = two_tenants
    [invoice] = unpaid(acme, 1, future=True)
    due = next(inv.due for inv in acme.invoices if inv.id == invoice)
    clock.at = NOW + timedelta(days=(due - TODAY).days + 1)
    await app[DETECTOR].sync_now()
    events = await pages(client, API_KEY, 50, types="invoice.overdue")
    overdue = [e for e in events if e["data"]["remote_id"].endswith(f"-{invoice}")]
    assert [e["data"]["status"] for e in overdue] == ["overdue"]


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_long_poll_answers_when_an_event_arrives(
    backend, build, two_tenants, request
):
    """A feed request waiting (wait_s) returns the event recorded meanwhile."""
    kw = {}
    if backend == "redis":
        kw["redis_url"] = Secret(request.getfixturevalue("redis_server").url)
    client, app = await build(**kw)
    (acme, _), _ = two_tenants

    async def poll():
        params = {"after": "0-0", "wait_s": "20"}
        async with client.get("/v1/events", params=params, headers=auth(API_KEY)) as r:
            return await r.json()

    waiting = asyncio.create_task(poll())
    await asyncio.sleep(0.2)
    assert not waiting.done()
    acme.mark_paid(unpaid(acme, 1)[0])
    await app[DETECTOR].sync_now()
    body = await asyncio.wait_for(waiting, 15)
    assert [e["type"] for e in body["data"]] == ["invoice.paid"]


async def test_stream_shows_a_limited_key_only_its_connection(build, two_tenants):
    """SSE from the start: the other connection's earlier events never reach the key."""
    client, app = await build()
    (acme, _), (other, _) = two_tenants
    for inv in unpaid(other, 3):
        other.mark_paid(inv)
    await app[DETECTOR].sync_now()  # the other tenant's events come first in the log
    for inv in unpaid(acme, 2):
        acme.mark_paid(inv)
    await app[DETECTOR].sync_now()
    params = {"after": "0-0"}
    async with client.get(
        "/v1/events/stream", params=params, headers=auth(ACME_KEY)
    ) as resp:
        connections: list[str] = []
        while len(connections) < 2:
            line = (await asyncio.wait_for(resp.content.readline(), 10)).decode()
            if line.startswith("data: "):
                connections.append(orjson.loads(line[6:])["connection"])
    assert connections == ["acme-isp", "acme-isp"]


async def test_stream_resumes_after_last_event_id(build, two_tenants):
    """SSE with Last-Event-ID sends the events after it, with ids and types."""
    client, app = await build()
    (acme, _), _ = two_tenants
    for inv in unpaid(acme, 3):
        acme.mark_paid(inv)
    await app[DETECTOR].sync_now()
    ids = [e.id for e in await app[EVENT_STORE].read("0-0", 10)]
    headers = {**auth(API_KEY), "Last-Event-ID": ids[0]}
    async with client.get("/v1/events/stream", headers=headers) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        got: list[str] = []
        while len(got) < 2:
            line = (await asyncio.wait_for(resp.content.readline(), 10)).decode()
            if line.startswith("id: "):
                got.append(line[4:].strip())
            elif line.startswith("event: "):
                assert line.strip() == "event: invoice.paid"
    assert got == ids[1:]


async def test_a_cursor_older_than_the_retention_is_gone(build):
    """Events after a too old cursor may be trimmed: 410, never a silent gap."""
    client, _ = await build(events=EventSettings(retention_s=3600))
    async with client.get("/v1/events?after=1000-0", headers=auth(API_KEY)) as resp:
        assert resp.status == 410
    headers = {**auth(API_KEY), "Last-Event-ID": "1000-0"}
    async with client.get("/v1/events/stream", headers=headers) as resp:
        assert resp.status == 410
    async with client.get("/v1/events?after=0-0", headers=auth(API_KEY)) as resp:
        assert resp.status == 200  # from the start: whatever is retained


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("after=nope", "after"),
        ("types=invoice.nope", "types"),
        ("wait_s=31", "wait_s"),
        ("limit=0", "limit"),
        ("colour=red", "colour"),
    ],
)
async def test_bad_feed_parameters_are_400_naming_the_field(build, query, field):
    """Every invalid feed parameter is a 400 problem naming it."""
    client, _ = await build()
    async with client.get(f"/v1/events?{query}", headers=auth(API_KEY)) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert field in {e["field"] for e in body["errors"]}


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_dead_letters_are_listed_for_admins_and_replayed(
    backend, build, two_tenants, aiohttp_server, request
):
    """A delivery failing past its age limit is a dead letter; replay delivers it again."""
    kw = {}
    if backend == "redis":
        kw["redis_url"] = Secret(request.getfixturevalue("redis_server").url)
    receiver = Receiver(fail_first=10**6)
    server = await aiohttp_server(receiver.app())
    events = EventSettings(
        retry_base_s=0.05,
        retry_max_s=0.1,
        max_delivery_age_s=0.3,
        delivery_poll_s=0.05,
        allowed_hosts=frozenset({f"127.0.0.1:{server.port}"}),
    )
    hook = WebhookSettings(
        "ledger",
        f"http://127.0.0.1:{server.port}/hook",
        Secret(WEBHOOK_SECRET),
        frozenset({"invoice.paid"}),
        None,
    )
    client, app = await build(events=events, webhooks=(hook,), **kw)
    (acme, _), _ = two_tenants
    acme.mark_paid(unpaid(acme, 1)[0])
    await app[DETECTOR].sync_now()
    [event_id] = [e.id for e in await app[EVENT_STORE].read("0-0", 10)]
    url = "/v1/webhooks/ledger/deliveries"

    async def dead():
        async with client.get(url, headers=auth(ADMIN)) as resp:
            return (await resp.json())["dead_letters"]

    [letter] = await eventually(dead)
    assert letter["event_id"] == event_id
    assert letter["last_error"] == "HTTP 500"
    assert letter["attempts"] >= 1
    assert letter["dead_at"].endswith("+00:00")
    async with client.get(url, headers=auth(API_KEY)) as resp:
        assert resp.status == 403  # not an admin
    receiver.fail_first = 0
    async with client.post(f"{url}/{event_id}/replay", headers=auth(ADMIN)) as resp:
        assert resp.status == 202
    await eventually(lambda: asyncio.sleep(0, receiver.delivered()))
    assert receiver.delivered()[0]["headers"]["webhook-id"] == event_id
    assert orjson.loads(receiver.delivered()[0]["body"])["type"] == "invoice.paid"
    assert await dead() == []

    async def log():
        async with client.get(url, headers=auth(ADMIN)) as resp:
            return (await resp.json())["recent"]

    outcomes = [a["outcome"] for a in await eventually(log)]
    assert outcomes[0] == "delivered"  # newest first: the replay's success
    assert "dead" in outcomes
    assert outcomes[-1] == "failed"  # the very first attempt


async def test_webhook_to_a_host_not_allowed_never_leaves(build, two_tenants):
    """A destination outside allowed_hosts is refused before any byte is sent."""
    hook = WebhookSettings(
        "stray",
        "http://127.0.0.1:9/hook",
        Secret(WEBHOOK_SECRET),
        frozenset({"invoice.paid"}),
        None,
    )
    events = EventSettings(
        retry_base_s=0.05, max_delivery_age_s=0.2, delivery_poll_s=0.05
    )
    client, app = await build(events=events, webhooks=(hook,))
    (acme, _), _ = two_tenants
    acme.mark_paid(unpaid(acme, 1)[0])
    await app[DETECTOR].sync_now()

    async def dead():
        async with client.get(
            "/v1/webhooks/stray/deliveries", headers=auth(ADMIN)
        ) as r:
            return (await r.json())["dead_letters"]

    [letter] = await eventually(dead)
    assert letter["last_error"] == "destination host is not allowed"


async def test_an_unpaid_invoice_leaving_the_window_is_still_followed(
    build, two_tenants
):
    """Due before the window now, still unpaid: read on its own; its payment is reported."""
    clock = Clock()
    client, app = await build(clock, events=EventSettings(lookback_days=30))
    (acme, _), _ = two_tenants
    [invoice] = unpaid(acme, 1)
    due = next(inv.due for inv in acme.invoices if inv.id == invoice)
    # the invoice is now due a day before the window
    clock.at = NOW + timedelta(days=31 - (TODAY - due).days)
    await app[DETECTOR].sync_now()  # aged out: followed, unchanged, no event about it
    acme.mark_paid(invoice)
    await app[DETECTOR].sync_now()
    events = await pages(client, API_KEY, 50)
    about = [e for e in events if e["data"]["remote_id"].endswith(f"-{invoice}")]
    assert [e["type"] for e in about] == ["invoice.paid"]
    snapshot = await app[EVENT_STORE].snapshot("acme-isp")
    # settled: no longer read
    assert not any(i.endswith(f"-{invoice}") for i in snapshot)


async def test_an_event_names_an_invoice_the_api_serves_fresh(build, two_tenants):
    """The event's invoice id is the API's; its cached copy is dropped, so reads agree."""
    client, app = await build()
    (acme, _), _ = two_tenants
    invoice = unpaid(acme, 1)[0]
    baseline = await app[EVENT_STORE].snapshot("acme-isp")
    [invoice_id] = [i for i in baseline if i.endswith(f"-{invoice}")]
    url = f"/v1/invoices/{invoice_id}"
    async with client.get(url, headers=auth(API_KEY)) as resp:
        assert (await resp.json())["status"] == "overdue"  # now cached for a minute
    acme.mark_paid(invoice)
    await app[DETECTOR].sync_now()
    [event] = await pages(client, API_KEY, 10)
    assert event["data"]["id"] == invoice_id
    async with client.get(url, headers=auth(API_KEY)) as resp:
        assert (await resp.json())[
            "status"
        ] == "paid"  # the event dropped the stale copy

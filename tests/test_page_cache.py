"""The invoice list's page cache never serves what the full path would not.

Each test makes the page cache's one shortcut wrong if it ignored one input: the caller's
connections, an end user's customers, `Cache-Control: no-cache`, the entry's freshness
(stale-while-revalidate and stale-if-error), a newer version stored by another replica,
the clock (ages), and the ETag. Plus the cost it exists for: a Redis hit is at most one
Redis command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time

import redis.asyncio as aioredis
from redis.crc import key_slot

from gateway.api.state import SERVICE
from gateway.config.settings import ApiKey, Secret
from gateway.invoices.pages import RECHECK_S
from gateway.state.cache import KEY_PREFIX
from tests.jwt_support import JwksServer, issuer, mint, rsa_key
from tests.support import API_KEY, FakeClock, hubsoft_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}
ONE_KEY = "one-connection-key-0123"
RSA = rsa_key()


async def _list(client, query: str, headers: dict) -> tuple[int, dict, str]:
    resp = await client.get(f"/v1/invoices?{query}", headers=headers)
    return resp.status, await resp.json(), resp.headers.get("ETag", "")


def _unpaid(sim):
    """An unpaid invoice whose customer has a document."""
    return next(
        inv for inv in sim.invoices if inv.paid_on is None and inv.customer.document
    )


async def test_a_page_is_never_served_to_a_caller_who_sees_fewer_connections(
    gateway_factory, hubsoft_url
):
    """A key limited to one connection never gets the page another key saw both in."""
    one = ApiKey(
        "one",
        hashlib.sha256(ONE_KEY.encode()).hexdigest(),
        frozenset({"invoices:read"}),
        frozenset({"acme-isp"}),
    )
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        hubsoft_connection(hubsoft_url, cid="beta-isp"),
    )
    settings = dataclasses.replace(settings, api_keys=(*settings.api_keys, one))
    client = await gateway_factory(settings)
    query = "customer_document=12345678909&limit=5"
    _, both, _ = await _list(client, query, AUTH)
    _, both_again, _ = await _list(client, query, AUTH)
    assert {s["connection"] for s in both_again["sources"]} == {"acme-isp", "beta-isp"}
    assert both_again["sources"][0]["from_cache"] is True  # the page cache was used
    _, mine, _ = await _list(client, query, {"Authorization": f"Bearer {ONE_KEY}"})
    assert [s["connection"] for s in mine["sources"]] == ["acme-isp"]
    assert all(inv["connection"] == "acme-isp" for inv in mine["data"])
    assert any(inv["connection"] == "beta-isp" for inv in both["data"])


async def test_each_end_user_gets_only_their_own_customer_page(
    gateway_factory, hubsoft_url, hubsoft_sim, aiohttp_server
):
    """Two users asking the very same URL each get their own customer's invoices."""
    jwks = JwksServer([RSA])
    served = await aiohttp_server(jwks.app())
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        jwt_issuers=(issuer(str(served.make_url("/jwks.json"))),),
    )
    client = await gateway_factory(settings)
    people = [p.document for p in hubsoft_sim.people[:2]]
    seen = {}
    for _round in range(2):  # the second round is served from the page cache
        for doc in people:
            token = mint(RSA, doc)
            status, body, _ = await _list(
                client, "limit=5", {"Authorization": f"Bearer {token}"}
            )
            assert status == 200
            assert body["data"], "every simulated person has invoices"
            assert {inv["customer"]["document"] for inv in body["data"]} == {doc}
            seen.setdefault(doc, []).append([inv["id"] for inv in body["data"]])
    assert seen[people[0]][0] == seen[people[0]][1]
    assert seen[people[0]][0] != seen[people[1]][0]


async def test_no_cache_bypasses_the_page_and_the_new_page_replaces_it(
    gateway, hubsoft_sim
):
    """`Cache-Control: no-cache` reaches the upstream; later hits show what it said."""
    unpaid = _unpaid(hubsoft_sim)
    query = f"customer_document={unpaid.customer.document}&limit=50"
    await _list(gateway, query, AUTH)
    hubsoft_sim.mark_paid(unpaid.id)
    _, cached, tag = await _list(gateway, query, AUTH)
    wanted = unpaid.id
    assert _status(cached, wanted) != "paid"  # fresh cache: the change is not seen yet
    _, forced, forced_tag = await _list(
        gateway, query, {**AUTH, "Cache-Control": "no-cache"}
    )
    assert forced["sources"][0]["from_cache"] is False
    assert _status(forced, wanted) == "paid"
    _, after, after_tag = await _list(gateway, query, AUTH)
    assert _status(after, wanted) == "paid"
    assert after["sources"][0]["from_cache"] is True
    assert forced_tag == after_tag != tag


def _status(body: dict, remote_id: int) -> str:
    """The listed status of the simulator's invoice `remote_id`."""
    return next(
        inv["status"] for inv in body["data"] if inv["id"].endswith(f"-{remote_id}")
    )


async def test_past_freshness_the_page_yields_to_revalidation_and_stale_if_error(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Once its entry is no longer fresh a page is not served: SWR and errors show."""
    clock = FakeClock(time.time())
    settings = make_settings(
        hubsoft_connection(hubsoft_url, cache_fresh_s=10.0, cache_stale_s=600.0)
    )
    client = await gateway_factory(settings, clock=clock)
    query = "customer_document=12345678909&limit=5"
    _, first, _ = await _list(client, query, AUTH)
    _, hit, _ = await _list(client, query, AUTH)
    assert hit["sources"][0]["fetched_at"] == first["sources"][0]["fetched_at"]
    calls = len(hubsoft_sim.requests)
    clock.now += 11  # past fresh_until
    hubsoft_sim.board.set("status", 503)
    _, swr, _ = await _list(client, query, AUTH)  # served at once, refreshed behind
    assert swr["sources"][0]["from_cache"] is True
    for _ in range(100):
        if len(hubsoft_sim.requests) > calls:
            break
        await asyncio.sleep(0.02)
    assert len(hubsoft_sim.requests) > calls, "no revalidation was started"
    await asyncio.sleep(0.2)  # the refresh fails and is remembered
    _, stale, _ = await _list(client, query, AUTH)
    source = stale["sources"][0]
    assert source["status"] == "stale"
    assert source["error"] is not None
    assert stale["complete"] is False


async def test_ages_move_with_the_clock_on_a_cached_page(gateway):
    """`age_s` is rendered at each hit, not frozen into the cached page."""
    query = "customer_document=12345678909&limit=5"
    await _list(gateway, query, AUTH)
    _, first, _ = await _list(gateway, query, AUTH)  # the cached page's first render
    assert first["sources"][0]["from_cache"] is True
    await asyncio.sleep(1.1)
    _, later, _ = await _list(gateway, query, AUTH)
    assert later["sources"][0]["from_cache"] is True
    assert later["sources"][0]["fetched_at"] == first["sources"][0]["fetched_at"]
    assert later["sources"][0]["age_s"] >= first["sources"][0]["age_s"] + 1


async def test_etag_is_kept_and_answers_304_on_a_hit(gateway):
    """A hit carries the miss's ETag, and If-None-Match with it is a 304."""
    query = "customer_document=12345678909&limit=5"
    _, _, tag = await _list(gateway, query, AUTH)
    _, _, again = await _list(gateway, query, AUTH)
    assert tag == again != ""
    resp = await gateway.get(
        f"/v1/invoices?{query}", headers={**AUTH, "If-None-Match": tag}
    )
    assert resp.status == 304
    assert resp.headers["ETag"] == tag


async def test_another_replica_s_newer_version_is_served_within_the_recheck(
    gateway_factory, hubsoft_url, hubsoft_sim, redis_server
):
    """Replica B reloads an entry; replica A stops serving its page within RECHECK_S."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
    )
    a, b = await gateway_factory(settings), await gateway_factory(settings)
    unpaid = _unpaid(hubsoft_sim)
    query = f"customer_document={unpaid.customer.document}&limit=50"
    await _list(a, query, AUTH)
    _, hit, _ = await _list(a, query, AUTH)
    assert hit["sources"][0]["from_cache"] is True
    hubsoft_sim.mark_paid(unpaid.id)
    _, reloaded, _ = await _list(b, query, {**AUTH, "Cache-Control": "no-cache"})
    await asyncio.sleep(RECHECK_S + 0.05)
    _, seen, _ = await _list(a, query, AUTH)
    assert seen["sources"][0]["fetched_at"] == reloaded["sources"][0]["fetched_at"]
    assert _status(seen, unpaid.id) == "paid"


async def test_a_redis_page_hit_is_at_most_one_redis_command(
    gateway_factory, hubsoft_url, redis_server
):
    """Hits on a Redis-backed gateway send at most one command each (none while checked)."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
    )
    client = await gateway_factory(settings)
    query = "customer_document=12345678909&limit=5"
    await _list(client, query, AUTH)
    probe = aioredis.Redis.from_url(redis_server.url)
    try:
        before = (await probe.info("stats"))["total_commands_processed"]
        hits = 20
        for _ in range(hits):
            await asyncio.sleep(RECHECK_S / 4)  # some hits inside a recheck, some after
            status, body, _ = await _list(client, query, AUTH)
            assert status == 200
            assert body["sources"][0]["from_cache"] is True
        after = (await probe.info("stats"))["total_commands_processed"]
    finally:
        await probe.aclose()
    assert 1 <= after - before - 1 <= hits  # the first INFO counts itself


async def test_a_query_s_sources_are_checked_in_one_cluster_slot(
    gateway_factory, hubsoft_url, redis_cluster
):
    """On a Redis Cluster, one query's entries share a slot and are checked together."""
    redis_cluster.flush()
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        hubsoft_connection(hubsoft_url, cid="beta-isp"),
        redis_url=Secret(redis_cluster.url),
        redis_cluster=True,
    )
    client = await gateway_factory(settings)
    query = "customer_document=12345678909&limit=5"
    _, first, _ = await _list(client, query, AUTH)
    service = client.server.app[SERVICE]
    (page,) = service.pages._pages.values()
    keys = list(page.stamps)
    assert len(keys) == 2
    assert len({key_slot((KEY_PREFIX + key).encode()) for key in keys}) == 1
    assert await service._loader.stamps(keys) == list(page.stamps.values())
    assert None not in page.stamps.values()
    _, again, _ = await _list(client, query, AUTH)
    assert again["data"] == first["data"]
    assert {s["from_cache"] for s in again["sources"]} == {True}

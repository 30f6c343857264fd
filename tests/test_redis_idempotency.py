"""Idempotency on Redis: atomic transitions, one create across replicas, 503 without Redis."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio as aioredis

from gateway.config.settings import Secret
from gateway.errors import IdempotencyUnavailableError
from gateway.state.redis_idempotency import RedisIdempotencyStore
from tests.support import API_KEY, fintera_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}
BODY = {
    "connection": "fin",
    "name": "Replica race",
    "entity_id": 3798,
    "acquirer": "cielo",
    "payment_methods": ["credit_card"],
}


@pytest.fixture
async def store(redis_server):
    """A Redis-backed store on a fresh server."""
    client = aioredis.Redis.from_url(redis_server.url)
    yield RedisIdempotencyStore(client, settle_s=0.0)
    await client.aclose()


async def test_transitions_are_atomic(store):
    """Reserve / complete / uncertain / take_over behave as the memory store does."""
    assert await store.reserve("k", "fp1", "a") is None
    pending = await store.reserve("k", "fp1", "b")
    assert (pending.state, pending.fingerprint, pending.owner) == (
        "pending",
        "fp1",
        "a",
    )
    assert await store.complete("k", "fp1", 201, b'{"id": 1}')
    done = await store.reserve("k", "fp1", "b")
    assert (done.state, done.status, done.body) == ("done", 201, b'{"id": 1}')
    assert not await store.complete("k", "other", 201, b"{}")  # checked, not ignored
    assert await store.reserve("u", "fp", "a") is None
    await store.mark_uncertain("u", "fp")
    takes = await asyncio.gather(
        *(store.take_over("u", f"o{n}", ("", 0)) for n in range(10))
    )
    assert takes.count(True) == 1  # exactly one replica takes an uncertain write over
    await store.release("u", "someone-else")  # not theirs: kept
    assert (await store.reserve("u", "fp", "x")).state == "pending"
    owner = next(f"o{n}" for n, took in enumerate(takes) if took)
    await store.release("u", owner)
    assert await store.reserve("u", "fp", "a") is None


async def test_a_silent_owner_is_taken_over_a_beating_one_is_not(store):
    """Take-over needs the (owner, beat) the contender watched: a new beat defeats it."""
    assert await store.reserve("k", "fp", "a") is None
    seen = await store.reserve("k", "fp", "b")
    assert await store.beat("k", "fp", "a")
    assert not await store.take_over("k", "b", (seen.owner, seen.beat))
    now = await store.reserve("k", "fp", "b")
    assert await store.take_over("k", "b", (now.owner, now.beat))
    assert not await store.beat("k", "fp", "a")  # the old owner lost it


async def test_lost_records_come_back_from_their_owner(store, redis_server):
    """Redis restarted empty: a beat and a completion put the record back."""
    assert await store.reserve("k", "fp", "a") is None
    assert await store.reserve("j", "fp", "a") is None
    redis_server.stop()
    redis_server.start()
    with contextlib.suppress(IdempotencyUnavailableError):
        await store.beat("k", "fp", "a")  # the pooled connection learns Redis restarted
    assert await store.beat("k", "fp", "a")
    assert await store.complete("j", "fp", 201, b"{}")
    assert (await store.reserve("k", "fp", "b")).owner == "a"
    assert (await store.reserve("j", "fp", "b")).state == "done"


async def test_two_replicas_one_key_one_create(
    gateway_factory, fintera_url, fintera_sim, redis_server
):
    """Concurrent POSTs with one key spread over two gateways sharing Redis: one create."""
    settings = make_settings(
        fintera_connection(fintera_url), redis_url=Secret(redis_server.url)
    )
    replicas = [await gateway_factory(settings) for _ in range(2)]
    fintera_sim.board.set("latency", 0.2, times=1)
    responses = await asyncio.gather(
        *(
            replicas[n % 2].post(
                "/v1/sale-accounts",
                json=BODY,
                headers={**AUTH, "Idempotency-Key": "shared"},
            )
            for n in range(10)
        )
    )
    assert {r.status for r in responses} == {201}
    assert len({await r.read() for r in responses}) == 1
    assert (
        sum(
            1 for a in fintera_sim.sale_accounts.values() if a["name"] == "Replica race"
        )
        == 1
    )


async def test_writes_with_a_key_are_refused_while_redis_is_away(
    gateway_factory, fintera_url, fintera_sim, redis_server
):
    """No Redis, no guarantee: 503 and nothing sent upstream; reads still work."""
    settings = make_settings(
        fintera_connection(fintera_url), redis_url=Secret(redis_server.url)
    )
    client = await gateway_factory(settings)
    redis_server.stop()
    resp = await client.post(
        "/v1/sale-accounts", json=BODY, headers={**AUTH, "Idempotency-Key": "x"}
    )
    assert resp.status == 503
    assert resp.headers["Retry-After"]
    assert not [c for c in fintera_sim.calls("/sale_accounts") if c["method"] == "POST"]
    reads = await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    assert reads.status == 200


async def test_store_raises_unavailable_without_redis(store, redis_server):
    """The store never pretends: an unreachable Redis is an error, not a fresh key."""
    redis_server.stop()
    with pytest.raises(IdempotencyUnavailableError):
        await store.reserve("k", "fp", "a")

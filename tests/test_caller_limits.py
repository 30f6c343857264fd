"""Per-caller budgets: IETF RateLimit headers on every answer, 429 with Retry-After."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools

import pytest

from gateway.api.limits import MemoryCallerLimiter, RedisCallerLimiter
from gateway.config.settings import CallerLimit, Secret
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_client import close_redis, connect_redis
from tests.jwt_support import JwksServer, issuer, mint, rsa_key
from tests.support import (
    AUTH,
    READER_KEY,
    FakeClock,
    hubsoft_connection,
    make_settings,
)

DOC = "12345678909"
LIST = f"/v1/invoices?customer_document={DOC}"
KEY = rsa_key("limits")


def limited(settings, requests, window_s=60.0):
    """The `tests` key limited to `requests` per `window_s`."""
    keys = tuple(
        dataclasses.replace(k, rate_limit=CallerLimit(requests, window_s))
        if k.name == "tests"
        else k
        for k in settings.api_keys
    )
    return dataclasses.replace(settings, api_keys=keys)


def remaining(resp) -> int:
    """`r` of the `RateLimit` header."""
    fields = dict(p.split("=") for p in resp.headers["RateLimit"].split(";")[1:])
    return int(fields["r"])


async def test_budget_counts_down_then_429_with_retry_after(
    gateway_factory, hubsoft_url
):
    """Three allowed with r=2,1,0, then a 429 problem with Retry-After; others unaffected."""
    client = await gateway_factory(
        limited(make_settings(hubsoft_connection(hubsoft_url)), 3)
    )
    seen = []
    for _ in range(3):
        resp = await client.get(LIST, headers=AUTH)
        assert resp.status == 200
        assert resp.headers["RateLimit-Policy"] == '"caller";q=3;w=60'
        seen.append(remaining(resp))
    assert seen == [2, 1, 0]
    resp = await client.get(LIST, headers=AUTH)
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    assert 1 <= int(resp.headers["Retry-After"]) <= 20
    assert remaining(resp) == 0
    other = await client.get(LIST, headers={"Authorization": f"Bearer {READER_KEY}"})
    assert other.status == 200
    assert "RateLimit" not in other.headers  # the reader key has no limit


async def test_headers_are_on_error_answers_too(gateway_factory, hubsoft_url):
    """A 400 and a 404 to a limited caller carry the RateLimit headers as well."""
    client = await gateway_factory(
        limited(make_settings(hubsoft_connection(hubsoft_url)), 10)
    )
    bad = await client.get("/v1/invoices?limit=zero", headers=AUTH)
    assert bad.status == 400
    assert remaining(bad) == 9
    missing = await client.get("/v1/invoices/hubsoft:acme-isp:1099-1", headers=AUTH)
    assert missing.status == 404
    assert remaining(missing) == 8


async def test_each_token_subject_has_its_own_budget(
    gateway_factory, hubsoft_url, aiohttp_server
):
    """An issuer's limit applies per subject: one user's spending leaves another's."""
    jwks = JwksServer([KEY])
    served = await aiohttp_server(jwks.app())
    iss = issuer(str(served.make_url("/jwks.json")), rate_limit=CallerLimit(2, 60.0))
    client = await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url), jwt_issuers=(iss,))
    )
    ana = {"Authorization": f"Bearer {mint(KEY, DOC, sub='ana')}"}
    bia = {"Authorization": f"Bearer {mint(KEY, DOC, sub='bia')}"}
    assert [
        (await client.get("/v1/invoices", headers=ana)).status for _ in range(3)
    ] == [
        200,
        200,
        429,
    ]
    assert (await client.get("/v1/invoices", headers=bia)).status == 200


async def test_budget_refills_continuously():
    """GCRA: after one emission interval, exactly one more request fits."""
    clock = FakeClock(0.0)
    limiter = MemoryCallerLimiter(clock)
    limit = CallerLimit(4, 60.0)  # one every 15 s, bursts of 4
    verdicts = [await limiter.charge("k", limit) for _ in range(5)]
    assert [v.allowed for v in verdicts] == [True, True, True, True, False]
    assert verdicts[-1].retry_after_s == pytest.approx(15.0)
    clock.now += 15.0
    assert (await limiter.charge("k", limit)).allowed
    assert not (await limiter.charge("k", limit)).allowed


async def test_redis_budget_is_shared_by_replicas(
    gateway_factory, hubsoft_url, redis_server
):
    """Two gateways on one Redis spend one budget: 4 allowed in total, then 429."""
    settings = limited(
        make_settings(
            hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
        ),
        4,
    )
    one = await gateway_factory(settings)
    two = await gateway_factory(settings)
    statuses = [
        (await client.get(LIST, headers=AUTH)).status
        for client in (one, two, one, two, one, two)
    ]
    assert statuses == [200, 200, 200, 200, 429, 429]


async def test_redis_outage_falls_back_to_a_local_budget(
    gateway_factory, hubsoft_url, redis_server
):
    """Redis gone: the caller is still limited (per process), never unlimited."""
    settings = limited(
        make_settings(
            hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
        ),
        2,
    )
    client = await gateway_factory(settings)
    redis_server.stop()
    statuses = [(await client.get(LIST, headers=AUTH)).status for _ in range(3)]
    assert statuses == [200, 200, 429]


@pytest.mark.parametrize("requests", [1_000_000, 10**9], ids=["1M", "1G"])
async def test_redis_budget_counts_a_large_budget_exactly(redis_server, requests):
    """Tiny emission intervals at today's epoch: counted down, Redis never "down"."""
    client = connect_redis(redis_server.url, cluster=False)
    health = RedisHealth()
    now = 1_796_531_000.123  # an epoch time: where float precision bites
    clock = FakeClock(now)
    limiter = RedisCallerLimiter(client, health, MemoryCallerLimiter(clock), clock)
    limit = CallerLimit(requests, 60.0)
    interval = 60.0 / requests
    key = f"ig:v1:caller:{hashlib.sha256(b'big').hexdigest()[:32]}"
    try:
        # A fresh budget: its key expires when it is full again, well under 1 ms from
        # now (PX 0 was a Redis error, and Redis "down").
        assert (await limiter.charge("big", limit)).allowed
        assert health.state == "up"
        # The count, from a budget 50 s spent: its key then lives ~50 s by Redis's own
        # clock (the script's stands still), however slowly this machine runs.
        await client.set(key, repr(now + 50.0), px=60_000)
        verdicts = [await limiter.charge("big", limit) for _ in range(5)]
    finally:
        await client.delete(key)
        await close_redis(client)
    assert health.state == "up"
    assert all(v.allowed for v in verdicts)
    counted = [v.remaining for v in verdicts]
    left = int(10.0 / interval)  # what the remaining 10 s of the window hold
    if requests <= 1_000_000:  # 60 µs intervals: kept to a double's step (~0.2 µs)
        assert all(a - b == 1 for a, b in itertools.pairwise(counted))
        assert abs(counted[0] - (left - 1)) <= 1
    else:  # 60 ns per request: below that step, the budget is as good as unlimited
        assert all(left - 5 <= r <= left for r in counted)

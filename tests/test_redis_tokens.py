"""Upstream tokens shared through Redis: one refresh cluster-wide, versions never go back."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import redis.asyncio as aioredis

from adapters.xarios.adapter import create as create_xarios
from gateway.config.settings import Secret
from gateway.errors import TokenStoreUnavailableError
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_tokens import RedisTokenProvider
from gateway.state.tokens import LocalTokenProvider, Token
from gateway.upstream.deadline import deadline_in
from gateway.upstream.http import UpstreamClient
from gateway.upstream.providers import ProviderContext
from tests.support import NOW, xarios_connection


@pytest.fixture
async def replicas(redis_server):
    """Three token providers, as three replicas would have, on one Redis."""
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(3)]
    providers = [
        RedisTokenProvider(
            c, RedisHealth(), LocalTokenProvider(), lease_s=0.5, settle_s=1.0
        )
        for c in clients
    ]
    yield providers
    for provider in providers:
        await provider.close()
    for c in clients:
        await c.aclose()


def issuer(lifetime=100.0):
    """A fetcher that issues numbered tokens and remembers what it was handed."""
    seen = []

    async def fetch(previous):
        seen.append(previous)
        await asyncio.sleep(0.05)
        n, now = len(seen), time.time()
        return Token(Secret(f"access-{n}"), now, now + lifetime, Secret(f"refresh-{n}"))

    return fetch, seen


async def test_one_refresh_for_all_replicas(replicas):
    """Sixty concurrent callers on three replicas: one fetch, one token for everyone."""
    fetch, seen = issuer()
    tokens = await asyncio.gather(
        *(replicas[n % 3].get("conn", fetch) for n in range(60))
    )
    assert len(seen) == 1
    assert {t.access.reveal() for t in tokens} == {"access-1"}


async def test_refresh_sees_the_latest_refresh_token(replicas):
    """After an invalidation elsewhere, the next refresh is handed the stored refresh token."""
    fetch, seen = issuer()
    first = await replicas[0].get("conn", fetch)
    await replicas[1].invalidate("conn", first)
    second = await replicas[2].get("conn", fetch)
    assert second.access.reveal() == "access-2"
    assert seen[1].refresh.reveal() == "refresh-1"  # the rotated one, read from Redis


async def test_a_slow_replica_never_overwrites_a_newer_token(replicas, redis_server):
    """A refresh whose lock was taken over loses the version check, adopts the newer token."""
    fast_fetch, _ = issuer()
    probe = aioredis.Redis.from_url(redis_server.url)

    async def slow_fetch(previous):
        await probe.hdel("ig:v1:token:{conn}", "holder")  # as if taken over from us
        await replicas[1].get("conn", fast_fetch)  # another replica refreshes meanwhile
        now = time.time()
        return Token(Secret("stale-access"), now, now + 100, Secret("stale-refresh"))

    got = await replicas[0].get("conn", slow_fetch)
    stored = await probe.hget("ig:v1:token:{conn}", "access")
    assert stored == b"access-1"
    assert got.access.reveal() == "access-1"
    await probe.aclose()


async def test_redis_away_falls_back_to_the_local_provider(replicas, redis_server):
    """No Redis: tokens still come, from the in-process provider."""
    fetch, seen = issuer()
    redis_server.stop()
    token = await replicas[0].get("conn", fetch)
    assert token.access.reveal() == "access-1"
    assert len(seen) == 1


async def test_expiring_token_under_load_on_two_replicas_one_token_call(
    redis_server, xarios_url, xarios_sim
):
    """Two replicas' Xarios adapters, 100 calls at expiry: one call to the identity server."""
    refresh = xarios_sim.issue_refresh_token()
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    async with aiohttp.ClientSession() as session:
        adapters = []
        for c in clients:
            conn = xarios_connection(xarios_url, refresh)
            http = UpstreamClient(session, conn.id, conn.base_url, conn.timeout_s)
            tokens = RedisTokenProvider(c, RedisHealth(), LocalTokenProvider())
            adapters.append(
                create_xarios(ProviderContext(conn, http, tokens, now=lambda: NOW))
            )
        await adapters[0].get_invoice(xarios_sim.bills[0].id)
        xarios_sim.expire_access_tokens()
        before = xarios_sim.token_calls
        ids = [b.id for b in xarios_sim.bills[:50]]
        await asyncio.gather(
            *(adapters[n % 2].get_invoice(ids[n % 50]) for n in range(100))
        )
        assert xarios_sim.token_calls - before == 1
    for c in clients:
        await c.aclose()


async def test_rotating_grant_without_redis_keeps_a_valid_token_never_refreshes(
    replicas, redis_server
):
    """Redis away: the still-valid access token serves; once spent, an honest error."""
    fetch, seen = issuer(lifetime=2.0)  # usable for 1.5 s, valid for 2 s
    first = await replicas[0].get("conn", fetch, rotating=True)
    redis_server.stop()
    await asyncio.sleep(1.6)  # past the early-refresh point, before expiry
    assert await replicas[0].get("conn", fetch, rotating=True) is first
    await asyncio.sleep(0.6)  # expired now
    with pytest.raises(TokenStoreUnavailableError, match="token store unavailable"):
        await replicas[0].get("conn", fetch, rotating=True)
    assert len(seen) == 1  # no refresh ever happened without the store


async def test_redis_back_empty_gets_the_newest_token_back_before_any_refresh(
    replicas, redis_server
):
    """A replica holding the newest token writes it back; the others adopt it.

    The write-back outlives the deadline of the request that first asked for a token.
    """
    fetch, seen = issuer()
    with deadline_in(3):
        held = await replicas[0].get("conn", fetch, rotating=True)
    await asyncio.sleep(3)  # that request's deadline is long gone
    redis_server.stop()
    redis_server.start()
    got = await replicas[1].get("conn", fetch, rotating=True)
    assert got.access == held.access
    assert len(seen) == 1


async def test_a_dead_lock_holder_is_taken_over(replicas, redis_server):
    """A holder whose beat stands still loses the lock; one refresh follows."""
    probe = aioredis.Redis.from_url(redis_server.url)
    await probe.hset("ig:v1:token:{conn}", mapping={"holder": "ghost", "beat": 7})
    await probe.aclose()
    fetch, seen = issuer()
    token = await replicas[0].get("conn", fetch, rotating=True)
    assert token.access.reveal() == "access-1"
    assert len(seen) == 1

"""One upstream budget for all replicas: a token bucket in Redis."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from gateway.config.settings import Secret
from gateway.state.ratelimit import LocalRateLimiter
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_ratelimit import RedisRateLimiter
from tests.support import API_KEY, fintera_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_two_replicas_share_one_budget(
    gateway_factory, fintera_url, fintera_sim, redis_server
):
    """Two gateways, 20 upstream calls, a 10-per-second upstream: no 429 at all.

    Each replica alone would pace itself to the full limit, so together they would send
    twice too much (unshared, the upstream throttles them); the shared bucket keeps the
    sum under the limit. The calls take at least 2.5 s of budget (a burst of 2, then 8
    a second), well inside each request's 8 s deadline even on a loaded machine; 40
    calls took 4.75 s of it by design and 504ed under load.
    """
    fintera_sim.rate_limit, fintera_sim.rate_window_s = 10, 1.0
    conn = fintera_connection(
        fintera_url, rate_limit_requests=10, rate_limit_window_s=1.0
    )
    settings = make_settings(conn, redis_url=Secret(redis_server.url))
    replicas = [await gateway_factory(settings) for _ in range(2)]
    ids = [
        f"fintera:fin:{r['entity_id']}-{r['id']}" for r in fintera_sim.receivables[:10]
    ]
    responses = await asyncio.gather(
        *(
            replicas[n % 2].get(f"/v1/invoices/{ident}", headers=AUTH)
            for n, ident in enumerate(ids)
        )
    )
    assert {r.status for r in responses} == {200}
    assert fintera_sim.throttled == 0


async def scripts_run(client: Redis) -> int:
    """How many EVALs the server has run (its own command statistics)."""
    stats = await client.info("commandstats")
    return int(stats.get("cmdstat_eval", {}).get("calls", 0))


async def test_waiting_callers_go_in_arrival_order_and_only_the_first_asks_redis(
    redis_server,
):
    """Twelve callers on a 10-per-second budget: served in order, ~2 Redis asks each.

    Were every waiter to poll the bucket, each refill would go to whoever woke first
    (a caller could lose every draw until its deadline) and Redis would be asked about
    once per waiter per refill: ~80 scripts here instead of ~24.
    """
    client = Redis.from_url(redis_server.url)
    try:
        limiter = RedisRateLimiter(
            client, RedisHealth(), "fin", LocalRateLimiter(10, 1.0)
        )
        before = await scripts_run(client)
        served: list[int] = []

        async def call(n: int) -> None:
            await limiter.acquire()
            served.append(n)

        callers = []
        for n in range(12):
            callers.append(asyncio.create_task(call(n)))
            await asyncio.sleep(0)  # each one starts waiting before the next arrives
        await asyncio.wait_for(asyncio.gather(*callers), 30)
        asked = await scripts_run(client) - before
    finally:
        await client.aclose()
    assert served == list(range(12))
    assert asked <= 3 * 12

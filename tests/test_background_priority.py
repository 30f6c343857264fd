"""The change detector's upstream calls yield to live traffic in the shared rate budget."""

from __future__ import annotations

import asyncio

from gateway.state.ratelimit import BACKGROUND, LocalRateLimiter
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_ratelimit import RedisRateLimiter


async def background_acquire(limiter) -> None:
    """One acquire made as background work."""
    BACKGROUND.set(True)  # this task's own context
    await limiter.acquire()


async def check_live_first(limiter) -> None:
    """Background takes from a full bucket, then waits while a live call still passes."""
    await asyncio.wait_for(asyncio.create_task(background_acquire(limiter)), 10)
    waiting = asyncio.create_task(background_acquire(limiter))
    await asyncio.sleep(0.2)
    assert not waiting.done()  # the last token is kept for live traffic
    await asyncio.wait_for(limiter.acquire(), 10)  # a live call gets it at once
    assert not waiting.done()
    waiting.cancel()


async def test_background_calls_leave_the_reserve_to_live_calls():
    """In one process: background never spends the live share of the burst."""
    await check_live_first(LocalRateLimiter(10, 1000.0))  # burst 2, slow refill


async def test_background_priority_holds_across_replicas(redis_server):
    """In the Redis-shared bucket too: background leaves the live share."""
    from redis.asyncio import Redis  # noqa: PLC0415 - only this test needs a client

    client = Redis.from_url(redis_server.url)
    try:
        limiter = RedisRateLimiter(
            client, RedisHealth(), "acme-isp", LocalRateLimiter(10, 1000.0)
        )
        await check_live_first(limiter)
    finally:
        await client.aclose()

"""Cache contract and single-flight loading (memory backend)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import CachedLoader, CacheEntry, MemoryCache
from gateway.errors import UpstreamUnavailableError
from tests.support import FakeClock


@pytest.fixture
def clock():
    """A settable epoch clock."""
    return FakeClock(1000.0)


async def test_entry_lives_until_stale_until(clock):
    """An entry is returned until `stale_until`, then gone."""
    cache = MemoryCache(clock=clock)
    await cache.set("k", CacheEntry(b"v", 1000, 1010, 1020))
    clock.now = 1019.9
    assert (await cache.get("k")).value == b"v"
    clock.now = 1020
    assert await cache.get("k") is None
    assert len(cache) == 0


async def test_lru_bound_evicts_least_recently_used(clock):
    """The memory backend never holds more than its bound."""
    cache = MemoryCache(max_entries=2, clock=clock)
    for key in ("a", "b"):
        await cache.set(key, CacheEntry(key.encode(), 0, 2000, 3000))
    await cache.get("a")
    await cache.set("c", CacheEntry(b"c", 0, 2000, 3000))
    assert await cache.get("b") is None
    assert (await cache.get("a")).value == b"a"


async def test_fresh_hit_then_reload_after_freshness(clock):
    """Fresh entries are served; past `fresh_until` the loader runs again."""
    loader_calls = []

    async def load():
        loader_calls.append(1)
        return f"v{len(loader_calls)}".encode()

    cached = CachedLoader(MemoryCache(clock=clock), clock)
    first = await cached.load("k", load, fresh_s=10, stale_s=0)
    again = await cached.load("k", load, fresh_s=10, stale_s=0)
    assert (first.from_cache, again.from_cache, again.value) == (False, True, b"v1")
    clock.now += 11
    third = await cached.load("k", load, fresh_s=10, stale_s=0)
    assert (third.value, third.from_cache) == (b"v2", False)


async def test_stale_while_revalidate_serves_at_once_and_refreshes_once(clock):
    """A stale hit answers immediately; one background load refreshes it for everyone."""
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return f"v{calls}".encode()

    cached = CachedLoader(MemoryCache(clock=clock), clock)
    await cached.load("k", load, fresh_s=10, stale_s=60)
    clock.now += 11
    hits = await asyncio.gather(
        *(cached.load("k", load, fresh_s=10, stale_s=60) for _ in range(20))
    )
    assert {(h.value, h.from_cache, h.stale) for h in hits} == {(b"v1", True, False)}
    await asyncio.sleep(0.1)
    assert calls == 2
    fresh = await cached.load("k", load, fresh_s=10, stale_s=60)
    assert (fresh.value, fresh.from_cache) == (b"v2", True)


async def test_single_flight_for_concurrent_misses(clock):
    """K concurrent misses of one key run the loader once; all get its value."""
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"shared"

    cached = CachedLoader(MemoryCache(clock=clock), clock)
    results = await asyncio.gather(
        *(cached.load("k", load, fresh_s=5, stale_s=5) for _ in range(50))
    )
    assert calls == 1
    assert {r.value for r in results} == {b"shared"}


async def test_impatient_caller_does_not_cancel_the_shared_load(clock):
    """A waiter that times out leaves the load running for the others (and the cache)."""

    async def load():
        await asyncio.sleep(0.1)
        return b"done"

    cached = CachedLoader(MemoryCache(clock=clock), clock)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await cached.load("k", load, fresh_s=5, stale_s=5)
    result = await cached.load("k", load, fresh_s=5, stale_s=5)
    assert result.value == b"done"


async def test_stale_if_error_and_failure_without_stale(clock):
    """Upstream failing: stale entry served and marked; with nothing cached, the error."""
    cached = CachedLoader(MemoryCache(clock=clock), clock)

    async def good():
        return b"old"

    async def bad():
        raise UpstreamUnavailableError("c", "GET", "/x", "HTTP 503")

    await cached.load("k", good, fresh_s=1, stale_s=100)
    clock.now += 5
    stale = await cached.load("k", bad, fresh_s=1, stale_s=100, force=True)
    assert (stale.value, stale.stale, stale.from_cache) == (b"old", True, True)
    assert "503" in str(stale.error)
    with pytest.raises(UpstreamUnavailableError):
        await cached.load("other", bad, fresh_s=1, stale_s=100)
    clock.now += 200
    with pytest.raises(UpstreamUnavailableError):
        await cached.load("k", bad, fresh_s=1, stale_s=100)


async def test_invalidate_forces_next_read_upstream(clock):
    """A write's invalidation makes the next read fresh."""
    n = 0

    async def load():
        nonlocal n
        n += 1
        return str(n).encode()

    cached = CachedLoader(MemoryCache(clock=clock), clock)
    await cached.load("k", load, fresh_s=100, stale_s=0)
    await cached.invalidate("k")
    assert (await cached.load("k", load, fresh_s=100, stale_s=0)).value == b"2"

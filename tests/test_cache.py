"""The cache contract, run against both backends, and single-flight loading."""

from __future__ import annotations

import asyncio
import shutil

import pytest
import redis.asyncio as aioredis

from gateway.errors import UpstreamUnavailableError
from gateway.state.cache import (
    LOCAL_LOCK,
    LOCK_TTL_S,
    CachedLoader,
    CacheEntry,
    MemoryCache,
)
from gateway.state.redis_cache import RedisCache, RedisHealth
from gateway.upstream.deadline import deadline_in
from tests.support import FakeClock, RedisProcess


@pytest.fixture
def clock():
    """A settable epoch clock."""
    return FakeClock(1000.0)


@pytest.fixture(params=["memory", "redis", "cluster"])
async def backend(request, clock):
    """Each backend in turn: the in-process LRU, a redis-server, a 3-master cluster."""
    if request.param == "memory":
        yield MemoryCache(clock=clock)
        return
    if request.param == "redis":
        client = aioredis.Redis.from_url(request.getfixturevalue("redis_server").url)
    else:
        cluster = request.getfixturevalue("redis_cluster")
        cluster.flush()
        client = aioredis.RedisCluster.from_url(cluster.url)
    yield RedisCache(client, RedisHealth(), clock)
    await client.aclose()


async def test_entry_lives_until_stale_until(backend, clock):
    """An entry is returned until `stale_until`, then gone."""
    cache = backend
    await cache.set("k", CacheEntry(b"v", 1000, 1010, 1020))
    clock.now = 1019.9
    assert (await cache.get("k")).value == b"v"
    clock.now = 1020
    assert await cache.get("k") is None
    await cache.set("k", CacheEntry(b"v", 1020, 1030, 1040))
    await cache.delete("k")
    assert await cache.get("k") is None


async def test_lru_bound_evicts_least_recently_used(clock):
    """The memory backend never holds more than its bound."""
    cache = MemoryCache(max_entries=2, clock=clock)
    for key in ("a", "b"):
        await cache.set(key, CacheEntry(key.encode(), 0, 2000, 3000))
    await cache.get("a")
    await cache.set("c", CacheEntry(b"c", 0, 2000, 3000))
    assert await cache.get("b") is None
    assert (await cache.get("a")).value == b"a"


async def test_fresh_hit_then_reload_after_freshness(backend, clock):
    """Fresh entries are served; past `fresh_until` the loader runs again."""
    loader_calls = []

    async def load():
        loader_calls.append(1)
        return f"v{len(loader_calls)}".encode()

    cached = CachedLoader(backend, clock)
    first = await cached.load("k", load, fresh_s=10, stale_s=0)
    again = await cached.load("k", load, fresh_s=10, stale_s=0)
    assert (first.from_cache, again.from_cache, again.value) == (False, True, b"v1")
    clock.now += 11
    third = await cached.load("k", load, fresh_s=10, stale_s=0)
    assert (third.value, third.from_cache) == (b"v2", False)


async def test_stale_while_revalidate_serves_at_once_and_refreshes_once(backend, clock):
    """A stale hit answers immediately; one background load refreshes it for everyone."""
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return f"v{calls}".encode()

    cached = CachedLoader(backend, clock)
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


async def test_single_flight_for_concurrent_misses(backend, clock):
    """K concurrent misses of one key run the loader once; all get its value."""
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return b"shared"

    cached = CachedLoader(backend, clock)
    results = await asyncio.gather(
        *(cached.load("k", load, fresh_s=5, stale_s=5) for _ in range(50))
    )
    assert calls == 1
    assert {r.value for r in results} == {b"shared"}


async def test_impatient_caller_does_not_cancel_the_shared_load(backend, clock):
    """A waiter that times out leaves the load running for the others (and the cache)."""

    async def load():
        await asyncio.sleep(0.1)
        return b"done"

    await backend.get("warm-up")  # connect first: cancel during the load, not the dial
    cached = CachedLoader(backend, clock)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await cached.load("k", load, fresh_s=5, stale_s=5)
    result = await cached.load("k", load, fresh_s=5, stale_s=5)
    assert result.value == b"done"


async def test_stale_if_error_and_failure_without_stale(backend, clock):
    """Upstream failing: stale entry served and marked; with nothing cached, the error."""
    cached = CachedLoader(backend, clock)

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


async def test_invalidate_forces_next_read_upstream(backend, clock):
    """A write's invalidation makes the next read fresh."""
    n = 0

    async def load():
        nonlocal n
        n += 1
        return str(n).encode()

    cached = CachedLoader(backend, clock)
    await cached.load("k", load, fresh_s=100, stale_s=0)
    await cached.invalidate("k")
    assert (await cached.load("k", load, fresh_s=100, stale_s=0)).value == b"2"


async def test_misses_in_two_processes_make_one_load(redis_server, clock):
    """Two loaders (as two replicas would) on one Redis: one upstream load for both."""
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    loaders = [
        CachedLoader(RedisCache(c, RedisHealth(), clock), clock) for c in clients
    ]
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.2)
        return b"once"

    results = await asyncio.gather(
        *(loaders[n % 2].load("k", load, fresh_s=30, stale_s=30) for n in range(20))
    )
    assert calls == 1
    assert {r.value for r in results} == {b"once"}
    for c in clients:
        await c.aclose()


class MissThenWait(RedisCache):
    """A replica whose first read misses, then stalls until another replica is done.

    The window a loaded machine opens by chance (between one replica's miss and its
    lock, another stores and unlocks), opened on purpose.
    """

    def __init__(self, client, clock, other_done: asyncio.Event) -> None:
        """A real Redis cache; `other_done` releases the stalled first read."""
        super().__init__(client, RedisHealth(), clock)
        self.other_done = other_done
        self.reads = 0

    async def get(self, key):
        """The real read; the first one then waits for the other replica."""
        entry = await super().get(key)
        self.reads += 1
        if self.reads == 1:
            await self.other_done.wait()
        return entry


async def test_a_load_finished_between_a_miss_and_the_lock_is_not_done_again(
    redis_server, clock
):
    """Replica B misses; A loads, stores and unlocks; B takes the free lock: no 2nd load."""
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    a_done = asyncio.Event()
    first = CachedLoader(RedisCache(clients[0], RedisHealth(), clock), clock)
    second = CachedLoader(MissThenWait(clients[1], clock, a_done), clock)
    calls = 0

    async def load():
        nonlocal calls
        calls += 1
        return b"once"

    late = asyncio.create_task(second.load("k", load, fresh_s=30, stale_s=30))
    await asyncio.sleep(0.05)  # B has read its miss and waits
    assert (await first.load("k", load, fresh_s=30, stale_s=30)).value == b"once"
    clock.now += 0.001  # B goes on after A stored: later, on the shared clock
    a_done.set()
    assert (await late).value == b"once"
    assert calls == 1
    for c in clients:
        await c.aclose()


async def test_redis_away_fails_open_and_comes_back(redis_server, clock):
    """Redis killed: loads still work (no cache); restarted: caching resumes by itself."""
    client = aioredis.Redis.from_url(
        redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5
    )
    health = RedisHealth()
    cached = CachedLoader(RedisCache(client, health, clock), clock)
    n = 0

    async def load():
        nonlocal n
        n += 1
        return str(n).encode()

    await cached.load("k", load, fresh_s=30, stale_s=30)
    redis_server.stop()
    down = await cached.load("other", load, fresh_s=30, stale_s=30)
    assert (down.value, health.state) == (b"2", "down")
    assert (
        await cached.load("other", load, fresh_s=30, stale_s=30)
    ).value == b"3"  # no cache
    redis_server.start()
    await cached.load("again", load, fresh_s=30, stale_s=30)
    hit = await cached.load("again", load, fresh_s=30, stale_s=30)
    assert (hit.from_cache, health.state) == (True, "up")
    await client.aclose()


@pytest.fixture
async def redis_backends(redis_server):
    """Two Redis cache backends (two replicas) on one server, real clock."""
    clients = [aioredis.Redis.from_url(redis_server.url) for _ in range(2)]
    yield [RedisCache(c, RedisHealth()) for c in clients]
    for c in clients:
        await c.aclose()


async def test_a_dead_loaders_lease_frees_within_the_deadline(redis_backends):
    """A lock left by a dead replica lapses in seconds; the load happens before 8 s."""
    dead, alive = redis_backends
    assert await dead.try_lock("ig:v1:k", LOCK_TTL_S) is not None  # then it "dies"
    calls = []

    async def load():
        calls.append(1)
        return b"v"

    async with asyncio.timeout(8):  # the default request deadline
        found = await CachedLoader(alive).load("k", load, fresh_s=5, stale_s=5)
    assert (found.value, calls) == (b"v", [1])


async def test_a_live_loaders_lease_is_renewed_past_its_ttl(redis_backends):
    """A load longer than the lease keeps it: the other replica waits, no second call."""
    calls = []

    async def slow():
        calls.append(1)
        await asyncio.sleep(LOCK_TTL_S + 1.5)
        return b"slow"

    first = asyncio.create_task(
        CachedLoader(redis_backends[0]).load("k", slow, fresh_s=30, stale_s=30)
    )
    await asyncio.sleep(0.2)
    second = await CachedLoader(redis_backends[1]).load(
        "k", slow, fresh_s=30, stale_s=30
    )
    assert (await first).value == second.value == b"slow"
    assert calls == [1]


async def test_a_load_past_its_callers_deadline_still_fills_the_shared_cache(
    redis_backends,
):
    """The caller's deadline ends its wait, not the shared load's store into Redis."""

    async def slow():
        await asyncio.sleep(0.3)
        return b"late"

    with deadline_in(0.1), pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await CachedLoader(redis_backends[0]).load(
                "k", slow, fresh_s=30, stale_s=30
            )
    for _ in range(100):
        if (entry := await redis_backends[1].get("ig:v1:k")) is not None:
            break
        await asyncio.sleep(0.05)
    assert entry is not None
    assert entry.value == b"late"


async def test_every_cache_key_fits_the_gateways_acl_pattern(tmp_path):
    """With an ACL user limited to `ig:v1:*`, entries and load locks both work."""
    server = RedisProcess(shutil.which("redis-server") or "redis-server", tmp_path)
    server.extra = ["--user", "gw", "on", ">gw-pass", "~ig:v1:*", "resetchannels"]
    server.extra += ["+@all", "-@dangerous", "--user", "default", "off"]
    server.start()
    client = aioredis.Redis.from_url(f"redis://gw:gw-pass@127.0.0.1:{server.port}/0")
    try:
        health = RedisHealth()
        cache = RedisCache(client, health)
        calls = []

        async def load():
            calls.append(1)
            return b"v"

        found = await CachedLoader(cache).load("k", load, fresh_s=5, stale_s=5)
        token = await cache.try_lock("ig:v1:other", LOCK_TTL_S)
        assert found.value == b"v"
        assert token not in {None, LOCAL_LOCK}  # a real Redis lock, not a fail-open
        assert health.state == "up"
    finally:
        await client.aclose()
        server.stop()

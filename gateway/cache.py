"""Result cache: backends behind one `Cache` Protocol, plus single-flight loading.

Entries carry `fetched_at`, `fresh_until` and `stale_until`. `CachedLoader` serves fresh
entries, makes K identical concurrent misses share one upstream call (a shared task,
shielded so one impatient caller cannot cancel it for the others), and serves a stale
entry when the upstream fails (stale-if-error). Values are opaque bytes so a Redis
backend can hold the very same thing. `MemoryCache` is the zero-set-up default: a
bounded LRU.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.errors import UpstreamError

KEY_PREFIX = "ig:v1:"


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A cached value and its three instants (epoch seconds)."""

    value: bytes
    fetched_at: float
    fresh_until: float
    stale_until: float


class Cache(Protocol):
    """A key/value store of `CacheEntry`; absent and expired look the same."""

    async def get(self, key: str) -> CacheEntry | None:
        """The entry, or None once past `stale_until`."""
        ...

    async def set(self, key: str, entry: CacheEntry) -> None:
        """Store until `stale_until`."""
        ...

    async def delete(self, key: str) -> None:
        """Forget the key (writes invalidate what they change)."""
        ...


class MemoryCache:
    """In-process LRU cache bounded by entry count."""

    def __init__(
        self, max_entries: int = 10_000, clock: Callable[[], float] = time.time
    ) -> None:
        """`clock` returns epoch seconds."""
        self._data: OrderedDict[str, CacheEntry] = OrderedDict()
        self._max = max_entries
        self._clock = clock

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry, refreshing its LRU position."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.stale_until:
            del self._data[key]
            return None
        self._data.move_to_end(key)
        return entry

    async def set(self, key: str, entry: CacheEntry) -> None:
        """Store, evicting the least recently used entries over the bound."""
        self._data[key] = entry
        self._data.move_to_end(key)
        while len(self._data) > self._max:
            self._data.popitem(last=False)

    async def delete(self, key: str) -> None:
        """Forget the key if present."""
        self._data.pop(key, None)

    def __len__(self) -> int:
        """Number of entries held (live or not yet swept)."""
        return len(self._data)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What `CachedLoader.load` found: the bytes and how fresh they are."""

    value: bytes
    fetched_at: float
    from_cache: bool
    stale: bool = False
    error: UpstreamError | None = None  # why stale data was served


Loader = Callable[[], Awaitable[bytes]]


class CachedLoader:
    """Fresh hit, else one shared upstream load, else stale-if-error."""

    def __init__(self, cache: Cache, clock: Callable[[], float] = time.time) -> None:
        """Wrap a backend."""
        self.cache = cache
        self._clock = clock
        self._inflight: dict[str, asyncio.Task[CacheEntry]] = {}

    async def load(
        self,
        key: str,
        loader: Loader,
        *,
        fresh_s: float,
        stale_s: float,
        force: bool = False,
    ) -> Lookup:
        """Return the cached value, loading it (single-flight) when not fresh.

        `force` skips a fresh entry (a caller's `Cache-Control: no-cache`) but still falls
        back to it if the upstream fails.
        """
        key = KEY_PREFIX + key
        entry = await self.cache.get(key)
        if entry is not None and not force and self._clock() < entry.fresh_until:
            return Lookup(entry.value, entry.fetched_at, from_cache=True)
        try:
            fresh = await self._shared(key, loader, fresh_s, stale_s)
        except UpstreamError as err:
            if entry is None or self._clock() >= entry.stale_until:
                raise
            return Lookup(
                entry.value, entry.fetched_at, from_cache=True, stale=True, error=err
            )
        return Lookup(fresh.value, fresh.fetched_at, from_cache=False)

    async def peek(self, key: str) -> Lookup | None:
        """Whatever is cached, fresh or stale, without loading (a deadline passed)."""
        entry = await self.cache.get(KEY_PREFIX + key)
        if entry is None:
            return None
        stale = self._clock() >= entry.fresh_until
        return Lookup(entry.value, entry.fetched_at, from_cache=True, stale=stale)

    async def invalidate(self, key: str) -> None:
        """Drop a key so the next read goes upstream."""
        await self.cache.delete(KEY_PREFIX + key)

    async def _shared(
        self, key: str, loader: Loader, fresh_s: float, stale_s: float
    ) -> CacheEntry:
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(
                self._fetch_and_store(key, loader, fresh_s, stale_s)
            )
            self._inflight[key] = task
            task.add_done_callback(lambda t: self._settled(key, t))
        return await asyncio.shield(task)

    def _settled(self, key: str, task: asyncio.Task[CacheEntry]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter may have given up already

    async def _fetch_and_store(
        self, key: str, loader: Loader, fresh_s: float, stale_s: float
    ) -> CacheEntry:
        value = await loader()
        now = self._clock()
        entry = CacheEntry(value, now, now + fresh_s, now + fresh_s + stale_s)
        if fresh_s > 0 or stale_s > 0:
            await self.cache.set(key, entry)
        return entry

    async def close(self) -> None:
        """Cancel loads still running at shutdown."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

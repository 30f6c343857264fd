"""Result cache: backends behind one `Cache` Protocol, plus single-flight loading.

Entries carry `fetched_at`, `fresh_until` and `stale_until`. `CachedLoader` serves fresh
entries, makes K identical concurrent misses share one upstream call (a shared task,
shielded so one impatient caller cannot cancel it for the others), and serves a stale
entry when the upstream fails (stale-if-error). Values are opaque bytes so a Redis
backend can hold the very same thing; a loader may hand back what it encoded along with
the bytes (`Encoded`), so the callers of that load never decode what was just encoded.
`stamps` tells, in one backend call, which version (`fetched_at`) of each key is held:
what a cache of answers built from these entries checks before serving. `MemoryCache` is
the zero-set-up default: an LRU bounded by bytes (what an entry really costs), and by
entries as a backstop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeAlias, cast, runtime_checkable

from gateway.errors import UpstreamError
from gateway.upstream.deadline import no_deadline

KEY_PREFIX = "ig:v1:"
LOCK_TTL_S = 5.0  # a lease renewed by its live owner: a dead one's frees within this
LOCK_RENEW_S = 1.0  # so a loaded event loop may stall 4 s without losing it
LOCK_POLL_S = 0.025
MAX_WAIT_S = 60.0  # a waiter without a request deadline (a background refresh) gives up
LOCAL_LOCK = "local"
MAX_REMEMBERED_ERRORS = (
    10_000  # failed background refreshes remembered (oldest dropped)
)


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

    async def try_lock(self, key: str, ttl_s: float) -> str | None:
        """Take the load lock of `key` (a token), or None if another process holds it."""
        ...

    async def locked(self, key: str) -> bool:
        """Whether some process holds the load lock of `key`."""
        ...

    async def renew(self, key: str, token: str, ttl_s: float) -> bool:
        """Extend the lock `token` holds by `ttl_s`; False once it is no longer held."""
        ...

    async def unlock(self, key: str, token: str) -> None:
        """Release the lock if `token` still holds it."""
        ...


@runtime_checkable
class Stamped(Protocol):
    """A backend that reads several entries' versions at once (one round trip)."""

    async def stamps(self, keys: list[str]) -> list[float | None]:
        """Each key's `fetched_at`, or None when absent or expired."""
        ...


ENTRY_OVERHEAD = 256  # bytes an entry costs besides its key and value (objects, slots)
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


def entry_cost(key: str, entry: CacheEntry) -> int:
    """What holding `entry` under `key` costs in memory, roughly but never less."""
    return len(entry.value) + len(key) + ENTRY_OVERHEAD


class MemoryCache:
    """In-process LRU cache bounded by bytes (and by entry count as a backstop).

    A value larger than an eighth of the budget is not kept at all: one huge answer must
    not flush everything else.
    """

    def __init__(
        self,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """`clock` returns epoch seconds."""
        self._data: OrderedDict[str, CacheEntry] = OrderedDict()
        self._max = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clock = clock
        self.writes = 0  # stores and deletes, ever (evictions change nothing held true)

    async def get(self, key: str) -> CacheEntry | None:
        """The live entry, refreshing its LRU position."""
        entry = self._data.get(key)
        if entry is None:
            return None
        if self._clock() >= entry.stale_until:
            self._drop(key)
            return None
        self._data.move_to_end(key)
        return entry

    async def set(self, key: str, entry: CacheEntry) -> None:
        """Store, evicting the least recently used entries over either bound."""
        self.writes += 1
        self._drop(key)
        cost = entry_cost(key, entry)
        if cost > self.max_bytes // 8:
            return
        self._data[key] = entry
        self.bytes += cost
        while len(self._data) > self._max or self.bytes > self.max_bytes:
            self._drop(next(iter(self._data)))

    async def delete(self, key: str) -> None:
        """Forget the key if present."""
        self.writes += 1
        self._drop(key)

    async def stamps(self, keys: list[str]) -> list[float | None]:
        """Each live entry's `fetched_at` (no LRU update: a check is not a use)."""
        now = self._clock()
        out: list[float | None] = []
        for key in keys:
            entry = self._data.get(key)
            out.append(
                None if entry is None or now >= entry.stale_until else entry.fetched_at
            )
        return out

    def _drop(self, key: str) -> None:
        entry = self._data.pop(key, None)
        if entry is not None:
            self.bytes -= entry_cost(key, entry)

    def __len__(self) -> int:
        """Number of entries held (live or not yet swept)."""
        return len(self._data)

    async def try_lock(self, key: str, ttl_s: float) -> str | None:  # noqa: ARG002
        """One process: the in-process single-flight is all the locking needed."""
        return LOCAL_LOCK

    async def locked(self, key: str) -> bool:  # noqa: ARG002
        """Never locked across processes."""
        return False

    async def renew(self, key: str, token: str, ttl_s: float) -> bool:  # noqa: ARG002
        """The in-process lock never lapses."""
        return True

    async def unlock(self, key: str, token: str) -> None:
        """Nothing to release."""


@dataclass(frozen=True, slots=True)
class Lookup:
    """What `CachedLoader.load` found: the bytes and how fresh they are."""

    value: bytes
    fetched_at: float
    from_cache: bool
    stale: bool = False
    error: UpstreamError | None = None  # why stale data was served
    fresh_until: float = 0.0  # until when `value` is fresh (0: unknown, never fresh)
    decoded: object = None  # what the loader encoded into `value`, when it just ran


@dataclass(frozen=True, slots=True)
class Encoded:
    """A loader's answer: the bytes to cache, what they encode, their own lifetime.

    `decoded` reaches the callers of this very load (never the backend), so nobody
    decodes what was encoded a moment ago; `fresh_s`/`stale_s` override the caller's.
    """

    value: bytes
    decoded: object = None
    fresh_s: float | None = None
    stale_s: float | None = None


Loaded: TypeAlias = "bytes | tuple[bytes, float, float] | Encoded"
"""A value, or a value with its own (fresh_s, stale_s) that overrides the caller's."""
Loader = Callable[[], Awaitable[Loaded]]


@dataclass(frozen=True, slots=True)
class _Fetched:
    """What one load stored, and the loader's decoded form of it (if it gave one)."""

    entry: CacheEntry
    decoded: object = None


class CachedLoader:
    """Fresh hit; stale hit refreshed in the background; else one shared load.

    Single-flight works at two levels: concurrent misses in this process share one task,
    and that task takes the backend's lock so other processes wait for its result
    instead of calling the upstream too. A failed background refresh is remembered, so
    the stale data it leaves behind is served marked stale, with the reason.
    """

    def __init__(self, cache: Cache, clock: Callable[[], float] = time.time) -> None:
        """Wrap a backend."""
        self.cache = cache
        self._clock = clock
        # Decided once: a Protocol isinstance check costs more than the lookup itself.
        self._stamped = isinstance(cache, Stamped)
        # Entries change only through this process (memory) or also in others (Redis).
        self.local = isinstance(cache, MemoryCache)
        self._writes = 0  # entries this loader stored or dropped, ever
        self._inflight: dict[str, asyncio.Task[_Fetched]] = {}
        self._refresh_errors: dict[str, UpstreamError] = {}

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

        Past `fresh_until` but before `stale_until` the entry is served at once and
        refreshed in the background (stale-while-revalidate). `force` (a caller's
        `Cache-Control: no-cache`) loads now, falling back to the entry if that fails.
        """
        key = KEY_PREFIX + key
        asked_at = self._clock()  # a value fetched since then answers this request
        entry = await self.cache.get(key)
        now = self._clock()
        if entry is not None and not force and now < entry.stale_until:
            if now < entry.fresh_until:
                return Lookup(
                    entry.value,
                    entry.fetched_at,
                    from_cache=True,
                    fresh_until=entry.fresh_until,
                )
            self._revalidate(key, loader, fresh_s, stale_s)
            failed = self._refresh_errors.get(key)
            return Lookup(
                entry.value,
                entry.fetched_at,
                from_cache=True,
                stale=failed is not None,
                error=failed,
                fresh_until=entry.fresh_until,
            )
        try:
            fresh = await self._shared(key, loader, fresh_s, stale_s, asked_at)
        except UpstreamError as err:
            if entry is None or self._clock() >= entry.stale_until:
                raise
            return Lookup(
                entry.value,
                entry.fetched_at,
                from_cache=True,
                stale=True,
                error=err,
                fresh_until=entry.fresh_until,
            )
        return Lookup(
            fresh.entry.value,
            fresh.entry.fetched_at,
            from_cache=False,
            fresh_until=fresh.entry.fresh_until,
            decoded=fresh.decoded,
        )

    def _revalidate(
        self, key: str, loader: Loader, fresh_s: float, stale_s: float
    ) -> None:
        if key in self._inflight:
            return

        async def refresh() -> Loaded:
            try:
                value = await loader()
            except UpstreamError as err:
                if len(self._refresh_errors) >= MAX_REMEMBERED_ERRORS:
                    self._refresh_errors.pop(next(iter(self._refresh_errors)))
                self._refresh_errors[key] = err
                raise
            self._refresh_errors.pop(key, None)
            return value

        self._start(key, refresh, fresh_s, stale_s, self._clock())

    async def peek(self, key: str) -> Lookup | None:
        """Whatever is cached, fresh or stale, without loading (a deadline passed)."""
        entry = await self.cache.get(KEY_PREFIX + key)
        if entry is None:
            return None
        stale = self._clock() >= entry.fresh_until
        return Lookup(
            entry.value,
            entry.fetched_at,
            from_cache=True,
            stale=stale,
            fresh_until=entry.fresh_until,
        )

    @property
    def writes(self) -> int:
        """A count that moves whenever an entry may have changed.

        This loader's stores and drops; for a memory backend, every store or delete.
        """
        if isinstance(self.cache, MemoryCache):
            return self._writes + self.cache.writes
        return self._writes

    def now(self) -> float:
        """The clock the entries' instants are read against (epoch seconds)."""
        return self._clock()

    async def stamps(self, keys: list[str]) -> list[float | None]:
        """The version (`fetched_at`) of each key's entry held now, or None.

        One backend call where the backend can (`Stamped`: one Redis round trip).
        """
        full = [KEY_PREFIX + key for key in keys]
        if self._stamped:
            return await cast("Stamped", self.cache).stamps(full)
        entries = [await self.cache.get(key) for key in full]
        return [None if e is None else e.fetched_at for e in entries]

    async def invalidate(self, key: str) -> None:
        """Drop a key so the next read goes upstream."""
        self._writes += 1
        await self.cache.delete(KEY_PREFIX + key)

    async def _shared(
        self, key: str, loader: Loader, fresh_s: float, stale_s: float, asked_at: float
    ) -> _Fetched:
        task = self._inflight.get(key) or self._start(
            key, loader, fresh_s, stale_s, asked_at
        )
        return await asyncio.shield(task)

    def _start(
        self, key: str, loader: Loader, fresh_s: float, stale_s: float, asked_at: float
    ) -> asyncio.Task[_Fetched]:
        task = asyncio.create_task(
            self._fetch_and_store(key, loader, fresh_s, stale_s, asked_at)
        )
        self._inflight[key] = task
        task.add_done_callback(lambda t: self._settled(key, t))
        return task

    def _settled(self, key: str, task: asyncio.Task[_Fetched]) -> None:
        self._inflight.pop(key, None)
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter may have given up already

    async def _fetch_and_store(
        self, key: str, loader: Loader, fresh_s: float, stale_s: float, asked_at: float
    ) -> _Fetched:
        """Load under the backend's lease, or wait for whoever holds it to store a value.

        `asked_at` is when the caller found no usable entry: a value fetched since then
        (by another process that stored and unlocked in between) answers it too.
        """
        while True:
            token = await self.cache.try_lock(key, LOCK_TTL_S)
            if token is not None:
                break
            waited = await self._wait_for_other(key, asked_at)
            if waited is not None:
                return _Fetched(waited)
        if token != LOCAL_LOCK and (done := await self._done_since(key, asked_at)):
            with no_deadline():
                await self.cache.unlock(key, token)
            return _Fetched(done)
        renewer = asyncio.create_task(self._keep_lease(key, token))
        try:
            loaded = await loader()
            if isinstance(
                loaded, tuple
            ):  # the data knows better how long it stays good
                loaded = Encoded(loaded[0], None, loaded[1], loaded[2])
            elif not isinstance(loaded, Encoded):
                loaded = Encoded(loaded)
            fresh_s = fresh_s if loaded.fresh_s is None else loaded.fresh_s
            stale_s = stale_s if loaded.stale_s is None else loaded.stale_s
            now = self._clock()
            entry = CacheEntry(
                loaded.value, now, now + fresh_s, now + fresh_s + stale_s
            )
            if fresh_s > 0 or stale_s > 0:
                with no_deadline():  # stored for the next callers, even if ours left
                    self._writes += 1
                    await self.cache.set(key, entry)
            return _Fetched(entry, loaded.decoded)
        finally:
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)
            with no_deadline():
                await self.cache.unlock(key, token)

    async def _keep_lease(self, key: str, token: str) -> None:
        """Renew the load lock while the load runs: it lapses soon after we die."""
        with no_deadline():
            await self._renew_until_lost(key, token)

    async def _renew_until_lost(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(LOCK_RENEW_S)
            if not await self.cache.renew(key, token, LOCK_TTL_S):
                return

    async def _done_since(self, key: str, asked_at: float) -> CacheEntry | None:
        """The entry, if another process stored it since `asked_at` (its load is done).

        Between a caller's miss and its lock, another process may have loaded, stored
        and unlocked: the lock is then free, yet loading again would call the upstream
        twice for one cold start.
        """
        entry = await self.cache.get(key)
        return entry if entry is not None and entry.fetched_at >= asked_at else None

    async def _wait_for_other(self, key: str, asked_at: float) -> CacheEntry | None:
        """Poll for the value another process is loading; None when its lease is gone.

        The wait ends with the request's deadline (the caller's own time limit cancels
        it); a live owner renews its lease, a dead one's lapses within `LOCK_TTL_S`.
        """
        deadline = self._clock() + MAX_WAIT_S
        while self._clock() < deadline:
            await asyncio.sleep(LOCK_POLL_S)
            if entry := await self._done_since(key, asked_at):
                return entry
            if not await self.cache.locked(key):
                # The owner stores before it unlocks: it may have done both since the
                # read above. Read once more, or a finished load would be done again.
                return await self._done_since(key, asked_at)
        return None

    async def close(self) -> None:
        """Cancel loads still running at shutdown."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

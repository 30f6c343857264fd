"""Answers ready to send: the invoice list's merged page, serialized once, reused while true.

A page is kept under the raw query string and the caller's visibility (its connections
and, for an end user, its customers' documents), and is served again only while every
cache entry it was built from is still the one the cache holds (same `fetched_at`, read
in one backend call: one Redis round trip, shared by the requests that ask for the same
page while it is under way) and still fresh. A check stands until this process's loader
stores or drops any entry. With the memory cache that loader is the only writer, so the
check is not repeated before then. With Redis, where another replica may store a newer
version, it also lapses after `RECHECK_S`: for that long at most, a replica may serve the
version it verified instead of one another replica stored since (both within their
freshness, each with its own true `fetched_at` and ages). Only answers whose every
source was ok and fresh (or skipped) are kept: a stale, failed or timed-out source always
takes the full path, so stale-while-revalidate, stale-if-error and their reasons are
exactly what they were. Ages are not kept: `sources` is rendered at each hit from the
entries' `fetched_at`, so `age_s` moves with the clock as on the full path.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections import OrderedDict
from typing import TypeAlias

from gateway import jsoncodec
from gateway.invoices.listing import ListResult, SourceOutcome, all_complete
from gateway.state.cache import CachedLoader
from gateway.telemetry.metrics import source_labels

PageKey: TypeAlias = tuple[str, frozenset[str] | None, frozenset[str] | None]
"""(raw query string, the caller's connections, the caller's customer documents)."""
MAX_PAGES = 4096
MAX_PAGE_BYTES = 32 * 1024 * 1024
RECHECK_S = 0.1  # a Redis-backed page's version check holds this long (monotonic)
PAGE_OVERHEAD = 512  # bytes a page and each of its sources cost besides the body


class Page:
    """A serialized answer: everything but `sources`, which carries ages, is bytes."""

    __slots__ = (
        "_ages_until",
        "_tail",
        "checked",
        "counted",
        "etag",
        "fresh_until",
        "head",
        "logged",
        "sources",
        "stamps",
    )

    def __init__(
        self, head: bytes, sources: tuple[SourceOutcome, ...], etag: str
    ) -> None:
        """`head`: the JSON up to `"sources":`; `etag` names what determines `data`."""
        self.head = head
        self.sources = sources
        self.etag = etag
        kept = [s for s in sources if s.status != "skipped"]
        self.stamps: dict[str, float | None] = {
            s.key: s.fetched_at for s in kept if s.key is not None
        }
        ends = [s.fresh_until or 0.0 for s in kept]
        self.fresh_until = min(ends) if ends else -math.inf
        # What a hit logs and counts of its sources (`gateway.api.handlers._count`).
        self.logged = tuple(s.log_entry for s in sources)
        self.counted = tuple(
            source_labels(s.connection, s.status, s.from_cache) for s in sources
        )
        self._tail = b""
        self._ages_until = (math.inf, -math.inf)  # the clock span `_tail`'s ages hold
        # When its entries were last found unchanged: (monotonic time, loader.writes).
        self.checked = (-math.inf, -1)

    @classmethod
    def of(cls, result: ListResult, include_remote: bool, etag: str) -> Page:
        """Serialize `result`'s page now."""
        body = jsoncodec.dumps(
            {
                "data": [
                    inv.to_dict(include_remote=include_remote)
                    for inv in result.invoices
                ],
                "next_cursor": result.next_cursor,
                "complete": all_complete(result.sources),
            }
        )
        return cls(body[:-1] + b',"sources":', tuple(result.sources), etag)

    @property
    def keepable(self) -> bool:
        """Whether every source answered ok from a known, fresh entry (or was skipped)."""
        return bool(self.stamps) and all(
            s.status == "skipped"
            or (
                s.status == "ok"
                and s.error is None
                and s.key is not None
                and s.fetched_at is not None
                and s.fresh_until is not None
            )
            for s in self.sources
        )

    @property
    def size(self) -> int:
        """What holding the page costs, roughly but never less."""
        return len(self.head) + PAGE_OVERHEAD * (1 + len(self.sources))

    def from_cache(self) -> Page:
        """The page as a later hit serves it: every source answered from the cache."""
        return Page(
            self.head,
            tuple(
                s
                if s.status == "skipped"
                else dataclasses.replace(s, from_cache=True, latency_ms=0.0)
                for s in self.sources
            ),
            self.etag,
        )

    def body(self, now: float) -> bytes:
        """The JSON answer, `sources` rendered for `now` (reused within the same ages)."""
        since, until = self._ages_until
        if not since <= now < until:
            self._tail = jsoncodec.dumps([s.to_dict(now) for s in self.sources]) + b"}"
            # Every whole-second age stays the same from `now` until the first ticks.
            ticks = [
                s.fetched_at + math.floor(now - s.fetched_at) + 1
                for s in self.sources
                if s.fetched_at is not None
            ]
            self._ages_until = (now, min(ticks, default=math.inf))
        return self.head + self._tail


class PageCache:
    """Pages by `PageKey`, LRU, bounded by bytes and count; checked against the cache."""

    def __init__(
        self,
        loader: CachedLoader,
        *,
        max_pages: int = MAX_PAGES,
        max_bytes: int = MAX_PAGE_BYTES,
    ) -> None:
        """`loader` holds the entries pages are built from (and their clock)."""
        self._loader = loader
        self._pages: OrderedDict[PageKey, Page] = OrderedDict()
        self._sizes: dict[PageKey, int] = {}
        self._checks: dict[PageKey, asyncio.Future[bool]] = {}
        # Only this process writes a memory cache: its writes alone can change an entry.
        self._recheck_s = math.inf if loader.local else RECHECK_S
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self.bytes = 0

    def find_checked(self, key: PageKey) -> Page | None:
        """The page, when fresh and checked recently enough to serve without a check.

        A hit's fast path, no coroutine; None sends the caller to `find`.
        """
        page = self._pages.get(key)
        if page is None or self._loader.now() >= page.fresh_until:
            return None
        at, writes = page.checked
        if writes != self._loader.writes or time.monotonic() - at >= self._recheck_s:
            return None
        self._pages.move_to_end(key)
        return page

    async def find(self, key: PageKey) -> Page | None:
        """The page, if every entry it came from is still held unchanged and fresh."""
        page = self._pages.get(key)
        if page is None:
            return None
        if self._loader.now() >= page.fresh_until or not await self._verified(
            key, page
        ):
            if self._pages.get(key) is page:
                self._drop(key)
            return None
        self._pages.move_to_end(key)
        return page

    async def _verified(self, key: PageKey, page: Page) -> bool:
        """Checked just now (and nothing written here since), or checked again."""
        at, writes = page.checked
        if writes == self._loader.writes and time.monotonic() - at < self._recheck_s:
            return True
        checked = (time.monotonic(), self._loader.writes)
        same = await self._current(key, page)
        if same:
            page.checked = checked
        return same

    async def _current(self, key: PageKey, page: Page) -> bool:
        """Whether the cache still holds the page's entries: one check at a time per page.

        Requests that arrive while a check is under way take its answer (it was read
        after they arrived or just before); a check that failed or was cancelled with
        its first caller counts as "changed", sending them the full way.
        """
        under_way = self._checks.get(key)
        if under_way is not None:
            try:
                return await asyncio.shield(under_way)
            except asyncio.CancelledError:
                if under_way.cancelled():
                    return False
                raise
        done = asyncio.get_running_loop().create_future()
        self._checks[key] = done
        try:
            held = await self._loader.stamps(list(page.stamps))
        except BaseException:
            done.cancel()  # our caller was cancelled (or it failed): others go the full way
            raise
        finally:
            del self._checks[key]
        same = held == list(page.stamps.values())
        done.set_result(same)
        return same

    def keep(self, key: PageKey, page: Page) -> None:
        """Remember a keepable page (as a hit will serve it); others are ignored."""
        if not page.keepable or self._loader.now() >= page.fresh_until:
            return
        self._drop(key)
        cost = page.size + len(key[0])
        if cost > self._max_bytes // 8:
            return
        self._pages[key] = page.from_cache()
        self._sizes[key] = cost
        self.bytes += cost
        while len(self._pages) > self._max_pages or self.bytes > self._max_bytes:
            self._drop(next(iter(self._pages)))

    def _drop(self, key: PageKey) -> None:
        if self._pages.pop(key, None) is not None:
            self.bytes -= self._sizes.pop(key)

    def __len__(self) -> int:
        """Pages held."""
        return len(self._pages)

"""The change detector: the sync leader reads what can still change and records events.

Per watched connection (`sync_interval_s` > 0), every interval, the replica holding the
leader lease reads the invoices whose due dates fall in a recent window (the adapter's
tenant-wide listing; a provider without due dates is read whole), through the shared
cache loader: the read goes through the same funnel, rate budget and breaker as live
traffic, joins an identical live load in flight, and leaves the cache refreshed. The
result is diffed against the connection's last snapshot; the events found, the new
snapshot and the webhooks' outbox entries are committed in one fenced step. The first
read of a connection only records the snapshot (a baseline, no events).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog

from gateway.config.settings import EventSettings
from gateway.errors import UpstreamError
from gateway.events.followup import aged_unpaid, follow, rotation
from gateway.events.lease import Lease
from gateway.events.model import NewEvent, classify, mark
from gateway.events.store import EventStore, LeaseLostError
from gateway.invoices.listing import Connection, encoded, list_key, result_of
from gateway.invoices.models import Invoice
from gateway.state.cache import CachedLoader, Loaded
from gateway.state.ratelimit import BACKGROUND
from gateway.state.redis_client import REDIS_FAILURES
from gateway.upstream.providers import InvoiceProvider, InvoiceQuery

log = structlog.get_logger("events")


def sync_query(
    adapter: InvoiceProvider, today: date, settings: EventSettings
) -> InvoiceQuery | None:
    """The cheapest listing of what can still change: a due window, else everything."""
    window = InvoiceQuery(
        due_from=today - timedelta(days=settings.lookback_days),
        due_to=today + timedelta(days=settings.lookahead_days),
    )
    if adapter.unsupported(window) is None:
        return window
    everything = InvoiceQuery()
    return everything if adapter.unsupported(everything) is None else None


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What one sync of one connection did."""

    connection: str
    read: int
    events: int
    skipped: str | None = None


class ChangeDetector:
    """Runs the sync of every watched connection while this replica leads."""

    def __init__(
        self,
        connections: dict[str, Connection],
        loader: CachedLoader,
        store: EventStore,
        lease: Lease,
        settings: EventSettings,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Wire the connections, the cache loader, the event store and the lease."""
        self._connections = connections
        self._loader = loader
        self._store = store
        self._lease = lease
        self._settings = settings
        self._now = now
        self._clock = clock
        self.fence: str | None = None
        self.syncs: dict[str, int] = {}  # completed syncs per connection (metrics)
        self.recorded: dict[str, int] = {}  # events recorded per connection (metrics)
        self._turns: dict[str, int] = {}  # rotation through aged unpaid invoices

    @property
    def watched(self) -> list[Connection]:
        """The connections with a sync interval."""
        return [c for c in self._connections.values() if c.settings.sync_interval_s > 0]

    async def run(self) -> None:
        """Keep the lease and sync each watched connection on its interval (forever)."""
        if not self.watched:
            return
        tasks = [asyncio.create_task(self._keep_lease())]
        tasks += [asyncio.create_task(self._watch(c)) for c in self.watched]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self.fence is not None:
                await self._lease.release(self.fence)

    async def sync_now(self) -> list[SyncReport]:
        """Sync every watched connection once, now (if this replica leads)."""
        fence = self.fence
        if fence is None:
            return []
        return [await self.sync(conn, fence) for conn in self.watched]

    async def sync(self, conn: Connection, fence: str) -> SyncReport:
        """Read, diff, commit once; `LeaseLostError` if leadership moved meanwhile.

        Every upstream call made meanwhile (tasks started here inherit it) spends the
        rate budget at background priority.
        """
        priority = BACKGROUND.set(True)
        try:
            return await self._sync(conn, fence)
        finally:
            BACKGROUND.reset(priority)

    async def _sync(self, conn: Connection, fence: str) -> SyncReport:
        today = self._now().astimezone(conn.settings.timezone).date()
        query = sync_query(conn.adapter, today, self._settings)
        if query is None:
            return SyncReport(conn.id, 0, 0, skipped="no listing without a customer")

        async def load() -> Loaded:
            result = await conn.adapter.list_invoices(query)
            return encoded(result, conn.adapter.cache_ttl("invoices", result))

        lookup = await self._loader.load(
            list_key(conn.id, query),
            load,
            fresh_s=conn.settings.cache_fresh_s,
            stale_s=conn.settings.cache_stale_s,
            force=True,
        )
        if lookup.from_cache:
            return SyncReport(conn.id, 0, 0, skipped="upstream failed; stale data")
        result = result_of(lookup)
        window_from = query.due_from  # None: the listing has no window
        report = await self._diff_and_commit(
            conn, fence, result.invoices, result.complete, window_from
        )
        self.syncs[conn.id] = self.syncs.get(conn.id, 0) + 1
        return report

    async def _diff_and_commit(
        self,
        conn: Connection,
        fence: str,
        invoices: tuple[Invoice, ...],
        complete: bool,
        window_from: date | None,
    ) -> SyncReport:
        previous = await self._store.snapshot(conn.id)
        marks = {inv.id: mark(inv) for inv in invoices}
        if previous is None:
            await self._store.commit(conn.id, fence, [], marks, [])
            return SyncReport(conn.id, len(invoices), 0, skipped="baseline")
        at = self._now().isoformat()
        events = [
            NewEvent(kind, conn.id, inv, at)
            for inv in sorted(invoices, key=lambda i: i.id)
            if (kind := classify(previous.get(inv.id), inv)) is not None
        ]
        changed = {i: m for i, m in marks.items() if previous.get(i) != m}
        gone = [i for i in previous if i not in marks] if complete else []
        aged = [
            i
            for i in gone
            if window_from is not None and aged_unpaid(previous[i], window_from)
        ]
        dropped = sorted(set(gone) - set(aged))
        turn = rotation(aged, self._turns.get(conn.id, 0), self._settings.followups)
        self._turns[conn.id] = self._turns.get(conn.id, 0) + len(turn)
        found = await follow(conn, previous, turn, at)
        events += found.events
        changed |= found.marks
        dropped += found.dropped
        await self._store.commit(conn.id, fence, events, changed, dropped)
        self.recorded[conn.id] = self.recorded.get(conn.id, 0) + len(events)
        for new in events:
            await self._loader.invalidate(f"{conn.id}:invoice:{new.invoice.remote_id}")
        return SyncReport(conn.id, len(invoices), len(events))

    async def _keep_lease(self) -> None:
        while True:
            try:
                held = await self._lease.hold(self.fence)
            except Exception:  # leading blindly is worse than not leading: step down
                log.exception("sync_lease_crashed")
                held = None
            if held != self.fence:
                log.info("sync_leadership", leader=held is not None)
            self.fence = held
            await asyncio.sleep(self._settings.lease_s / 3)

    async def _watch(self, conn: Connection) -> None:
        interval = conn.settings.sync_interval_s
        while True:
            fence = self.fence
            if fence is None:
                await asyncio.sleep(min(interval, self._settings.lease_s / 3))
                continue
            started = self._clock()
            try:
                report = await self.sync(conn, fence)
                log.debug("sync", **dataclasses.asdict(report))
            except LeaseLostError:
                self.fence = None
                continue
            except (UpstreamError, *REDIS_FAILURES) as err:
                log.warning("sync_failed", connection=conn.id, reason=str(err))
            except Exception:  # a bug must not stop the watch for good: log it, go on
                log.exception("sync_crashed", connection=conn.id)
            await asyncio.sleep(max(0.0, interval - (self._clock() - started)))

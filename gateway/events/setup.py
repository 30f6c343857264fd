"""Wiring of the events feature into the app: stores, detector and webhook workers.

With Redis the log, snapshots and outboxes live in Redis Streams and every replica
works; without it they live in this process's memory (not durable: a restart forgets
events and pending deliveries).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import aiohttp
from aiohttp import web
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from gateway.api.state import METRICS
from gateway.config.settings import Settings
from gateway.events.detector import ChangeDetector
from gateway.events.lease import Lease, LocalLease, RedisLease
from gateway.events.outbox import MemoryOutbox, Outbox
from gateway.events.redis_outbox import RedisOutbox
from gateway.events.redis_store import FENCE, LEASE, RedisEventStore
from gateway.events.state import DETECTOR, EVENT_STORE, OUTBOXES
from gateway.events.store import EventStore, MemoryEventStore
from gateway.events.webhooks import WebhookWorker
from gateway.invoices.listing import Connection
from gateway.state.cache import CachedLoader
from gateway.state.redis_client import RedisClient
from gateway.telemetry.metrics import counter


def _stores(
    settings: Settings, redis: RedisClient | None, clock: Callable[[], float]
) -> tuple[EventStore, dict[str, Outbox], Lease]:
    events, hooks = settings.events, settings.webhooks
    if redis is None:
        memory = {h.name: MemoryOutbox() for h in hooks}
        store = MemoryEventStore(hooks, memory, events.retention_s, clock)
        return store, dict[str, Outbox](memory), LocalLease()
    consumer = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
    outboxes: dict[str, Outbox] = {
        h.name: RedisOutbox(redis, h.name, consumer, events.claim_idle_s) for h in hooks
    }
    lease = RedisLease(redis, LEASE, FENCE, events.lease_s)
    return RedisEventStore(redis, hooks, events.retention_s, clock), outboxes, lease


@contextlib.asynccontextmanager
async def running_events(
    app: web.Application,
    settings: Settings,
    redis: RedisClient | None,
    connections: dict[str, Connection],
    loader: CachedLoader,
    session: aiohttp.ClientSession,
    now: Callable[[], datetime],
    clock: Callable[[], float] = time.time,
) -> AsyncIterator[None]:
    """Build the stores, start the detector and one worker per webhook; stop them after."""
    store, outboxes, lease = _stores(settings, redis, clock)
    detector = ChangeDetector(connections, loader, store, lease, settings.events, now)
    app[EVENT_STORE], app[OUTBOXES], app[DETECTOR] = store, outboxes, detector
    workers = {
        hook.name: WebhookWorker(hook, outboxes[hook.name], session, settings.events)
        for hook in settings.webhooks
    }
    app[METRICS].watch(lambda: _metrics(detector, workers))
    tasks = [asyncio.create_task(detector.run())]
    tasks += [asyncio.create_task(worker.run()) for worker in workers.values()]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for outbox in outboxes.values():
            if isinstance(outbox, RedisOutbox):
                await outbox.leave()
        await store.close()


def _metrics(
    detector: ChangeDetector, workers: dict[str, WebhookWorker]
) -> list[Metric]:
    """Leadership, syncs and events per connection, delivery outcomes per webhook."""
    leader = GaugeMetricFamily(
        "gateway_events_sync_leader", "1 while this process runs the change detector"
    )
    leader.add_metric([], 1 if detector.watched and detector.fence is not None else 0)
    syncs = counter(
        "gateway_events_syncs", "Change-detector syncs completed here", "connection"
    )
    for cid, count in detector.syncs.items():
        syncs.add_metric([cid], count)
    recorded = counter(
        "gateway_events_recorded", "Invoice events recorded here", "connection"
    )
    for cid, count in detector.recorded.items():
        recorded.add_metric([cid], count)
    deliveries = CounterMetricFamily(
        "gateway_webhook_deliveries",
        "Webhook attempts made here: delivered, failed (to be retried), dead",
        labels=["webhook", "outcome"],
    )
    for name, worker in workers.items():
        for outcome, count in sorted(worker.outcomes.items()):
            deliveries.add_metric([name, outcome], count)
    return [leader, syncs, recorded, deliveries]

"""Typed app keys of the events feature."""

from __future__ import annotations

from aiohttp import web

from gateway.events.detector import ChangeDetector
from gateway.events.outbox import Outbox
from gateway.events.store import EventStore

EVENT_STORE = web.AppKey("event_store", EventStore)
OUTBOXES = web.AppKey("outboxes", dict[str, Outbox])
DETECTOR = web.AppKey("detector", ChangeDetector)

"""Routes of the events feature: the feed, the stream, and webhook dead letters."""

from __future__ import annotations

from aiohttp import web

from gateway import jsoncodec
from gateway.api.handlers import require_scope
from gateway.errors import NotFoundError
from gateway.events.feed import list_events, stream_events
from gateway.events.model import EVENT_ID_RE
from gateway.events.outbox import Outbox
from gateway.events.state import OUTBOXES

ADMIN_SCOPE = ("admin",)


def _outbox(request: web.Request) -> tuple[str, Outbox]:
    name = request.match_info["name"]
    outbox = request.app[OUTBOXES].get(name)
    if outbox is None:
        raise NotFoundError(f"no webhook {name!r}")
    return name, outbox


async def list_deliveries(request: web.Request) -> web.Response:
    """`GET /v1/webhooks/{name}/deliveries`: recent attempts and dead letters (admin)."""
    require_scope(request, ADMIN_SCOPE)
    name, outbox = _outbox(request)
    body = {
        "webhook": name,
        "recent": await outbox.recent(),
        "dead_letters": await outbox.dead_letters(),
    }
    return web.Response(body=jsoncodec.dumps(body), content_type="application/json")


async def replay_delivery(request: web.Request) -> web.Response:
    """`POST /v1/webhooks/{name}/deliveries/{event_id}/replay`: queue a dead letter again."""
    require_scope(request, ADMIN_SCOPE)
    name, outbox = _outbox(request)
    event_id = request.match_info["event_id"]
    if not EVENT_ID_RE.match(event_id) or not await outbox.replay(event_id):
        raise NotFoundError(f"no dead letter {event_id!r} for webhook {name!r}")
    body = {"webhook": name, "replayed": event_id}
    return web.Response(
        status=202, body=jsoncodec.dumps(body), content_type="application/json"
    )


def setup_event_routes(app: web.Application) -> None:
    """Add the feed, stream and delivery routes."""
    app.router.add_get("/v1/events", list_events)
    app.router.add_get("/v1/events/stream", stream_events)
    app.router.add_get("/v1/webhooks/{name}/deliveries", list_deliveries)
    app.router.add_post(
        "/v1/webhooks/{name}/deliveries/{event_id}/replay", replay_delivery
    )

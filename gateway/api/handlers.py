"""Route handlers: parse, ask the service, shape the JSON. No try/except in here."""

from __future__ import annotations

import dataclasses
import hashlib
import re
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import hdrs, web

from gateway import jsoncodec
from gateway.api.deadlines import caller_deadline, disarm
from gateway.api.fields import CANONICAL_ID_HINT, CANONICAL_ID_RE, ascii_int
from gateway.api.middleware import answers_at_once, start_stream
from gateway.api.params import LIST_PARAMS, SUMMARY_PARAMS, parse_list_request
from gateway.api.state import (
    AUDIT,
    CACHE_BACKEND,
    CALL,
    METRICS,
    SERVICE,
    SETTINGS,
    TOKENS,
    Call,
)
from gateway.errors import (
    AuthenticationError,
    FieldError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    SourcesFailedError,
)
from gateway.invoices.listing import (
    ListRequest,
    ListResult,
    SourceOutcome,
    all_complete,
    any_answered,
)
from gateway.invoices.pages import Page, PageKey
from gateway.invoices.principal import Principal
from gateway.invoices.summary import summarize
from gateway.state.redis_cache import RedisCache
from gateway.telemetry.audit import RedisAuditTrail
from gateway.telemetry.metrics import Metrics

READ_SCOPE = ("invoices:read",)
AUDIT_SCOPE = ("audit:read",)
MAX_AUDIT_PAGE = 500
AUDIT_CURSOR_RE = re.compile(r"[0-9]{1,20}-[0-9]{1,20}")


def require_scope(request: web.Request, scopes: tuple[str, ...]) -> Principal:
    """The caller, if it holds one of `scopes`; else 403."""
    return _scoped(request[CALL].principal, scopes)


def _scoped(principal: Principal | None, scopes: tuple[str, ...]) -> Principal:
    """`principal`, if it holds one of `scopes`; else 403 (401 with no caller)."""
    if principal is None:  # not through the pipeline's `/v1/` authentication
        raise AuthenticationError("this route needs a caller")
    if principal.scopes.isdisjoint(scopes):
        raise ForbiddenError(f"this caller lacks the {' or '.join(scopes)!r} scope")
    return principal


def no_cache(request: web.Request) -> bool:
    """Whether the caller asked to skip cached data (`Cache-Control: no-cache`)."""
    return "no-cache" in request.headers.get(hdrs.CACHE_CONTROL, "").lower()


def json_response(
    request: web.Request, payload: Any, etag_of: Any = None
) -> web.Response:
    """JSON with a weak ETag over `etag_of` (default: the payload); 304 when it matches."""
    body = jsoncodec.dumps(payload)
    etag = _etag(body if etag_of is None else jsoncodec.dumps(etag_of))
    headers = {hdrs.ETAG: etag, hdrs.CACHE_CONTROL: "private, no-cache"}
    if etag in request.headers.get(hdrs.IF_NONE_MATCH, ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def _etag(source: bytes) -> str:
    """A weak ETag over `source`."""
    return 'W/"' + hashlib.sha256(source).hexdigest()[:32] + '"'


def _list_request(
    request: web.Request, principal: Principal, allowed: frozenset[str]
) -> ListRequest:
    """Parse the shared list filters against what this caller may see."""
    visible = [
        c for c in request.app[SERVICE].connections.values() if principal.may_use(c.id)
    ]
    parsed = parse_list_request(
        request.query,
        providers=sorted({c.settings.provider for c in visible}),
        connections=[c.id for c in visible],
        no_cache=no_cache(request),
        allowed=allowed,
    )
    return dataclasses.replace(parsed, deadline_s=caller_deadline(request))


def _count(request: web.Request, outcomes: Sequence[SourceOutcome]) -> None:
    """Put the sources' outcomes in the request's log line and the metrics."""
    request[CALL].sources.extend(s.log_entry for s in outcomes)
    metrics = request.app[METRICS]
    for s in outcomes:
        metrics.source(s.connection, s.status, s.from_cache)


def _report(
    request: web.Request, outcomes: list[SourceOutcome]
) -> tuple[list[Any], bool]:
    """Log and count the sources; raise 502/504 when none answered; (JSON, complete)."""
    now = time.time()
    sources = [s.to_dict(now) for s in outcomes]
    _count(request, outcomes)
    if not any_answered(outcomes):
        tried = [s for s in outcomes if s.status != "skipped"]
        raise SourcesFailedError(
            sources, all_timeouts=all(s.status == "timeout" for s in tried)
        )
    return sources, all_complete(outcomes)


def _list_etag(result: ListResult, include_remote: bool) -> str:
    """What determines a list's `data`: the page's ids and the versions they came from.

    Cheaper than hashing the whole body again, and blind to `age_s` ticking.
    """
    return _etag(
        jsoncodec.dumps(
            [
                [inv.id for inv in result.invoices],
                [(s.connection, s.status, s.fetched_at) for s in result.sources],
                result.next_cursor,
                include_remote,
            ]
        )
    )


def _send_page(
    request: web.Request, call: Call, page: Page, metrics: Metrics
) -> web.Response:
    """A page as JSON (its `sources` aged to now), or 304 when the caller has it."""
    call.sources.extend(page.logged)  # as `_count`, prepared by the page
    metrics.sources.inc_each(page.counted)
    if page.etag in request.headers.get(hdrs.IF_NONE_MATCH, ""):
        return web.Response(
            status=304,
            headers={hdrs.ETAG: page.etag, hdrs.CACHE_CONTROL: "private, no-cache"},
        )
    return web.Response(
        body=page.body(time.time()),
        headers={
            hdrs.ETAG: page.etag,
            hdrs.CACHE_CONTROL: "private, no-cache",
            hdrs.CONTENT_TYPE: "application/json",  # as `content_type=`, unparsed
        },
    )


def _page_key(request: web.Request, principal: Principal) -> PageKey:
    """What a page is kept under: the query as sent, and what the caller may see."""
    return (request.query_string, principal.connections, principal.documents)


def cached_page(
    app: web.Application, request: web.Request, call: Call
) -> web.Response | None:
    """GET /v1/invoices answered at once: a page served before and recently checked.

    None (the caller asked for `no-cache`, or no such page): `list_invoices` answers.
    """
    principal = _scoped(call.principal, READ_SCOPE)
    if no_cache(request):
        return None
    page = app[SERVICE].pages.find_checked(_page_key(request, principal))
    return None if page is None else _send_page(request, call, page, app[METRICS])


@answers_at_once(cached_page)
async def list_invoices(request: web.Request) -> web.Response:
    """GET /v1/invoices: the merged, sorted, paged list with `sources`.

    A page served before is served again while the entries it came from are unchanged
    and fresh (`gateway.invoices.pages`), unless the caller asks for `no-cache`; one
    checked recently enough is answered by `cached_page`, before this handler runs.
    """
    principal = require_scope(request, READ_SCOPE)
    service = request.app[SERVICE]
    key = _page_key(request, principal)
    page = None if no_cache(request) else await service.pages.find(key)
    if page is None:
        list_request = _list_request(request, principal, LIST_PARAMS)
        result = await service.list(principal, list_request)
        if not any_answered(result.sources):
            _report(request, result.sources)  # raises the 502/504 problem
        page = Page.of(
            result,
            list_request.include_remote,
            _list_etag(result, list_request.include_remote),
        )
        service.pages.keep(key, page)
    return _send_page(request, request[CALL], page, request.app[METRICS])


async def invoice_summary(request: web.Request) -> web.Response:
    """GET /v1/invoices/summary: totals per currency and status, overdue aging buckets."""
    principal = require_scope(request, READ_SCOPE)
    list_request = _list_request(request, principal, SUMMARY_PARAMS)
    service = request.app[SERVICE]
    invoices, outcomes = await service.gather(principal, list_request)
    sources, complete = _report(request, outcomes)
    totals = summarize(invoices, service.today_of)
    return json_response(
        request,
        {"totals": totals, "complete": complete, "sources": sources},
        etag_of=[totals, [(s.connection, s.status, s.fetched_at) for s in outcomes]],
    )


def _checked_id(request: web.Request, allowed_params: set[str]) -> str:
    """The `{invoice_id}` path part, checked together with the query's parameter names."""
    errors = [
        FieldError(name, "unknown parameter")
        for name in sorted(set(request.query) - allowed_params)
    ]
    invoice_id = request.match_info["invoice_id"]
    if not CANONICAL_ID_RE.fullmatch(invoice_id):
        errors.append(FieldError("id", CANONICAL_ID_HINT))
    if errors:
        raise InvalidRequestError(errors)
    return invoice_id


async def get_invoice(request: web.Request) -> web.Response:
    """GET /v1/invoices/{id}: one invoice by canonical id."""
    principal = require_scope(request, READ_SCOPE)
    invoice_id = _checked_id(request, allowed_params={"include"})
    include = request.query.getall("include", [])
    if any(value != "remote" for value in include):
        raise InvalidRequestError([FieldError("include", "allowed: remote")])
    invoice = await request.app[SERVICE].get(
        principal,
        invoice_id,
        force=no_cache(request),
        deadline_s=caller_deadline(request),
    )
    return json_response(request, invoice.to_dict(include_remote=bool(include)))


async def get_document(request: web.Request) -> web.StreamResponse:
    """GET /v1/invoices/{id}/document: the upstream's PDF, streamed chunk by chunk."""
    principal = require_scope(request, READ_SCOPE)
    invoice_id = _checked_id(request, allowed_params=set())
    async with request.app[SERVICE].open_document(principal, invoice_id) as doc:
        response = web.StreamResponse(
            headers={
                hdrs.CONTENT_TYPE: doc.content_type,
                hdrs.CONTENT_DISPOSITION: f'inline; filename="{_filename(invoice_id)}"',
                hdrs.CACHE_CONTROL: "private, no-store",
            }
        )
        if doc.length is not None:
            response.content_length = doc.length
        disarm(request)  # the body may take as long as it keeps flowing
        await start_stream(request, response)
        async for chunk in doc.chunks:
            await response.write(chunk)
        await response.write_eof()
    return response


def _filename(invoice_id: str) -> str:
    """`<provider>-<connection>-<remote id>.pdf`, safe inside a quoted header value."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", invoice_id) + ".pdf"


async def list_connections(request: web.Request) -> web.Response:
    """GET /v1/connections: provider, health and token state of each visible connection.

    Operators' details: an end user's token never sees them.
    """
    principal = require_scope(request, READ_SCOPE)
    if principal.customer_bound:
        raise ForbiddenError("connection details are for internal callers")
    tokens = request.app[TOKENS]
    out = []
    for conn in request.app[SERVICE].connections.values():
        if not principal.may_use(conn.id):
            continue
        health = conn.http.health
        token = tokens.state(conn.id)
        out.append(
            {
                "id": conn.id,
                "provider": conn.settings.provider,
                "health": health.as_status(),
                "last_ok_at": _iso(health.last_ok_at),
                "last_error_at": _iso(health.last_error_at),
                "last_error": health.last_error,
                "consecutive_failures": health.consecutive_failures,
                "breaker": conn.http.breaker.as_dict() if conn.http.breaker else None,
                "token": {
                    "present": token.present,
                    "expires_in_s": token.expires_in_s,
                    "refreshes": token.refreshes,
                },
            }
        )
    return web.json_response(
        {"data": out, "cache": await cache_state(request)}, dumps=jsoncodec.dumps_str
    )


async def metrics(request: web.Request) -> web.Response:
    """Prometheus exposition (no credentials, customers or ids in any label)."""
    return web.Response(
        body=request.app[METRICS].render(),
        content_type="text/plain",
        charset="utf-8",
        headers={"X-Content-Type-Options": "nosniff"},
    )


async def healthz(_request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness from what is already known; never calls an upstream."""
    conns = {
        conn.id: conn.http.health.as_status()
        for conn in request.app[SERVICE].connections.values()
    }
    return web.json_response(
        {"status": "ready", "cache": await cache_state(request), "connections": conns}
    )


async def cache_state(request: web.Request) -> dict[str, Any]:
    """Which cache backend serves, and for Redis whether it answers right now.

    A Redis outage does not make the gateway unready: it keeps answering from the
    upstreams (fail-open), so taking replicas out of rotation would only hurt.
    """
    backend = request.app[CACHE_BACKEND]
    if isinstance(backend, RedisCache):
        up = await backend.ping()
        return {"backend": "redis", "redis": "up" if up else "down"}
    return {"backend": "memory"}


def _iso(epoch: float | None) -> str | None:
    return (
        None
        if epoch is None
        else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    )


async def read_audit(request: web.Request) -> web.Response:
    """GET /v1/audit?limit=N&before=CURSOR: the audit trail, newest first (admin keys)."""
    principal = require_scope(request, AUDIT_SCOPE)
    if principal.customer_bound:
        raise ForbiddenError("the audit trail is for internal callers")
    errors = [
        FieldError(name, "unknown parameter")
        for name in sorted(set(request.query) - {"limit", "before"})
    ]
    limit = ascii_int(request.query.get("limit", "50"), low=1, high=MAX_AUDIT_PAGE)
    if limit is None:  # `²` passes str.isdigit() and breaks int(): ASCII digits only
        errors.append(FieldError("limit", f"must be 1 to {MAX_AUDIT_PAGE}"))
    before = request.query.get("before")
    if before is not None and not AUDIT_CURSOR_RE.fullmatch(before):
        errors.append(FieldError("before", "must be a next_cursor from this route"))
    if errors or limit is None:
        raise InvalidRequestError(errors)
    trail = request.app[AUDIT]
    if not isinstance(trail, RedisAuditTrail):
        raise NotFoundError("the audit trail is served only when Redis is configured")
    events, cursor = await trail.page(limit, before)
    return web.json_response(
        {"data": events, "next_cursor": cursor},
        headers={hdrs.CACHE_CONTROL: "no-store"},
        dumps=jsoncodec.dumps_str,
    )


def setup_routes(app: web.Application) -> None:
    """Register every route."""
    app.router.add_get("/v1/invoices", list_invoices)
    app.router.add_get("/v1/invoices/summary", invoice_summary)  # before {invoice_id}
    app.router.add_get("/v1/invoices/{invoice_id}", get_invoice)
    app.router.add_get("/v1/invoices/{invoice_id}/document", get_document)
    app.router.add_get("/v1/connections", list_connections)
    app.router.add_get("/v1/audit", read_audit)

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if app[SETTINGS].metrics_port is None:  # else on its own port (api/metrics_port)
        app.router.add_get("/metrics", metrics)

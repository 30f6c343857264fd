"""The request pipeline: request id, API-key auth, problem+json, one log line.

Errors become HTTP here and nowhere else; handlers hold no try/except. Every request
ends in exactly one canonical structlog line with its id, route, status, duration,
caller and per-source outcomes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.api import problems
from gateway.api.state import API_KEYS, METRICS, PRINCIPAL, SOURCES_LOG, STREAMING
from gateway.api.state import REQUEST_ID as REQUEST_ID_KEY
from gateway.errors import AuthenticationError, GatewayError
from gateway.principal import Principal

log = structlog.get_logger("access")
REQUEST_ID = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def authenticate(request: web.Request) -> Principal:
    """Resolve `Authorization: Bearer <key>` against the configured key hashes."""
    scheme, _, key = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise AuthenticationError("send an API key as 'Authorization: Bearer <key>'")
    digest = hashlib.sha256(key.strip().encode()).hexdigest()
    found = None
    for known, entry in request.app[API_KEYS].items():
        if hmac.compare_digest(known, digest):
            found = entry
    if found is None:
        raise AuthenticationError("unknown API key")
    return Principal(found.name, found.scopes, found.connections)


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: every response, streamed ones too, carries the id."""
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[REQUEST_ID] = request_id


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wrap every request: id in and out, auth, problem translation, access log."""
    incoming = request.headers.get(REQUEST_ID, "")
    request_id = incoming if REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.monotonic()
    request[SOURCES_LOG] = []
    request[REQUEST_ID_KEY] = request_id
    try:
        if request.path.startswith("/v1/"):
            request[PRINCIPAL] = authenticate(request)
        response = await handler(request)
    except GatewayError as err:
        streaming = request.get(STREAMING)
        if streaming is not None and streaming.prepared:
            # Headers are gone: the only honest signal left is a cut connection.
            log.warning("stream_aborted", path=request.path, reason=str(err))
            if request.transport is not None:
                request.transport.close()
            response = streaming
        else:
            response = problems.from_error(err)
    except web.HTTPException as exc:
        response = problems.from_http_exception(exc)
    except Exception:
        log.exception("unhandled_error", path=request.path)
        response = problems.problem(
            500, "internal", "Internal Server Error", f"request {request_id} failed"
        )
    route = request.match_info.route.resource
    principal = request.get(PRINCIPAL)
    elapsed = time.monotonic() - started
    metrics = request.app[METRICS]
    label = (
        route.canonical if route else "unmatched"
    )  # unknown paths: one bounded label
    metrics.requests.labels(label, str(response.status)).inc()
    metrics.request_seconds.labels(label).observe(elapsed)
    log.info(
        "request",
        method=request.method,
        route=route.canonical if route else request.path,
        status=response.status,
        duration_ms=round(elapsed * 1000, 1),
        caller=principal.name if principal else None,
        sources=request[SOURCES_LOG] or None,
    )
    structlog.contextvars.unbind_contextvars("request_id")
    return response

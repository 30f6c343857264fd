"""The request pipeline: request id, CORS, auth, caller limits, problems, log, audit.

Errors become HTTP here and nowhere else; handlers hold no try/except. Every request
ends in exactly one canonical structlog line with its id, route, status, duration,
caller and per-source outcomes; every write and every denied access also becomes one
audit event (see `gateway.telemetry.audit`).
"""

from __future__ import annotations

import os
import re
import time

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.api import cors, problems
from gateway.api.state import (
    AUDIT,
    AUTHENTICATOR,
    CALLER_LIMITER,
    METRICS,
    PRINCIPAL,
    RATE_HEADERS,
    SETTINGS,
    SOURCES_LOG,
    STREAMING,
)
from gateway.api.state import REQUEST_ID as REQUEST_ID_KEY
from gateway.errors import GatewayError, NotYoursError, RateLimitedError
from gateway.telemetry import audit
from gateway.telemetry.logs import where_it_failed

log = structlog.get_logger("access")
REQUEST_ID = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
WRITES = frozenset({hdrs.METH_POST, hdrs.METH_PUT, hdrs.METH_PATCH, hdrs.METH_DELETE})
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
DENIED = {401: "unauthenticated", 403: "forbidden", 429: "rate_limited"}


async def stamp_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare` hook: every response, streamed ones too, carries the id.

    And the CORS grant and the caller's `RateLimit` headers, which must be on every
    answer, streamed documents and problems alike.
    """
    request_id = request.get(REQUEST_ID_KEY)
    if request_id is not None:
        response.headers[REQUEST_ID] = request_id
    cors.stamp(request, response, request.app[SETTINGS].cors)
    response.headers.update(request.get(RATE_HEADERS) or {})


async def _admit(request: web.Request) -> None:
    """Authenticate a /v1 caller and charge its budget (429 when spent)."""
    principal = await request.app[AUTHENTICATOR].authenticate(
        request.headers.get(hdrs.AUTHORIZATION, "")
    )
    request[PRINCIPAL] = principal
    if principal.limit is not None:
        verdict = await request.app[CALLER_LIMITER].charge(
            principal.name, principal.limit
        )
        request[RATE_HEADERS] = verdict.headers()
        if not verdict.allowed:
            raise RateLimitedError(verdict.retry_after_s)


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wrap every request: id in and out, auth, problem translation, access log."""
    incoming = request.headers.get(REQUEST_ID, "")
    request_id = incoming if REQUEST_ID_RE.fullmatch(incoming) else os.urandom(16).hex()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.monotonic()
    request[SOURCES_LOG] = []
    request[REQUEST_ID_KEY] = request_id
    denied_reason: str | None = None
    try:
        if cors.is_preflight(request):
            response: web.StreamResponse = cors.preflight(
                request, request.app[SETTINGS].cors
            )
        else:
            if request.path.startswith("/v1/"):
                await _admit(request)
            response = await handler(request)
    except GatewayError as err:
        if isinstance(err, NotYoursError):
            denied_reason = "not_owner"
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
    except Exception as err:  # noqa: BLE001 - the last resort: a problem, never a trace
        log.error(  # noqa: TRY400 - a traceback could quote a secret
            "unhandled_error", method=request.method, **where_it_failed(err)
        )
        response = problems.internal(request_id)
    route = request.match_info.route.resource
    principal = request.get(PRINCIPAL)
    elapsed = time.monotonic() - started
    metrics = request.app[METRICS]
    label = (
        route.canonical if route else "unmatched"
    )  # unknown paths: one bounded label
    metrics.request(label, str(response.status), elapsed)
    log.info(
        "request",
        method=request.method,
        route=route.canonical if route else request.path,
        status=response.status,
        duration_ms=round(elapsed * 1000, 1),
        caller=principal.name if principal else None,
        sources=request[SOURCES_LOG] or None,
    )
    denied_reason = denied_reason or DENIED.get(response.status)
    if request.path.startswith("/v1/") and (
        denied_reason is not None or request.method in WRITES
    ):
        await _audit(request, response, denied_reason, request_id)
    structlog.contextvars.unbind_contextvars("request_id")
    return response


def _idempotency_key(request: web.Request) -> str | None:
    """The request's `Idempotency-Key` when well-formed; a marker for anything else."""
    raw = request.headers.get("Idempotency-Key")
    if raw is None:
        return None
    return raw if IDEMPOTENCY_KEY_RE.fullmatch(raw) else "(malformed)"


async def _audit(
    request: web.Request,
    response: web.StreamResponse,
    denied_reason: str | None,
    request_id: str,
) -> None:
    """One audit event for a write or a denied access."""
    principal = request.get(PRINCIPAL)
    route = request.match_info.route.resource
    info = request.match_info
    if denied_reason is not None:
        outcome = "denied"
    elif response.status < 400:  # noqa: PLR2004
        outcome = "ok"
    else:
        outcome = "failed"
    entry = audit.event(
        who=principal.name if principal else None,
        kind=principal.kind if principal else None,
        method=request.method,
        route=route.canonical if route else "unmatched",
        resource=info.get("invoice_id") or info.get("account_id"),
        status=response.status,
        outcome=outcome,
        reason=denied_reason,
        idempotency_key=_idempotency_key(request),
        request_id=request_id,
    )
    audit.emit(entry)
    await request.app[AUDIT].record(entry)

"""The request pipeline: id, CORS, auth, limits, deadline, problems, metrics, log, audit.

Errors become HTTP here and nowhere else; handlers hold no try/except. Every request
ends in exactly one canonical structlog line with its id, route, status, duration,
caller and per-source outcomes; every write and every denied access also becomes one
audit event (see `gateway.telemetry.audit`).

One middleware does all of it, in this order: the request id, a CORS preflight's answer,
authentication and the caller's budget (`/v1/`), the body within its timeout
(`gateway.api.serverlimits`), the deadline and its backstop (`gateway.api.deadlines`),
the handler; then the headers every answer carries, metrics, the access line and audit.
One coroutine frame per request instead of one per concern, and none at all for what is
known at once: an API key's caller, and a handler's answer given without waiting
(`answers_at_once`: a cached page), which needs no backstop either. Such an answer is
also given before any routing, by the fast lane of the server `invoice-gateway serve`
runs (`gateway.api.fastlane`, through `answer_at_once` here): the same steps for the one
case it takes, the rest left to this pipeline untouched.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable, Mapping
from typing import TypeAlias, TypeVar

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler

from gateway.api import cors, problems
from gateway.api.deadlines import (
    BACKSTOP_GRACE_S,
    BACKSTOPS,
    DEADLINE,
    DEADLINE_HEADER,
    overran,
    request_deadline,
)
from gateway.api.edge import SERVER_NAME
from gateway.api.serverlimits import read_body_in_time
from gateway.api.state import (
    AUDIT,
    AUTHENTICATOR,
    CALL,
    CALLER_LIMITER,
    METRICS,
    SETTINGS,
    STREAMING,
    Call,
)
from gateway.config.settings import CorsSettings
from gateway.errors import GatewayError, NotYoursError, RateLimitedError
from gateway.invoices.principal import Principal
from gateway.telemetry import audit, logs
from gateway.telemetry.logs import where_it_failed
from gateway.telemetry.metrics import Metrics
from gateway.upstream.deadline import reset_deadline, set_deadline

log = structlog.get_logger("access")  # the access line itself: `telemetry.logs.access`
REQUEST_ID = "X-Request-ID"
REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")
WRITES = frozenset({hdrs.METH_POST, hdrs.METH_PUT, hdrs.METH_PATCH, hdrs.METH_DELETE})
IDEMPOTENCY_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
DENIED = {401: "unauthenticated", 403: "forbidden", 429: "rate_limited"}
HandlerT = TypeVar("HandlerT", bound=Handler)


def _request_id(headers: Mapping[str, str]) -> str:
    """The caller's `X-Request-ID` when well-formed; else a new one.

    A new id is 32 hex digits, unique in practice, from a seeded PRNG (no
    `getrandom(2)` each): an id names a request in logs and answers and grants nothing,
    so it needs no cryptographic randomness (`random` is reseeded from the OS at start
    and at fork).
    """
    incoming = headers.get(REQUEST_ID, "")
    if REQUEST_ID_RE.fullmatch(incoming):
        return incoming
    return "%032x" % random.getrandbits(128)  # noqa: UP031 - fastest render


def _route(request: web.Request) -> str | None:
    """The matched route's canonical path; None when no route matched."""
    resource = request.match_info.route.resource
    return None if resource is None else resource.canonical


def _stamp(
    request: web.Request,
    response: web.StreamResponse,
    request_id: str,
    cors_settings: CorsSettings | None,
    rate: dict[str, str] | None,
) -> None:
    """Put on an answer what every answer carries, streamed ones and problems alike.

    The server's name, the request id, the CORS grant and the caller's `RateLimit`
    headers. The pipeline stamps whatever the handler returns; a handler that sends
    its head itself (a stream) does it through `start_stream`.
    """
    headers = response.headers
    headers[hdrs.SERVER] = SERVER_NAME
    headers[REQUEST_ID] = request_id
    if cors_settings is not None:
        cors.stamp(request, response, cors_settings)
    if rate:
        headers.update(rate)


async def start_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Send a streamed answer's head: stamped, and known as the request's stream.

    From here on an error can only cut the body (`_answer_error`).
    """
    call = request[CALL]
    request[STREAMING] = response
    _stamp(
        request,
        response,
        call.request_id,
        request.app[SETTINGS].cors,
        call.rate_headers,
    )
    await response.prepare(request)


AtOnce: TypeAlias = Callable[
    [web.Application, web.Request, Call], web.StreamResponse | None
]
AT_ONCE: dict[object, AtOnce] = {}


def answers_at_once(quick: AtOnce) -> Callable[[HandlerT], HandlerT]:
    """Declare a handler's synchronous answer, for requests it can answer at once.

    `quick(app, request, call)` is tried first (after authentication, the body and the
    deadline's validation); None sends the request to the handler. An answer given
    without waiting cannot overrun a deadline, so it needs no backstop armed and
    disarmed (nor a coroutine): a cached page is answered this way. It must leave no
    trace when it answers None or raises, never be a denial (401, 403, 429), and use
    nothing routing gives (`request.match_info`, `request.app`): the fast lane
    (`answer_at_once`) calls it before any routing.
    """

    def declare(handler: HandlerT) -> HandlerT:
        AT_ONCE[handler] = quick
        return handler

    return declare


async def _admit(request: web.Request, found: Principal | str) -> None:
    """Finish authenticating a /v1 caller, and charge its budget (429 when spent).

    `found`: an API key's caller, or the credential to verify (an end user's JWT).
    """
    principal = (
        found
        if isinstance(found, Principal)
        else await request.app[AUTHENTICATOR].verify(found)
    )
    call = request[CALL]
    call.principal = principal
    if principal.limit is not None:
        verdict = await request.app[CALLER_LIMITER].charge(
            principal.name, principal.limit
        )
        call.rate_headers = verdict.headers()
        if not verdict.allowed:
            raise RateLimitedError(verdict.retry_after_s)


@web.middleware
async def pipeline(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Wrap every request: id in and out, auth, limits, deadline, problems, access log."""
    request_id = _request_id(request.headers)
    bound = logs.REQUEST_ID.set(request_id)
    started = time.monotonic()
    request[CALL] = call = Call(request_id)
    app = request.app
    settings = app[SETTINGS]
    api = request.path.startswith("/v1/")
    denied_reason: str | None = None
    try:  # (each step's own coroutine would cost a frame per request)
        if cors.is_preflight(request):
            response: web.StreamResponse = cors.preflight(request, settings.cors)
        else:
            if api:  # an API key without a budget is known at once: no coroutine
                found = app[AUTHENTICATOR].api_key(
                    request.headers.get(hdrs.AUTHORIZATION, "")
                )
                if type(found) is Principal and found.limit is None:
                    call.principal = found
                else:
                    await _admit(request, found)
            refused = (
                await read_body_in_time(request, settings.body_timeout_s)
                if request.body_exists
                else None
            )
            if refused is not None:
                response = refused
            else:
                seconds = (  # a bad X-Deadline-Ms: 400
                    request_deadline(request)
                    if DEADLINE_HEADER in request.headers
                    else settings.request_timeout_s
                )
                quick = AT_ONCE.get(handler)
                answer = quick(app, request, call) if quick is not None else None
                response = (
                    answer
                    if answer is not None
                    else await _under_deadline(request, handler, seconds)
                )
    except Exception as err:  # noqa: BLE001 - every error becomes an answer
        response, denied_reason = _answer_error(request, err, request_id)
    if not response.prepared:
        _stamp(request, response, request_id, settings.cors, call.rate_headers)
    by_status = _account(
        app[METRICS],
        request.method,
        _route(request),
        request.path,
        response,
        started,
        call,
    )
    denied_reason = denied_reason or by_status
    if api and (denied_reason is not None or request.method in WRITES):
        await _audit(request, response, denied_reason, request_id)
    logs.REQUEST_ID.reset(bound)
    return response


async def _under_deadline(
    request: web.Request, handler: Handler, seconds: float
) -> web.StreamResponse:
    """The handler's answer within `seconds`; a 504 problem when its backstop cuts it."""
    backstop = request.app[BACKSTOPS].arm(seconds + BACKSTOP_GRACE_S)
    request[DEADLINE] = backstop
    task = backstop.task
    cancelling = task.cancelling()
    token = set_deadline(backstop.when - BACKSTOP_GRACE_S)
    try:
        return await handler(request)
    except asyncio.CancelledError:
        if not backstop.expired or task.uncancel() > cancelling:
            raise  # cancelled by someone else: not ours to answer
        return overran(request, seconds)
    finally:
        backstop.disarm()
        reset_deadline(token)


def _account(
    metrics: Metrics,
    method: str,
    route: str | None,
    path: str,
    response: web.StreamResponse,
    started: float,
    call: Call,
) -> str | None:
    """Metrics and the access line for an answered request; its denial, by its status.

    `route`: the matched route's canonical path (None: no route matched).
    """
    elapsed = time.monotonic() - started
    status = response.status
    # unknown paths: one bounded label
    metrics.request(route or "unmatched", status, elapsed)
    principal = call.principal
    logs.access(
        method,
        route or path,
        status,
        round(elapsed * 1000, 1),
        None if principal is None else principal.name,
        call.sources or None,
    )
    return DENIED.get(status)


def answer_at_once(
    app: web.Application, request: web.Request, quick: AtOnce, route: str
) -> web.StreamResponse | None:
    """The pipeline's answer to a GET `quick` answers at once, before any routing.

    The fast lane (`gateway.api.fastlane`) asks this of a GET for `route`, a plain
    path whose handler declared `quick`. It answers only the simplest case, and exactly
    as the full way would: no body and no `X-Deadline-Ms` to check, no `Expect` for
    routing to meet or refuse (417), a caller known at once (an API key or an end
    user's token verified lately) with no budget to charge, and an answer from
    `quick`. Anything else (no or a bad credential, a budget, no answer, an error) is
    None, with no trace left: the request then goes the full way, where the pipeline
    answers it from the start.
    """
    headers = request.headers
    # `Expect` is routing's, before any middleware: 100 Continue, or 417 for any other.
    if request.body_exists or DEADLINE_HEADER in headers or hdrs.EXPECT in headers:
        return None
    started = time.monotonic()
    try:
        found = app[AUTHENTICATOR].api_key(headers.get(hdrs.AUTHORIZATION, ""))
    except GatewayError:
        return None
    if type(found) is not Principal or found.limit is not None:
        return None
    request_id = _request_id(headers)
    call = Call(request_id)
    call.principal = found
    bound = logs.REQUEST_ID.set(request_id)
    try:
        try:
            response = quick(app, request, call)
        except Exception:  # noqa: BLE001 - the full way answers it, as any error
            return None
        if response is None or response.status in DENIED:
            return None
        _stamp(request, response, request_id, app[SETTINGS].cors, None)
        _account(app[METRICS], request.method, route, route, response, started, call)
    finally:
        logs.REQUEST_ID.reset(bound)
    return response


def answer_refused(
    app: web.Application, request: web.Request, err: web.HTTPException
) -> web.StreamResponse:
    """The pipeline's answer to an error aiohttp raised before any middleware ran.

    Routing itself refuses an `Expect` it cannot meet (417) before the middleware
    chain starts; aiohttp would send its own plain-text answer naming its version in
    `Server`, with no request id, metric or access line. The fast lane, which wraps
    the full way, hands such an error here: a problem, stamped, counted and logged.
    """
    started = time.monotonic()
    request_id = _request_id(request.headers)
    response = problems.from_http_exception(err)
    _stamp(request, response, request_id, app[SETTINGS].cors, None)
    call = Call(request_id)
    route = _route(request)
    _account(app[METRICS], request.method, route, request.path, response, started, call)
    return response


def _answer_error(
    request: web.Request, err: Exception, request_id: str
) -> tuple[web.StreamResponse, str | None]:
    """The answer to a request that raised `err`; (it, the denial reason if a denial)."""
    if isinstance(err, GatewayError):
        streaming = request.get(STREAMING)
        denied = "not_owner" if isinstance(err, NotYoursError) else None
        if streaming is not None and streaming.prepared:
            # Headers are gone: the only honest signal left is a cut connection.
            log.warning("stream_aborted", path=request.path, reason=str(err))
            if request.transport is not None:
                request.transport.close()
            return streaming, denied
        return problems.from_error(err), denied
    if isinstance(err, web.HTTPException):
        return problems.from_http_exception(err), None
    # The last resort: a problem, never a trace (a traceback could quote a secret).
    log.error("unhandled_error", method=request.method, **where_it_failed(err))
    return problems.internal(request_id), None


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
    principal = request[CALL].principal
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
        route=_route(request) or "unmatched",
        resource=info.get("invoice_id") or info.get("account_id"),
        status=response.status,
        outcome=outcome,
        reason=denied_reason,
        idempotency_key=_idempotency_key(request),
        request_id=request_id,
    )
    audit.emit(entry)
    await request.app[AUDIT].record(entry)

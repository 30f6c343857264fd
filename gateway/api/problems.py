"""RFC 9457 problem+json: the one shape of every error the API returns."""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from gateway import jsoncodec
from gateway.errors import (
    AuditUnavailableError,
    AuthenticationError,
    FieldError,
    GatewayError,
    IdempotencyUnavailableError,
    InvalidRequestError,
    RateLimitedError,
    RequestError,
    SourcesFailedError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamValidationError,
    WriteUncertainError,
)

PROBLEM_TYPE = "application/problem+json"
TYPE_BASE = "urn:invoice-gateway:problem:"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> web.Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = [_field_error(e) for e in errors]
    body.update(extensions)
    return web.Response(
        status=status,
        body=jsoncodec.dumps(body),
        content_type=PROBLEM_TYPE,
        headers=headers,
    )


def _field_error(error: FieldError) -> dict[str, Any]:
    out: dict[str, Any] = {"field": error.field, "message": error.message}
    if error.upstream_field is not None or error.upstream_message is not None:
        out["upstream"] = {
            "field": error.upstream_field,
            "message": error.upstream_message,
        }
    return out


def from_error(err: GatewayError) -> web.Response:  # noqa: PLR0911, C901 - one branch per family
    """Translate any gateway error into its problem response."""
    if isinstance(err, InvalidRequestError):
        return problem(400, "invalid-request", err.title, err.detail, errors=err.errors)
    if isinstance(err, RequestError):
        headers = None
        if isinstance(err, AuthenticationError):
            headers = {"WWW-Authenticate": err.challenge}
        elif isinstance(err, RateLimitedError):
            headers = {"Retry-After": str(max(1, math.ceil(err.retry_after_s)))}
        slug = err.title.lower().replace(" ", "-")
        return problem(err.status, slug, err.title, err.detail, headers=headers)
    if isinstance(err, SourcesFailedError):
        title = "Upstream timeout" if err.status == 504 else "Bad gateway"  # noqa: PLR2004
        return problem(
            err.status, "sources-failed", title, str(err), sources=err.sources
        )
    if isinstance(err, AuditUnavailableError):
        return problem(
            503,
            "audit-unavailable",
            "Service Unavailable",
            str(err),
            headers={"Retry-After": "5"},
        )
    if isinstance(err, IdempotencyUnavailableError):
        return problem(
            503,
            "idempotency-unavailable",
            "Service Unavailable",
            str(err),
            headers={"Retry-After": "5"},
        )
    if isinstance(err, UpstreamValidationError):
        return problem(
            422,
            "upstream-validation",
            "Unprocessable Content",
            f"{err.connection} refused the fields",
            errors=err.errors,
            connection=err.connection,
        )
    if isinstance(err, WriteUncertainError):
        return problem(
            504,
            "write-uncertain",
            "Upstream timeout",
            err.reason,
            connection=err.connection,
        )
    if isinstance(err, UpstreamNotFoundError):
        return problem(
            404, "not-found", "Not Found", str(err), connection=err.connection
        )
    if isinstance(err, UpstreamError):
        status = 504 if err.kind == "timeout" else 502
        title = "Upstream timeout" if status == 504 else "Bad gateway"  # noqa: PLR2004
        return problem(
            status, "upstream-" + err.kind, title, str(err), connection=err.connection
        )
    return problem(
        500, "internal", "Internal Server Error", "the gateway is misconfigured"
    )


def internal(request_id: str) -> web.Response:
    """The last resort: a bug, answered without any detail but the id to quote."""
    return problem(
        500,
        "internal",
        "Internal Server Error",
        f"request {request_id} failed; quote this id when reporting it",
        request_id=request_id,
    )


def from_http_exception(exc: web.HTTPException) -> web.Response:
    """Aiohttp's own errors (unknown route, wrong method, body too large) as problems."""
    slug = exc.reason.lower().replace(" ", "-")
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    detail = exc.reason
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        # aiohttp's own text: "Maximum request body size N exceeded, actual body size M".
        detail = exc.text or detail
    return problem(exc.status, slug, exc.reason, detail, headers=headers)

"""RFC 9457 problem+json: the one shape of every error the API returns."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway import jsoncodec
from gateway.errors import FieldError, GatewayError

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


def from_error(err: GatewayError) -> web.Response:
    """Any gateway error as its problem: the error says its status, type, title and parts."""
    return problem(
        err.status,
        err.problem_type,
        err.title,
        err.problem_detail(),
        errors=err.problem_fields(),
        headers=err.problem_headers(),
        **err.problem_extensions(),
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

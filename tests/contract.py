"""Every response the test suite provokes, checked against the OpenAPI document.

`ResponseLog.record` sees every answer the test gateways give; at the end
of each test `violations()` lists any 500 and any response whose status, content type or
body the document does not describe. A test that provoked one fails.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator, FormatChecker

from gateway.api.openapi import DOCUMENT

PROBLEM = "application/problem+json"


def shape(path: str) -> str:
    """`/v1/invoices/{invoice_id}` and `/v1/invoices/{id}` compare equal."""
    return re.sub(r"\{[^}]+\}", "{}", path)


OPERATIONS = {
    (shape(path), method.upper()): op
    for path, ops in DOCUMENT["paths"].items()
    for method, op in ops.items()
}


@cache
def validator(pointer: str) -> Draft202012Validator:
    """A validator for `#/components/schemas/<name>` with the document's components."""
    schema = {"$ref": pointer, "components": DOCUMENT["components"]}
    return Draft202012Validator(schema, format_checker=FormatChecker())


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = DOCUMENT["components"][kind][name]
    return node


def check(  # noqa: PLR0911 - one verdict per way to break the contract
    method: str, route: str | None, status: int, ctype: str, body: bytes | None
) -> str | None:
    """Why this response breaks the contract, or None."""
    where = f"{method} {route or '(unrouted)'} -> {status}"
    if status == 500:
        return f"{where}: a 500 reached the client"
    op = OPERATIONS.get((shape(route), method)) if route else None
    if op is None:  # the document itself, the docs page, an unknown path
        if status < 400:
            return None
        if ctype != PROBLEM or body is None:
            return f"{where}: an error that is not a problem ({ctype})"
        return _validate(where, "#/components/schemas/Problem", body)
    response = op["responses"].get(str(status))
    if response is None:
        return f"{where}: status not documented"
    content = _resolve(response).get("content")
    if status == 304 or content is None:
        return None
    media = content.get(ctype)
    if media is None:
        return f"{where}: content type {ctype} not documented ({', '.join(content)})"
    if body is None or not ctype.endswith("json"):
        return None
    return _validate(where, media["schema"]["$ref"], body)


def _validate(where: str, pointer: str, body: bytes) -> str | None:
    errors = sorted(validator(pointer).iter_errors(orjson.loads(body)), key=str)
    if errors:
        first = errors[0]
        return f"{where}: {first.message} at {list(first.absolute_path)}"
    return None


class ResponseLog:
    """What a test gateway answered: (method, route, status, content type, body)."""

    def __init__(self) -> None:
        """Start empty."""
        self.seen: list[tuple[str, str | None, int, str, bytes | None]] = []

    async def record(
        self, request: web.BaseRequest, response: web.StreamResponse
    ) -> None:
        """Keep what the contract check needs of an answer (`GatewayTestServer`'s observer).

        The route is the matched one's template; an answer from the fast lane (given
        before routing, only ever for a plain path) is known by its path.
        """
        routed = request._match_info
        if routed is None:
            route: str | None = request.rel_url.path_safe
        else:
            resource = routed.route.resource
            route = resource.canonical if resource is not None else None
        body = response.body if isinstance(response, web.Response) else None
        self.seen.append(
            (
                request.method,
                route,
                response.status,
                response.content_type,
                body if isinstance(body, bytes) else None,
            )
        )

    def violations(self) -> list[str]:
        """Every response the document does not describe, and every 500."""
        return [v for v in (check(*seen) for seen in self.seen) if v is not None]

"""Sale-account routes: list, read, create (idempotent), change, delete. No try/except."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web

from gateway import jsoncodec
from gateway.api.fields import canonical_id, printable_ascii
from gateway.api.handlers import json_response, no_cache, require_scope
from gateway.api.sale_account_body import parse_sale_account
from gateway.api.state import SALE_ACCOUNTS
from gateway.errors import FieldError, InvalidRequestError

READ = ("sale_accounts:read", "sale_accounts:write")
WRITE = ("sale_accounts:write",)
IDEMPOTENCY_KEY = "Idempotency-Key"
MAX_KEY_LEN = 255


async def _body(request: web.Request) -> Any:
    if request.content_type != "application/json":
        raise InvalidRequestError([FieldError("body", "send application/json")])
    try:
        return jsoncodec.loads(await request.read())
    except ValueError as err:
        raise InvalidRequestError([FieldError("body", "is not valid JSON")]) from err


def _no_params(request: web.Request, allowed: set[str]) -> None:
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise InvalidRequestError(
            [FieldError(name, "unknown parameter") for name in unknown]
        )


def _account_id(request: web.Request) -> str:
    return canonical_id(request.match_info["account_id"])


async def list_accounts(request: web.Request) -> web.Response:
    """GET /v1/sale-accounts?connection=ID."""
    principal = require_scope(request, READ)
    _no_params(request, {"connection"})
    connection = request.query.get("connection", "")
    service = request.app[SALE_ACCOUNTS]
    if connection not in service.capable(principal):
        allowed = ", ".join(service.capable(principal)) or "none for this key"
        raise InvalidRequestError(
            [FieldError("connection", f"required; one of: {allowed}")]
        )
    accounts = await service.list(principal, connection, force=no_cache(request))
    return json_response(request, {"data": [a.to_dict() for a in accounts]})


async def get_account(request: web.Request) -> web.Response:
    """GET /v1/sale-accounts/{id}."""
    principal = require_scope(request, READ)
    _no_params(request, set())
    account = await request.app[SALE_ACCOUNTS].get(
        principal, _account_id(request), force=no_cache(request)
    )
    return json_response(request, account.to_dict())


async def create_account(request: web.Request) -> web.Response:
    """POST /v1/sale-accounts with an optional (recommended) `Idempotency-Key`."""
    principal = require_scope(request, WRITE)
    _no_params(request, set())
    key = request.headers.get(IDEMPOTENCY_KEY)
    if key is not None and not printable_ascii(key, max_len=MAX_KEY_LEN):
        raise InvalidRequestError(
            [FieldError(IDEMPOTENCY_KEY, "must be 1-255 printable ASCII characters")]
        )
    connection, draft = parse_sale_account(await _body(request), create=True)
    assert connection is not None  # noqa: S101 - parse_sale_account requires it on create
    service = request.app[SALE_ACCOUNTS]
    if connection not in service.capable(principal):
        raise InvalidRequestError(
            [FieldError("connection", "not a sale-account connection this key may use")]
        )
    result = await service.create(principal, connection, draft, key)
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if result.status == HTTPStatus.CREATED:
        account_id = jsoncodec.loads(result.body)["id"]
        headers[hdrs.LOCATION] = f"/v1/sale-accounts/{quote(account_id, safe=':')}"
    return web.Response(
        status=result.status,
        body=result.body,
        content_type="application/json",
        headers=headers,
    )


async def update_account(request: web.Request) -> web.Response:
    """PUT /v1/sale-accounts/{id}: change the given fields."""
    principal = require_scope(request, WRITE)
    _no_params(request, set())
    _, draft = parse_sale_account(await _body(request), create=False)
    account = await request.app[SALE_ACCOUNTS].update(
        principal, _account_id(request), draft
    )
    return json_response(request, account.to_dict())


async def delete_account(request: web.Request) -> web.Response:
    """DELETE /v1/sale-accounts/{id}: 202, the upstream deletes asynchronously."""
    principal = require_scope(request, WRITE)
    _no_params(request, set())
    await request.app[SALE_ACCOUNTS].delete(principal, _account_id(request))
    return web.json_response(
        {"status": "deletion scheduled", "id": _account_id(request)},
        status=202,
        headers={hdrs.CACHE_CONTROL: "no-store"},
    )


def setup_sale_account_routes(app: web.Application) -> None:
    """Register the sale-account routes."""
    app.router.add_get("/v1/sale-accounts", list_accounts)
    app.router.add_post("/v1/sale-accounts", create_account)
    app.router.add_get("/v1/sale-accounts/{account_id}", get_account)
    app.router.add_put("/v1/sale-accounts/{account_id}", update_account)
    app.router.add_delete("/v1/sale-accounts/{account_id}", delete_account)

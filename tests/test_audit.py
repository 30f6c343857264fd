"""The audit trail: writes and denied accesses as events, never a secret; read back by admins."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from structlog.testing import capture_logs

from gateway.config.settings import ApiKey, CallerLimit, Secret
from tests.jwt_support import JwksServer, issuer, mint, rsa_key
from tests.support import (
    API_KEY,
    AUTH,
    fintera_connection,
    hubsoft_connection,
    make_settings,
)

A = "12345678909"
B = "94580730224"
KEY = rsa_key("audit")
ADMIN_KEY = "admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
SALE = {
    "connection": "fin",
    "name": "Loja 1",
    "entity_id": 3798,
    "acquirer": "stone",
    "payment_methods": ["pix"],
}


async def build(gateway_factory, aiohttp_server, *connections, **kw):
    """A gateway with an admin key, the test issuer, and the given connections."""
    jwks = JwksServer([KEY])
    served = await aiohttp_server(jwks.app())
    settings = make_settings(
        *connections, jwt_issuers=(issuer(str(served.make_url("/jwks.json"))),), **kw
    )
    admin = ApiKey(
        "auditor",
        hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
        frozenset({"audit:read"}),
        None,
    )
    settings = dataclasses.replace(settings, api_keys=(*settings.api_keys, admin))
    return await gateway_factory(settings)


def audit_events(logs):
    """The captured audit events."""
    return [e for e in logs if e["event"] == "audit"]


async def test_a_write_is_audited_with_who_what_and_key(
    gateway_factory, aiohttp_server, fintera_url
):
    """POST: one event naming the key, route, new id, outcome and idempotency key."""
    client = await build(
        gateway_factory, aiohttp_server, fintera_connection(fintera_url)
    )
    with capture_logs() as logs:
        resp = await client.post(
            "/v1/sale-accounts",
            json=SALE,
            headers={**AUTH, "Idempotency-Key": "order-77", "X-Request-ID": "rq-1"},
        )
    assert resp.status == 201
    (event,) = audit_events(logs)
    assert event["who"] == "tests"
    assert event["kind"] == "api_key"
    assert event["method"] == "POST"
    assert event["route"] == "/v1/sale-accounts"
    assert event["outcome"] == "ok"
    assert event["status"] == 201
    assert event["idempotency_key"] == "order-77"
    assert event["request_id"] == "rq-1"
    assert API_KEY not in repr(logs)


async def test_denied_accesses_are_audited_without_the_credential(
    gateway_factory, aiohttp_server, hubsoft_url, fintera_url
):
    """401, 403 and another customer's invoice each leave one denied event."""
    client = await build(
        gateway_factory,
        aiohttp_server,
        hubsoft_connection(hubsoft_url),
        fintera_connection(fintera_url),
    )
    maria = (
        await (
            await client.get(
                f"/v1/invoices?customer_document={A}&provider=fintera", headers=AUTH
            )
        ).json()
    )["data"][0]["id"]
    forged = mint(rsa_key("rogue"), A)
    b_token = mint(KEY, B, sub="bia")
    with capture_logs() as logs:
        assert (
            await client.get(
                "/v1/invoices", headers={"Authorization": f"Bearer {forged}"}
            )
        ).status == 401
        b = {"Authorization": f"Bearer {b_token}"}
        assert (await client.get("/v1/connections", headers=b)).status == 403
        assert (await client.get(f"/v1/invoices/{maria}", headers=b)).status == 404
        # An id that simply does not exist is no denied access.
        assert (
            await client.get("/v1/invoices/fintera:fin:3798-1", headers=b)
        ).status == 404
    events = audit_events(logs)
    assert [(e["status"], e["reason"], e["who"]) for e in events] == [
        (401, "unauthenticated", None),
        (403, "forbidden", "portal:bia"),
        (404, "not_owner", "portal:bia"),
    ]
    assert events[2]["resource"] == maria
    assert all(e["outcome"] == "denied" for e in events)
    assert forged not in repr(logs)
    assert b_token not in repr(logs)


async def test_rate_limited_requests_are_audited(gateway_factory, hubsoft_url):
    """A 429 is a denied access too."""
    settings = make_settings(hubsoft_connection(hubsoft_url))
    keys = tuple(
        dataclasses.replace(k, rate_limit=CallerLimit(1, 60.0))
        for k in settings.api_keys
    )
    client = await gateway_factory(dataclasses.replace(settings, api_keys=keys))
    with capture_logs() as logs:
        for _ in range(2):
            await client.get(f"/v1/invoices?customer_document={A}", headers=AUTH)
    assert [e["reason"] for e in audit_events(logs)] == ["rate_limited"]


async def test_admin_pages_the_trail_from_redis(
    gateway_factory, aiohttp_server, fintera_url, redis_server
):
    """GET /v1/audit: newest first, paged, audit:read keys only; 503 while Redis is away."""
    client = await build(
        gateway_factory,
        aiohttp_server,
        fintera_connection(fintera_url),
        redis_url=Secret(redis_server.url),
    )
    for n in range(5):
        resp = await client.post(
            "/v1/sale-accounts",
            json={**SALE, "name": f"Loja {n}"},
            headers={**AUTH, "Idempotency-Key": f"k-{n}"},
        )
        assert resp.status == 201
    seen, cursor = [], None
    while True:
        url = "/v1/audit?limit=2" + (f"&before={cursor}" if cursor else "")
        resp = await client.get(url, headers=ADMIN)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert len(body["data"]) <= 2
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [e["idempotency_key"] for e in seen] == [f"k-{n}" for n in range(4, -1, -1)]
    assert (await client.get("/v1/audit", headers=AUTH)).status == 403
    user = {"Authorization": f"Bearer {mint(KEY, A)}"}
    assert (await client.get("/v1/audit", headers=user)).status == 403
    bad = await client.get("/v1/audit?limit=0&before=x", headers=ADMIN)
    assert bad.status == 400
    assert {e["field"] for e in (await bad.json())["errors"]} == {"limit", "before"}
    redis_server.stop()
    gone = await client.get("/v1/audit", headers=ADMIN)
    assert gone.status == 503
    assert gone.headers["Retry-After"] == "5"


async def test_audit_route_needs_redis(gateway_factory, aiohttp_server, hubsoft_url):
    """Without Redis the trail is the `audit` log stream only: the route says 404."""
    client = await build(
        gateway_factory, aiohttp_server, hubsoft_connection(hubsoft_url)
    )
    assert (await client.get("/v1/audit", headers=ADMIN)).status == 404


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_failed_writes_are_audited_as_failed(
    gateway_factory, fintera_url, method
):
    """A write the upstream refuses (unknown account) is an event with outcome failed."""
    client = await gateway_factory(make_settings(fintera_connection(fintera_url)))
    with capture_logs() as logs:
        resp = await client.request(
            method,
            "/v1/sale-accounts/fintera:fin:999999",
            headers=AUTH,
            json={"name": "x"} if method == "PUT" else None,
        )
    assert resp.status == 404
    (event,) = audit_events(logs)
    assert event["outcome"] == "failed"
    assert event["resource"] == "fintera:fin:999999"

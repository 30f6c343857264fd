"""CORS: real preflights answered without credentials, exact origins only."""

from __future__ import annotations

import pytest

from gateway.config.settings import CorsSettings
from tests.support import AUTH, hubsoft_connection, make_settings

PORTAL = "https://portal.example.test"


@pytest.fixture
async def client(gateway_factory, hubsoft_url):
    """A gateway allowing the portal's origin, with credentials."""
    cors = CorsSettings(frozenset({PORTAL}), max_age_s=900, allow_credentials=True)
    return await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url), cors=cors)
    )


def preflight_headers(origin=PORTAL, method="GET", headers="authorization"):
    """What a browser sends before a credentialed cross-origin request."""
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": headers,
    }


@pytest.mark.parametrize(
    "path", ["/v1/invoices", "/v1/invoices/summary", "/v1/sale-accounts"]
)
async def test_preflight_is_answered_without_credentials(client, path):
    """OPTIONS from an allowed origin: 204 with the grant, no auth needed."""
    resp = await client.options(path, headers=preflight_headers())
    assert resp.status == 204
    h = resp.headers
    assert h["Access-Control-Allow-Origin"] == PORTAL
    assert h["Access-Control-Allow-Credentials"] == "true"
    assert h["Access-Control-Max-Age"] == "900"
    assert "GET" in h["Access-Control-Allow-Methods"]
    assert "Authorization" in h["Access-Control-Allow-Headers"]
    assert "Idempotency-Key" in h["Access-Control-Allow-Headers"]
    assert "Origin" in h["Vary"]


async def test_preflight_for_a_write_with_an_idempotency_key(client):
    """A POST preflight asking for Idempotency-Key and Content-Type is granted."""
    resp = await client.options(
        "/v1/sale-accounts",
        headers=preflight_headers(
            method="POST", headers="authorization, content-type, idempotency-key"
        ),
    )
    assert resp.status == 204
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]


async def test_unknown_origin_gets_no_grant(client):
    """Another origin: the preflight carries no Allow-Origin, so the browser blocks."""
    resp = await client.options(
        "/v1/invoices", headers=preflight_headers(origin="https://evil.example.test")
    )
    assert "Access-Control-Allow-Origin" not in resp.headers
    actual = await client.get(
        "/v1/invoices?customer_document=12345678909",
        headers={**AUTH, "Origin": "https://evil.example.test"},
    )
    assert "Access-Control-Allow-Origin" not in actual.headers


async def test_actual_response_exposes_what_a_page_needs(client):
    """The real GET echoes the exact origin and exposes ETag, RateLimit, Location..."""
    resp = await client.get(
        "/v1/invoices?customer_document=12345678909",
        headers={**AUTH, "Origin": PORTAL},
    )
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == PORTAL
    exposed = {
        h.strip() for h in resp.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert exposed >= {
        "ETag",
        "RateLimit",
        "RateLimit-Policy",
        "Idempotent-Replayed",
        "Location",
        "Retry-After",
    }


async def test_errors_carry_the_grant_too(client):
    """A 401 to the page is readable by it (else the page sees a network error)."""
    resp = await client.get("/v1/invoices", headers={"Origin": PORTAL})
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == PORTAL


async def test_never_a_wildcard(client):
    """No response ever says `*`."""
    for origin in (PORTAL, "null", "https://portal.example.test.evil.test"):
        resp = await client.options("/v1/invoices", headers=preflight_headers(origin))
        assert resp.headers.get("Access-Control-Allow-Origin") in (None, PORTAL)


async def test_without_cors_settings_a_preflight_grants_nothing(gateway):
    """No [cors] table: preflights are answered (no 401) but grant nothing."""
    resp = await gateway.options("/v1/invoices", headers=preflight_headers())
    assert resp.status == 204
    assert "Access-Control-Allow-Origin" not in resp.headers

"""Upstream data cannot hold us: paging ends, pauses are capped, every route has a deadline."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from gateway.api.state import SERVICE
from gateway.state.ratelimit import LocalRateLimiter
from tests.support import (
    API_KEY,
    TODAY,
    FakeClock,
    fintera_connection,
    hubsoft_connection,
    make_settings,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC = "12345678909"
FIN_QUERY = f"/v1/invoices?customer_document={DOC}&connection=fin"
SALE_ACCOUNT = {
    "connection": "fin",
    "name": "Stone loja 1",
    "entity_id": 3798,
    "acquirer": "stone",
    "payment_methods": ["credit_card"],
    "consolidate": True,
}


@pytest.fixture
def build(gateway_factory, fintera_url, hubsoft_url):
    """A gateway over Fintera and Hubsoft with per-test connection options."""

    async def make(request_timeout_s: float = 8.0, **kw):
        kw = {"cache_fresh_s": 0.0, "cache_stale_s": 0.0, **kw}
        settings = make_settings(
            fintera_connection(fintera_url, **kw),
            hubsoft_connection(hubsoft_url, **kw),
            request_timeout_s=request_timeout_s,
        )
        return await gateway_factory(settings)

    return make


async def test_next_link_back_to_page_one_stops_within_two_pages(
    build, fintera_sim, fintera_url
):
    """A next link looping to the first page ends paging; the source says incomplete."""
    client = await build()
    loop = f"{fintera_url}/entities/3798/receivable_accounts.json?page=1&per_page=100"
    fintera_sim.board.set("next_link", loop, path="/entities/3798/")
    body = await (await client.get(FIN_QUERY, headers=AUTH)).json()
    source = body["sources"][0]
    assert source["status"] == "ok"
    assert source["complete"] is False
    assert "already read" in source["note"]
    assert len(fintera_sim.calls("/entities/3798/receivable_accounts")) <= 1 + 2


async def test_next_link_to_itself_stops_at_once(build, fintera_sim):
    """A next link naming the page just read is never fetched a second time."""
    client = await build()
    fintera_sim.board.set("next_link", "?page=1&per_page=100", path="/entities")
    body = await (await client.get(FIN_QUERY, headers=AUTH)).json()
    assert body["sources"][0]["complete"] is False
    assert len(fintera_sim.calls("/entities/3799/receivable_accounts")) <= 2


async def test_page_cap_stops_an_endless_list(build, fintera_sim):
    """Past `max_pages` nothing more is read; the data so far is served, incomplete."""
    client = await build(max_pages=2)
    fintera_sim.max_per_page = 1
    body = await (await client.get(FIN_QUERY, headers=AUTH)).json()
    source = body["sources"][0]
    assert source["complete"] is False
    assert "page cap (2 pages)" in source["note"]
    assert len(fintera_sim.calls("/entities/3798/receivable_accounts")) == 2


async def test_hubsoft_last_page_index_cannot_keep_us_paging(build, hubsoft_sim):
    """A huge `ultima_pagina` is bounded by the page cap, not followed."""
    client = await build(max_pages=3)
    hubsoft_sim.board.set("rewrite", {"ultima_pagina": 10**9}, path="/fatura$")
    start, end = TODAY - timedelta(days=20), TODAY
    resp = await client.get(
        f"/v1/invoices?connection=acme-isp&due_from={start}&due_to={end}",
        headers=AUTH,
    )
    source = (await resp.json())["sources"][0]
    assert source["complete"] is False
    assert len(hubsoft_sim.calls("/financeiro/fatura")) == 3


async def test_retry_after_a_day_pauses_at_the_cap_and_answers_in_time(
    build, fintera_sim
):
    """`Retry-After: 86400` holds the connection 300 s at most; nobody waits for it."""
    client = await build(request_timeout_s=2.0, cache_stale_s=3600.0)
    first = await (await client.get(FIN_QUERY, headers=AUTH)).json()
    assert first["sources"][0]["status"] == "ok"
    fintera_sim.board.set("rate_limited", 86400)
    started = time.monotonic()
    again = await client.get(FIN_QUERY, headers={**AUTH, "Cache-Control": "no-cache"})
    stale = (await again.json())["sources"][0]
    assert stale["status"] == "stale"
    limiter = client.app[SERVICE].connections["fin"].http.limiter
    assert 250 < limiter.hold_s() <= 300
    calls = len(fintera_sim.board.requests)
    cold = await client.get(
        f"/v1/invoices?customer_document={DOC}&connection=fin&status=paid",
        headers=AUTH,
    )
    source = (await cold.json())["sources"][0]
    assert cold.status == 502
    assert source["error"]["type"] == "rate_limited"
    assert "pause" in source["error"]["detail"]
    assert len(fintera_sim.board.requests) == calls  # paused: not even tried
    assert time.monotonic() - started < 2 * 2.0  # both answered within their deadline


async def test_sale_account_read_honours_the_caller_deadline(build, fintera_sim):
    """`GET /v1/sale-accounts/{id}` against a hung upstream answers by X-Deadline-Ms."""
    client = await build(timeout_s=30.0)
    fintera_sim.board.set("hang")
    started = time.monotonic()
    resp = await client.get(
        "/v1/sale-accounts/fintera:fin:36", headers={**AUTH, "X-Deadline-Ms": "400"}
    )
    assert resp.status == 504
    assert resp.content_type == "application/problem+json"
    assert time.monotonic() - started < 2.0


async def test_sale_account_list_has_a_deadline_without_the_header(build, fintera_sim):
    """Even without X-Deadline-Ms the configured request deadline bounds the route."""
    client = await build(request_timeout_s=0.5, timeout_s=30.0)
    fintera_sim.board.set("hang")
    started = time.monotonic()
    resp = await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    assert resp.status == 504
    assert time.monotonic() - started < 2.0


async def test_document_honours_the_caller_deadline(build, hubsoft_sim):
    """`/document` stops waiting for a hung upstream at X-Deadline-Ms."""
    client = await build(timeout_s=30.0)
    listed = await client.get(
        f"/v1/invoices?customer_document={DOC}&connection=acme-isp&limit=200",
        headers=AUTH,
    )
    invoice_id = next(
        inv["id"]
        for inv in (await listed.json())["data"]
        if inv["payment"] and inv["payment"]["boleto"]
    )
    hubsoft_sim.board.set("hang", path="/pdf/")
    started = time.monotonic()
    resp = await client.get(
        f"/v1/invoices/{invoice_id}/document", headers={**AUTH, "X-Deadline-Ms": "500"}
    )
    assert resp.status == 504
    assert time.monotonic() - started < 2.0


async def test_write_held_by_a_pause_frees_its_idempotency_key(build, fintera_sim):
    """A create refused by a rate-limit pause is not sent, and its key is not left busy."""
    client = await build(request_timeout_s=2.0)
    fintera_sim.board.set("rate_limited", 86400, times=1)
    await client.get(FIN_QUERY, headers=AUTH)  # a 429: the connection is paused
    headers = {**AUTH, "Idempotency-Key": "paused-1"}
    answers = [
        await client.post("/v1/sale-accounts", json=SALE_ACCOUNT, headers=headers)
        for _ in range(2)
    ]
    assert [a.status for a in answers] == [502, 502]  # not 409 "still in progress"
    assert not [r for r in fintera_sim.board.requests if r["method"] == "POST"]


@pytest.mark.parametrize("reset", ["86400", "4102444800", "2100-01-01T00:00:00+00:00"])
def test_rate_limit_reset_far_away_is_capped(reset):
    """`X-RateLimit-Reset` a day, an epoch or a date ahead holds calls `max_pause_s` at most."""
    clock = FakeClock(1_800_000_000.0)
    limiter = LocalRateLimiter(clock=clock, max_pause_s=300.0)
    limiter.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert 0 < limiter.hold_s() <= 300.0
    limiter.pause(float("inf"))
    assert limiter.hold_s() <= 300.0

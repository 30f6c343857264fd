"""The fault matrix: every hostile upstream behaviour x every provider -> an honest answer."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support import (
    API_KEY,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC = "12345678909"
DEADLINE_S = 1.5
QUERY = f"/v1/invoices?customer_document={DOC}&limit=200"
CONNECTION = {"hubsoft": "acme-isp", "fintera": "fin", "xarios": "reseller"}

# fault -> (value, the faulted source's expected status)
MATRIX = {
    "latency": (2.0, "timeout"),
    "hang": (True, "timeout"),
    "trickle": (0.3, "timeout"),
    "status": (503, "error"),
    "unauthorized": (True, "error"),
    "rate_limited": (1, "error"),
    "malformed": (True, "error"),
    "html": (True, "error"),
    "huge": (2 * 1024 * 1024, "error"),
    "reset": (True, "error"),
}


@pytest.fixture
async def world(
    gateway_factory,
    hubsoft_url,
    fintera_url,
    xarios_url,
    hubsoft_sim,
    fintera_sim,
    xarios_sim,
):
    """Three simulators and a gateway over them with tight, test-sized time limits."""
    sims = {"hubsoft": hubsoft_sim, "fintera": fintera_sim, "xarios": xarios_sim}

    async def build(**conn_kw):
        kw = {"timeout_s": 0.4, "cache_fresh_s": 0.0, "cache_stale_s": 0.0, **conn_kw}
        settings = make_settings(
            hubsoft_connection(hubsoft_url, **kw),
            fintera_connection(fintera_url, **kw),
            xarios_connection(
                xarios_url,
                xarios_sim.issue_refresh_token(),
                options={"document_tenants": {DOC: xarios_sim.tenant_id(0)}},
                **kw,
            ),
            request_timeout_s=DEADLINE_S,
            max_upstream_body_bytes=1024 * 1024,
        )
        return await gateway_factory(settings)

    return sims, build


async def timed_get(client, path=QUERY):
    """GET with the test key; (status, body, seconds)."""
    started = time.monotonic()
    resp = await client.get(path, headers=AUTH)
    return resp.status, await resp.json(), time.monotonic() - started


@pytest.mark.parametrize("provider", ["hubsoft", "fintera", "xarios"])
@pytest.mark.parametrize("fault", sorted(MATRIX))
async def test_fault_matrix(world, provider, fault):
    """The faulted source reports it; the others still answer; all before the deadline."""
    sims, build = world
    client = await build()
    value, expected = MATRIX[fault]
    sims[provider].board.set(fault, value)
    status, body, took = await timed_get(client)
    assert status == 200, body
    outcome = {s["connection"]: s for s in body["sources"]}
    faulted = outcome.pop(CONNECTION[provider])
    assert faulted["status"] == expected, faulted
    assert CONNECTION[provider] in faulted["error"]["detail"]
    assert faulted["error"]["type"] in {
        "timeout",
        "unavailable",
        "protocol",
        "auth",
        "rate_limited",
    }
    assert {s["status"] for s in outcome.values()} == {"ok"}
    assert body["complete"] is False
    assert body["data"]
    assert took < DEADLINE_S + 0.5


@pytest.mark.parametrize(
    ("fault", "value", "http"), [("status", 503, 502), ("hang", True, 504)]
)
async def test_every_source_failing_is_a_problem_not_a_500(world, fault, value, http):
    """Nobody answered: 502 (or 504 when all timed out) problem+json listing the sources."""
    sims, build = world
    client = await build()
    for sim in sims.values():
        sim.board.set(fault, value)
    resp = await client.get(QUERY, headers=AUTH)
    body = await resp.json()
    assert resp.status == http
    assert resp.content_type == "application/problem+json"
    assert len(body["sources"]) == 3


async def test_breaker_opens_answers_at_once_then_probes_and_closes(world):
    """Failures open the circuit; while open no call is made; a probe closes it."""
    sims, build = world
    client = await build(
        breaker_failures=2, breaker_cooldown_s=0.5, retry_attempts=1, breaker_probes=1
    )
    hubsoft = sims["hubsoft"]
    hubsoft.board.set("status", 503)
    for _ in range(2):
        await timed_get(client)
    state = await (await client.get("/v1/connections", headers=AUTH)).json()
    breaker = {c["id"]: c["breaker"] for c in state["data"]}["acme-isp"]
    assert breaker["state"] == "open"
    calls = len(hubsoft.calls("/cliente/financeiro"))
    _, body, took = await timed_get(client)
    source = next(s for s in body["sources"] if s["connection"] == "acme-isp")
    assert source["status"] == "error"
    assert source["error"]["type"] == "unavailable"
    assert "circuit open" in source["error"]["detail"]
    assert len(hubsoft.calls("/cliente/financeiro")) == calls  # not called at all
    assert took < 0.4
    hubsoft.board.clear()
    await asyncio.sleep(0.6)
    _, body, _ = await timed_get(client)
    assert {s["status"] for s in body["sources"]} == {"ok"}
    state = await (await client.get("/v1/connections", headers=AUTH)).json()
    assert {c["id"]: c["breaker"] for c in state["data"]}["acme-isp"][
        "state"
    ] == "closed"


async def test_failed_probe_reopens(world):
    """A probe that fails opens the circuit again for another cool-down."""
    sims, build = world
    client = await build(
        breaker_failures=1, breaker_cooldown_s=0.3, retry_attempts=1, breaker_probes=1
    )
    sims["fintera"].board.set("status", 500)
    await timed_get(client)
    await asyncio.sleep(0.35)
    before = len(sims["fintera"].calls("/people"))
    await timed_get(client)  # the probe, failing
    assert len(sims["fintera"].calls("/people")) == before + 1
    await timed_get(client)  # open again: not called
    assert len(sims["fintera"].calls("/people")) == before + 1


async def test_caller_deadline_header_shortens_the_wait(world):
    """`X-Deadline-Ms` makes a slow source time out sooner; a bad value is a 400."""
    sims, build = world
    client = await build()
    sims["xarios"].board.set("latency", 1.0)
    started = time.monotonic()
    resp = await client.get(QUERY, headers={**AUTH, "X-Deadline-Ms": "300"})
    body = await resp.json()
    assert time.monotonic() - started < 0.8
    assert {s["connection"]: s["status"] for s in body["sources"]}[
        "reseller"
    ] == "timeout"
    bad = await client.get(QUERY, headers={**AUTH, "X-Deadline-Ms": "soon"})
    assert bad.status == 400
    assert (await bad.json())["errors"][0]["field"] == "X-Deadline-Ms"


async def test_timeout_serves_cached_data_as_stale(world):
    """A forced read that misses its timeout or the deadline falls back to the cache."""
    sims, build = world
    client = await build(cache_fresh_s=0.0, cache_stale_s=600.0)
    _, first, _ = await timed_get(client)
    sims["hubsoft"].board.set("hang")
    started = time.monotonic()
    resp = await client.get(QUERY, headers={**AUTH, "Cache-Control": "no-cache"})
    second, took = await resp.json(), time.monotonic() - started
    source = next(s for s in second["sources"] if s["connection"] == "acme-isp")
    assert source["status"] == "stale"  # the call's own timeout: stale-if-error
    assert "no answer within 0.4s" in source["error"]["detail"]
    assert [i for i in second["data"] if i["provider"] == "hubsoft"] == [
        i for i in first["data"] if i["provider"] == "hubsoft"
    ]
    assert took < DEADLINE_S + 0.5
    resp = await client.get(
        QUERY, headers={**AUTH, "X-Deadline-Ms": "200", "Cache-Control": "no-cache"}
    )
    third = await resp.json()
    source = next(s for s in third["sources"] if s["connection"] == "acme-isp")
    assert source["status"] == "stale"  # the request's deadline came first
    assert source["error"]["type"] == "timeout"
    assert "deadline" in source["error"]["detail"]

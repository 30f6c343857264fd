"""The fault matrix: every hostile upstream behaviour x every provider -> an honest answer.

The providers are the registry's (and the tests' own), each through the simulator its
contract description starts; the query is the demo customer every simulator bills.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.providers import provider_names
from tests.support import AUTH, DOC, make_settings

DEADLINE_S = 1.5
QUERY = f"/v1/invoices?customer_document={DOC}&limit=200"

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
async def world(gateway_factory, upstream_factory):
    """Every provider's simulator and a gateway over them, with test-sized time limits."""
    ups = {name: await upstream_factory(name) for name in provider_names()}

    async def build(**conn_kw):
        kw = {"timeout_s": 0.4, "cache_fresh_s": 0.0, "cache_stale_s": 0.0, **conn_kw}
        settings = make_settings(
            *(up.connection(**kw) for up in ups.values()),
            request_timeout_s=DEADLINE_S,
            max_upstream_body_bytes=1024 * 1024,
        )
        return await gateway_factory(settings)

    return ups, build


async def timed_get(client, path=QUERY):
    """GET with the test key; (status, body, seconds)."""
    started = time.monotonic()
    resp = await client.get(path, headers=AUTH)
    return resp.status, await resp.json(), time.monotonic() - started


@pytest.mark.parametrize("provider", provider_names())
@pytest.mark.parametrize("fault", sorted(MATRIX))
async def test_fault_matrix(world, provider, fault):
    """The faulted source reports it; the others still answer; all before the deadline."""
    ups, build = world
    client = await build()
    value, expected = MATRIX[fault]
    ups[provider].set_fault(fault, value)
    status, body, took = await timed_get(client)
    assert status == 200, body
    outcome = {s["connection"]: s for s in body["sources"]}
    connection = ups[provider].connection_id
    faulted = outcome.pop(connection)
    assert faulted["status"] == expected, faulted
    assert connection in faulted["error"]["detail"]
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
    ups, build = world
    client = await build()
    for up in ups.values():
        up.set_fault(fault, value)
    resp = await client.get(QUERY, headers=AUTH)
    body = await resp.json()
    assert resp.status == http
    assert resp.content_type == "application/problem+json"
    assert len(body["sources"]) == len(ups)


async def test_breaker_opens_answers_at_once_then_probes_and_closes(world):
    """Failures open the circuit; while open no call is made; a probe closes it."""
    ups, build = world
    client = await build(
        breaker_failures=2, breaker_cooldown_s=0.5, retry_attempts=1, breaker_probes=1
    )
    hubsoft = ups["hubsoft"]
    acme = hubsoft.connection_id
    hubsoft.set_fault("status", 503)
    for _ in range(2):
        await timed_get(client)
    state = await (await client.get("/v1/connections", headers=AUTH)).json()
    breaker = {c["id"]: c["breaker"] for c in state["data"]}[acme]
    assert breaker["state"] == "open"
    calls = hubsoft.calls("/cliente/financeiro$")
    _, body, took = await timed_get(client)
    source = next(s for s in body["sources"] if s["connection"] == acme)
    assert source["status"] == "error"
    assert source["error"]["type"] == "unavailable"
    assert "circuit open" in source["error"]["detail"]
    assert hubsoft.calls("/cliente/financeiro$") == calls  # not called at all
    assert took < 0.4
    await hubsoft.clear_faults()
    await asyncio.sleep(0.6)
    _, body, _ = await timed_get(client)
    assert {s["status"] for s in body["sources"]} == {"ok"}
    state = await (await client.get("/v1/connections", headers=AUTH)).json()
    assert {c["id"]: c["breaker"] for c in state["data"]}[acme]["state"] == "closed"


async def test_failed_probe_reopens(world):
    """A probe that fails opens the circuit again for another cool-down."""
    ups, build = world
    client = await build(
        breaker_failures=1, breaker_cooldown_s=0.3, retry_attempts=1, breaker_probes=1
    )
    fintera = ups["fintera"]
    fintera.set_fault("status", 500)
    await timed_get(client)
    await asyncio.sleep(0.35)
    before = fintera.calls("/people")
    await timed_get(client)  # the probe, failing
    assert fintera.calls("/people") == before + 1
    await timed_get(client)  # open again: not called
    assert fintera.calls("/people") == before + 1


async def test_caller_deadline_header_shortens_the_wait(world):
    """`X-Deadline-Ms` makes a slow source time out sooner; a bad value is a 400."""
    ups, build = world
    client = await build()
    ups["xarios"].set_fault("latency", 1.0)
    started = time.monotonic()
    resp = await client.get(QUERY, headers={**AUTH, "X-Deadline-Ms": "300"})
    body = await resp.json()
    assert time.monotonic() - started < 0.8
    statuses = {s["connection"]: s["status"] for s in body["sources"]}
    assert statuses[ups["xarios"].connection_id] == "timeout"
    bad = await client.get(QUERY, headers={**AUTH, "X-Deadline-Ms": "soon"})
    assert bad.status == 400
    assert (await bad.json())["errors"][0]["field"] == "X-Deadline-Ms"


async def test_timeout_serves_cached_data_as_stale(world):
    """A forced read that misses its timeout or the deadline falls back to the cache."""
    ups, build = world
    client = await build(cache_fresh_s=0.0, cache_stale_s=600.0)
    _, first, _ = await timed_get(client)
    acme = ups["hubsoft"].connection_id
    ups["hubsoft"].set_fault("hang")
    started = time.monotonic()
    resp = await client.get(QUERY, headers={**AUTH, "Cache-Control": "no-cache"})
    second, took = await resp.json(), time.monotonic() - started
    source = next(s for s in second["sources"] if s["connection"] == acme)
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
    source = next(s for s in third["sources"] if s["connection"] == acme)
    assert source["status"] == "stale"  # the request's deadline came first
    assert source["error"]["type"] == "timeout"
    assert "deadline" in source["error"]["detail"]

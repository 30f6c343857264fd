"""A half-broken upstream is still served; a dead one is not stampeded (outcome counts)."""

from __future__ import annotations

import asyncio
import collections
import math
from datetime import date, timedelta

import pytest

from adapters.hubsoft.client import ROW_CAP
from gateway.api.state import SERVICE
from gateway.errors import CircuitOpenError
from gateway.upstream.breaker import BreakerPolicy, CircuitBreaker
from tests.support import API_KEY, FakeClock, hubsoft_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}
PATH = "/cliente/financeiro"
COLD = {"cache_fresh_s": 0.0, "cache_stale_s": 0.0}


def one_page_customers(hub) -> list[str]:
    """Documents of customers whose invoices fit one upstream page (one call each)."""
    count = collections.Counter(inv.customer.document for inv in hub.invoices)
    return [p.document for p in hub.people if count[p.document] < ROW_CAP]


async def _hammer(
    client, hub, total: int, headers=None, *, distinct: bool = False
) -> collections.Counter[str]:
    """`total` list requests over one-page customers, 8 at a time.

    `distinct` gives every request its own due window, so none joins another's upstream
    call (single-flight would let one slow failing call fail several requests).
    """
    docs = one_page_customers(hub)
    outcomes: collections.Counter[str] = collections.Counter()
    queue = list(range(total))

    async def worker() -> None:
        while queue:
            n = queue.pop()
            window = f"&due_from=2000-01-01&due_to={date(2030, 1, 1) + timedelta(n)}"
            resp = await client.get(
                f"/v1/invoices?customer_document={docs[n % len(docs)]}"
                + (window if distinct else ""),
                headers={**AUTH, **(headers or {})},
            )
            for source in (await resp.json())["sources"]:
                outcomes[source["status"]] += 1

    await asyncio.gather(*(worker() for _ in range(8)))
    return outcomes


def _breaker(client):
    return client.app[SERVICE].connections["acme-isp"].http.breaker


@pytest.mark.parametrize(("fault", "value"), [("status", 503), ("malformed", True)])
async def test_six_tries_serve_a_half_failing_upstream(
    gateway_factory, hubsoft_url, hubsoft_sim, fault, value
):
    """50 % failing calls, 6 tries and a budget that admits them: >= 95 % answered ok."""
    conn = hubsoft_connection(
        hubsoft_url, retry_attempts=6, retry_budget_ratio=2.0, **COLD
    )
    # A roomy deadline: this pins what the tries and the budget achieve, not the clock.
    client = await gateway_factory(make_settings(conn, request_timeout_s=30.0))
    hubsoft_sim.board.set(fault, value, path=PATH, ratio=0.5)
    outcomes = await _hammer(client, hubsoft_sim, 400, distinct=True)
    assert outcomes["ok"] >= 0.95 * 400, outcomes  # expected 98.4 %: 1 - 1/64
    assert _breaker(client).state == "closed"


@pytest.mark.parametrize(("fault", "value"), [("status", 503), ("malformed", True)])
async def test_defaults_do_not_cut_off_a_half_failing_upstream(
    gateway_factory, hubsoft_url, hubsoft_sim, fault, value
):
    """With the defaults the breaker stays closed and about 3 in 4 cold reads work."""
    client = await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url, **COLD))
    )
    hubsoft_sim.board.set(fault, value, path=PATH, ratio=0.5)
    outcomes = await _hammer(client, hubsoft_sim, 300, distinct=True)
    assert outcomes["ok"] >= 0.65 * 300, outcomes  # expected 75 %, 4 sigma below
    assert _breaker(client).state == "closed"


async def test_cached_data_is_served_while_half_the_refreshes_fail(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Forced refreshes of cached data: every answer is `ok` or `stale`."""
    conn = hubsoft_connection(hubsoft_url, cache_fresh_s=0.0, cache_stale_s=600.0)
    client = await gateway_factory(make_settings(conn))
    await _hammer(client, hubsoft_sim, len(one_page_customers(hubsoft_sim)))  # cached
    hubsoft_sim.board.set("status", 503, path=PATH, ratio=0.5)
    outcomes = await _hammer(client, hubsoft_sim, 300, {"Cache-Control": "no-cache"})
    assert outcomes["ok"] + outcomes["stale"] == 300, outcomes


async def test_retry_budget_bounds_retries_against_a_dead_upstream(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Six tries per read, but retries stay within the budget's share of calls."""
    conn = hubsoft_connection(
        hubsoft_url,
        retry_attempts=6,
        retry_budget_ratio=0.1,
        retry_budget_min=2,
        breaker_failures=100,
        breaker_min_calls=10_000,
        **COLD,
    )
    client = await gateway_factory(make_settings(conn, request_timeout_s=30.0))
    hubsoft_sim.board.set("status", 503, path=PATH)
    outcomes = await _hammer(client, hubsoft_sim, 60)
    assert outcomes["error"] == 60
    # 61 calls (60 reads and the login), at most 2 + 10 % of them retried (the run fits
    # one 10 s budget window): not 6 tries x 60.
    assert len(hubsoft_sim.calls(PATH)) <= 60 + math.ceil(2 + 0.1 * 61)


async def test_dead_upstream_opens_the_circuit_by_failure_ratio(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Every call failing: the ratio opens the circuit and calls stop."""
    conn = hubsoft_connection(
        hubsoft_url, breaker_failures=100, breaker_min_calls=20, **COLD
    )
    client = await gateway_factory(make_settings(conn))
    hubsoft_sim.board.set("status", 503, path=PATH)
    await _hammer(client, hubsoft_sim, 100)
    assert _breaker(client).state == "open"
    assert len(hubsoft_sim.calls(PATH)) < 2 * 40  # 20 calls (2 tries) + in-flight ones


def test_breaker_ratio_needs_min_calls_and_counts_calls():
    """Below `min_calls` no ratio opens it; at the ratio over the window it opens."""
    breaker = CircuitBreaker(
        "c", BreakerPolicy(consecutive=100, window=10, min_calls=5)
    )
    for ok in (False, False, False, False):
        breaker.settle(breaker.admit("GET", "/"), ok=ok)
    assert breaker.state == "closed"  # 4 calls: fewer than min_calls
    breaker.settle(breaker.admit("GET", "/"), ok=False)
    assert breaker.state == "open"  # 5 of 5 failed


def test_half_open_lets_a_few_probes_through_and_closes_on_most_succeeding():
    """After the cool-down `probes` calls pass; 2 of 3 good closes the circuit."""
    clock = FakeClock(0.0)
    breaker = CircuitBreaker(
        "c", BreakerPolicy(consecutive=1, cooldown_s=10.0, probes=3), clock
    )
    breaker.settle(breaker.admit("GET", "/"), ok=False)
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.admit("GET", "/")
    clock.now = 10.0
    probes = [breaker.admit("GET", "/") for _ in range(3)]
    with pytest.raises(CircuitOpenError):
        breaker.admit("GET", "/")  # only three probes at a time
    for probe, ok in zip(probes, (True, False, True), strict=True):
        breaker.settle(probe, ok=ok)
    assert breaker.state == "closed"


def test_cancelled_probe_frees_its_slot():
    """A probe that ends without a verdict lets another probe through."""
    clock = FakeClock(0.0)
    breaker = CircuitBreaker(
        "c", BreakerPolicy(consecutive=1, cooldown_s=1.0, probes=1), clock
    )
    breaker.settle(breaker.admit("GET", "/"), ok=False)
    clock.now = 1.0
    probe = breaker.admit("GET", "/")
    breaker.settle(probe, ok=None)
    breaker.settle(breaker.admit("GET", "/"), ok=True)
    assert breaker.state == "closed"

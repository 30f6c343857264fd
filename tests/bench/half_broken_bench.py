"""A half-broken upstream is still served: 50 % of Hubsoft calls fail, count the outcomes.

Run: .venv/bin/python -m tests.bench.half_broken_bench [requests] [concurrency]
Loopback only, bounded by a request count (not time). For each fault — 503 on half the
calls, then a garbage (cut JSON) body on half the calls — three runs against a gateway
with one Hubsoft connection:

- warm: every request forces a refresh (`Cache-Control: no-cache`) of data the cache
  holds; target >= 99 % answered with the source `ok` or `stale`;
- cold, defaults: nothing cached, two tries per read; target ~ 75 % `ok`;
- cold, `retry_attempts = 6` with a retry budget that admits them; target >= 95 % `ok`.

Requests go to customers whose invoices fit one upstream page, so a request is one
upstream call; cold requests each carry their own due window, so none joins another's
call (single-flight would let one slow failing call fail several requests). Prints the
share of each source status, the HTTP statuses, upstream calls made and the breaker's
state at the end.
"""

from __future__ import annotations

import asyncio
import collections
import sys
from datetime import date, timedelta
from typing import Any

import aiohttp
import structlog

from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.api.state import SERVICE
from gateway.app import create_app
from tests.bench.cache_hit_bench import start
from tests.support import API_KEY, TODAY, hubsoft_connection, make_settings
from tests.test_half_broken import one_page_customers

FAULTS = {"503": ("status", 503), "garbage": ("malformed", True)}
RUNS = {
    "warm (forced refresh, cache holds data)": {
        "warm": True,
        "conn": {"cache_fresh_s": 0.0, "cache_stale_s": 3600.0},
    },
    "cold, defaults (2 tries)": {
        "warm": False,
        "conn": {"cache_fresh_s": 0.0, "cache_stale_s": 0.0},
    },
    "cold, retry_attempts=6, budget 2.0": {
        "warm": False,
        "conn": {
            "cache_fresh_s": 0.0,
            "cache_stale_s": 0.0,
            "retry_attempts": 6,
            "retry_budget_ratio": 2.0,
        },
    },
}


async def run(
    fault: tuple[str, Any], spec: dict[str, Any], total: int, concurrency: int
) -> None:
    """One scenario: fresh simulator and gateway, `total` requests, printed outcome."""
    hub = HubsoftSimulator(today=TODAY)
    sim_runner, sim_url = await start(hub.app())
    app = create_app(
        make_settings(
            hubsoft_connection(sim_url, **spec["conn"]), request_timeout_s=8.0
        )
    )
    gw_runner, gw = await start(app)
    docs = one_page_customers(hub)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    if spec["warm"]:
        headers["Cache-Control"] = "no-cache"
    sources: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int] = collections.Counter()
    async with aiohttp.ClientSession(headers=headers) as http:
        if spec["warm"]:
            for doc in docs:  # fill the cache while the upstream is healthy
                async with http.get(f"{gw}/v1/invoices?customer_document={doc}") as r:
                    await r.read()
        hub.board.set(fault[0], fault[1], path="/cliente/financeiro", ratio=0.5)
        calls_before = len(hub.calls("/cliente/financeiro"))
        queue = list(range(total))

        async def worker() -> None:
            while queue:
                n = queue.pop()
                url = f"{gw}/v1/invoices?customer_document={docs[n % len(docs)]}"
                if not spec["warm"]:
                    url += (
                        f"&due_from=2000-01-01&due_to={date(2030, 1, 1) + timedelta(n)}"
                    )
                async with http.get(url) as resp:
                    body = await resp.json()
                statuses[resp.status] += 1
                for source in body.get("sources", []):
                    sources[source["status"]] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    calls = len(hub.calls("/cliente/financeiro")) - calls_before
    breaker = app[SERVICE].connections["acme-isp"].http.breaker
    served = sources["ok"] + sources["stale"]
    print(
        f"    ok {sources['ok'] / total:6.1%}  ok+stale {served / total:6.1%}  "
        f"http {dict(sorted(statuses.items()))}  upstream calls {calls} "
        f"({calls / total:.2f}/request)  breaker {breaker.state if breaker else '-'}"
    )
    await gw_runner.cleanup()
    await sim_runner.cleanup()


async def main(total: int, concurrency: int) -> None:
    """Every fault x every run."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    for fault_name, fault in FAULTS.items():
        print(f"50 % {fault_name}: {total} requests, {concurrency} concurrent")
        for run_name, spec in RUNS.items():
            print(f"  {run_name}")
            await run(fault, spec, total, concurrency)


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(int(args[0]) if args else 1500, int(args[1]) if len(args) > 1 else 16)
    )

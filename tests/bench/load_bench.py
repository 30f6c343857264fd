"""Load with one upstream failing half its requests: the gateway must never answer 5xx.

Run: .venv/bin/python -m tests.bench.load_bench [seconds] [concurrency]
Loopback only, bounded in time. Three simulators and the gateway run in this process;
Hubsoft answers 503 to half of its API calls. Every request asks for a fresh read
(`Cache-Control: no-cache`) of one of the seeded customers, so upstreams are really
called. Prints gateway status counts, per-source outcomes, and latency percentiles.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import sys
import time

import aiohttp
import structlog

from adapters.fintera.simulator import FinteraSimulator
from adapters.hubsoft.simulator import HubsoftSimulator
from adapters.xarios.simulator import XariosSimulator
from gateway.app import create_app
from tests.bench.cache_hit_bench import start
from tests.support import (
    API_KEY,
    TODAY,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)


async def main(seconds: float, concurrency: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    hub, fin, xar = (
        HubsoftSimulator(today=TODAY),
        FinteraSimulator(today=TODAY),
        XariosSimulator(today=TODAY),
    )
    fin.rate_limit = 100_000
    hub.board.set("status", 503, ratio=0.5)
    runners = []
    urls = []
    for sim in (hub, fin, xar):
        runner, url = await start(sim.app())
        runners.append(runner)
        urls.append(url)
    settings = make_settings(
        hubsoft_connection(urls[0], breaker_failures=100),
        fintera_connection(urls[1]),
        xarios_connection(
            urls[2],
            xar.issue_refresh_token(),
            options={"document_tenants": {"12345678909": xar.tenant_id(0)}},
        ),
        request_timeout_s=3.0,
    )
    gw_runner, gw = await start(create_app(settings))
    runners.append(gw_runner)
    docs = [p.document for p in hub.people[:20]]
    statuses: collections.Counter[int] = collections.Counter()
    sources: collections.Counter[tuple[str, str]] = collections.Counter()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {API_KEY}", "Cache-Control": "no-cache"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                doc = docs[i % len(docs)]
                i += concurrency
                t0 = time.perf_counter()
                async with http.get(
                    f"{gw}/v1/invoices?customer_document={doc}"
                ) as resp:
                    body = await resp.json()
                latencies.append(time.perf_counter() - t0)
                statuses[resp.status] += 1
                for s in body.get("sources", []):
                    sources[(s["connection"], s["status"])] += 1

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    total = sum(statuses.values())
    q = statistics.quantiles(latencies, n=100)
    print(
        f"{total} requests in {seconds:.0f}s, {concurrency} concurrent "
        f"({total / seconds:.0f} req/s)"
    )
    print(
        "gateway statuses:",
        dict(statuses),
        f"-> 5xx: {sum(v for k, v in statuses.items() if k >= 500)}",
    )
    for (conn, status), count in sorted(sources.items()):
        print(f"  {conn:<10} {status:<8} {count}")
    hub_calls = len(hub.calls("/cliente/financeiro"))
    print(f"hubsoft API calls {hub_calls} (half answered 503; reads retried once)")
    print(
        f"latency p50 {q[49] * 1000:.1f} ms  p99 {q[98] * 1000:.1f} ms  "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    for runner in reversed(runners):
        await runner.cleanup()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(float(args[0]) if args else 10.0, int(args[1]) if len(args) > 1 else 16)
    )

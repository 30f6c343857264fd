"""Cache-hit overhead: the gateway's list route vs a plain aiohttp handler (same bytes).

Run: .venv/bin/python -m tests.bench.cache_hit_bench [seconds-per-target]
Both servers run in one process on loopback; a bounded client loop (16 concurrent
requests, a few seconds each) measures requests/s and p50/p99 latency. Compare the
ratio of the two in one run; absolute numbers depend on the machine.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time

import aiohttp
from aiohttp import web

from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.app import create_app
from tests.support import API_KEY, TODAY, hubsoft_connection, make_settings

CONCURRENCY = 16


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def hammer(
    url: str, headers: dict[str, str], seconds: float
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=headers) as http:

        async def worker() -> None:
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                async with http.get(url) as resp:
                    await resp.read()
                    assert resp.status == 200
                latencies.append(time.perf_counter() - t0)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies


def report(name: str, rps: float, lat: list[float]) -> None:
    q = statistics.quantiles(lat, n=100)
    print(
        f"{name:<22} {rps:8.0f} req/s   p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms"
    )


async def main(seconds: float) -> None:
    import structlog  # noqa: PLC0415 - silence the access log for the measurement

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sim = HubsoftSimulator(today=TODAY)
    sim_runner, sim_url = await start(sim.app())
    settings = make_settings(hubsoft_connection(sim_url, cache_fresh_s=3600))
    gw_runner, gw_url = await start(create_app(settings))
    path = "/v1/invoices?customer_document=12345678909&limit=50"
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.get(gw_url + path) as resp,
    ):
        body = await resp.read()
    plain = web.Application()

    async def same_bytes(_request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    plain.router.add_get("/v1/invoices", same_bytes)
    plain_runner, plain_url = await start(plain)
    print(
        f"response size {len(body)} bytes; {CONCURRENCY} concurrent clients; {seconds}s each"
    )
    rps_plain, lat_plain = await hammer(plain_url + path, headers, seconds)
    rps_gw, lat_gw = await hammer(gw_url + path, headers, seconds)
    report("plain aiohttp handler", rps_plain, lat_plain)
    report("gateway cache hit", rps_gw, lat_gw)
    print(f"gateway/plain throughput ratio: {rps_gw / rps_plain:.2f}")
    print(
        f"upstream list calls during the run: {len(sim.calls('/cliente/financeiro'))}"
    )
    for runner in (plain_runner, gw_runner, sim_runner):
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))

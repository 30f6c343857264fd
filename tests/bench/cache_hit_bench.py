"""Cache hits on each backend vs a plain aiohttp handler, and a cold-miss storm.

Run: .venv/bin/python -m tests.bench.cache_hit_bench [seconds-per-target]
Servers and client share this process on loopback; a bounded client loop (16 concurrent
requests, a few seconds per target) measures requests/s and p50/p99. Compare the ratios
within one run; absolute numbers depend on the machine. The storm part sends 200
concurrent identical cold requests to two gateways sharing one Redis and counts upstream
calls (the answer should be 1). Needs `redis-server` on PATH (started on a free port).
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import structlog
from aiohttp import web

from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.app import create_app
from gateway.config.settings import Secret
from tests.support import (
    API_KEY,
    TODAY,
    RedisProcess,
    hubsoft_connection,
    make_settings,
)

CONCURRENCY = 16
PATH = "/v1/invoices?customer_document=12345678909&limit=50"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def hammer(url: str, seconds: float) -> tuple[float, list[float]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    async with aiohttp.ClientSession(headers=HEADERS) as http:

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


def report(name: str, rps: float, lat: list[float], base: float) -> None:
    q = statistics.quantiles(lat, n=100)
    print(
        f"{name:<24} {rps:8.0f} req/s ({rps / base:4.2f}x)  "
        f"p50 {q[49] * 1000:6.2f} ms  p99 {q[98] * 1000:6.2f} ms"
    )


async def storm(sim_url: str, redis_url: str, sim: HubsoftSimulator) -> None:
    settings = make_settings(hubsoft_connection(sim_url), redis_url=Secret(redis_url))
    runners = [await start(create_app(settings)) for _ in range(2)]
    before = len(sim.calls("/cliente/financeiro"))
    sim.set_fault("latency", 0.2, times=1)
    cold = "/v1/invoices?connection=acme-isp&customer_id=2010"
    async with aiohttp.ClientSession(headers=HEADERS) as http:

        async def one(n: int) -> int:
            async with http.get(runners[n % 2][1] + cold) as resp:
                await resp.read()
                return resp.status

        statuses = await asyncio.gather(*(one(n) for n in range(200)))
    calls = len(sim.calls("/cliente/financeiro")) - before
    print(
        f"cold-miss storm: 200 identical requests on 2 gateways sharing Redis -> "
        f"{calls} upstream call(s), statuses {sorted(set(statuses))}"
    )
    for runner, _ in runners:
        await runner.cleanup()


async def main(seconds: float) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed for the Redis figures"
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisProcess(binary, Path(tmp))
        redis.start()
        sim = HubsoftSimulator(today=TODAY)
        sim_runner, sim_url = await start(sim.app())
        targets = {}
        for name, extra in (
            ("gateway, memory cache", {}),
            ("gateway, Redis cache", {"redis_url": Secret(redis.url)}),
        ):
            settings = make_settings(
                hubsoft_connection(sim_url, cache_fresh_s=3600), **extra
            )
            targets[name] = await start(create_app(settings))
        async with aiohttp.ClientSession(headers=HEADERS) as http:
            async with http.get(targets["gateway, memory cache"][1] + PATH) as resp:
                body = await resp.read()
            for _, url in targets.values():
                async with http.get(url + PATH) as resp:
                    await resp.read()
        plain = web.Application()

        async def same_bytes(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        plain.router.add_get("/v1/invoices", same_bytes)
        targets["plain aiohttp handler"] = await start(plain)
        print(
            f"response {len(body)} bytes; {CONCURRENCY} concurrent clients; {seconds}s each"
        )
        results = {
            name: await hammer(url + PATH, seconds)
            for name, (_, url) in targets.items()
        }
        base = results["plain aiohttp handler"][0]
        for name in (
            "plain aiohttp handler",
            "gateway, memory cache",
            "gateway, Redis cache",
        ):
            report(name, *results[name], base)
        await storm(sim_url, redis.url, sim)
        for runner, _ in targets.values():
            await runner.cleanup()
        await sim_runner.cleanup()
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0))

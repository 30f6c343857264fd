"""Slow clients are bounded: 1,000 trickling connections while normal clients are served.

Run: .venv/bin/python -m tests.bench.slow_client_bench [slow_clients] [normal_requests]
Loopback only. The gateway runs behind its client limits (`gateway.cli.serving`, defaults:
10 s for a request head, 10 s for a body). Half the slow clients trickle a request head
one header line a second, the other half a declared 1,000-byte body one byte a second.
Meanwhile 8 normal clients make `normal_requests` list requests. Prints the normal
clients' statuses and latency, how each slow client ended and how long the longest one
was kept, and the process's open connections at the end.
"""

from __future__ import annotations

import asyncio
import collections
import statistics
import sys
import time

import aiohttp
import structlog

from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.api.serverlimits import ClientLimits
from gateway.app import create_app
from gateway.cli.serving import start_guarded
from tests.bench.cache_hit_bench import start
from tests.support import API_KEY, TODAY, hubsoft_connection, make_settings

TRICKLE_S = 1.0


async def slow_client(port: int, n: int, ended: collections.Counter[str]) -> float:
    """Trickle a head or a body; return how long the server kept the connection."""
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        ended["connect failed"] += 1
        return 0.0
    body_kind = n % 2 == 0
    head = b"POST /v1/sale-accounts HTTP/1.1\r\nHost: x\r\n"
    if body_kind:
        head += (
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{"
        ).encode()
    writer.write(head)
    answer = b""
    try:
        for _ in range(120):
            try:
                answer = await asyncio.wait_for(reader.read(64), TRICKLE_S)
            except TimeoutError:
                writer.write(b" " if body_kind else b"X-Slow: 1\r\n")
                continue
            break
    except ConnectionError:
        answer = b""
    kind = "body" if body_kind else "head"
    status = answer[9:12].decode() if answer.startswith(b"HTTP/1.1") else "closed"
    ended[f"{kind} trickle -> {status}"] += 1
    writer.close()
    return time.monotonic() - started


async def main(slow: int, normal: int) -> None:
    """Slow and normal clients at once against one gateway process."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    hub = HubsoftSimulator(today=TODAY)
    sim_runner, sim_url = await start(hub.app())
    settings = make_settings(hubsoft_connection(sim_url))
    runner, server, guard = await start_guarded(
        create_app(settings), "127.0.0.1", 0, ClientLimits()
    )
    port = server.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1/invoices?customer_document=12345678909"
    ended: collections.Counter[str] = collections.Counter()
    statuses: collections.Counter[int | str] = collections.Counter()
    latencies: list[float] = []
    slow_tasks = [asyncio.create_task(slow_client(port, n, ended)) for n in range(slow)]
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, guard.open)
            await asyncio.sleep(0.1)

    watcher = asyncio.create_task(watch())
    await asyncio.sleep(1.0)  # every slow client is connected and trickling
    queue = list(range(normal))
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def worker() -> None:
            while queue:
                queue.pop()
                t0 = time.perf_counter()
                try:
                    async with http.get(url) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except aiohttp.ClientError as err:
                    statuses[type(err).__name__] += 1
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(0.01)

        await asyncio.gather(*(worker() for _ in range(8)))
    kept = await asyncio.gather(*slow_tasks)
    watcher.cancel()
    q = statistics.quantiles(latencies, n=100)
    print(f"{slow} slow clients (gateway peak: {peak} open connections)")
    print(
        f"normal: {normal} requests during the trickle -> {dict(statuses)}; latency "
        f"p50 {q[49] * 1000:.1f} ms p99 {q[98] * 1000:.1f} ms "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(f"slow clients ended: {dict(ended)}; longest kept {max(kept):.1f} s")
    print(
        f"open connections at the end: {guard.open}; cut at the head timeout: "
        f"{guard.timed_out}; refused over the cap: {guard.refused}"
    )
    server.close()
    await runner.cleanup()
    await sim_runner.cleanup()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(int(args[0]) if args else 1000, int(args[1]) if len(args) > 1 else 2000)
    )

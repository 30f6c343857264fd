"""Memory stays bounded by bytes: many distinct misses of large pages, RSS measured.

Run: .venv/bin/python -m tests.bench.memory_bench [requests] [budget_mb]
Loopback only, bounded by a request count. The Hubsoft simulator's rows are padded
(a 10 KB field per row, ~120 KB per cached page) and every request asks for a distinct
due window, so each one is a cache miss that stores a new large entry in the memory
cache (`GATEWAY_CACHE_MAX_BYTES` = budget). Prints RSS after a warm-up and at the end,
the bytes and entries the cache holds, and the growth against the budget.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from datetime import date, timedelta
from pathlib import Path

import aiohttp
import structlog

from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.app import create_app
from gateway.state.cache import MemoryCache
from tests.bench.cache_hit_bench import start
from tests.support import API_KEY, TODAY, hubsoft_connection, make_settings

PAD = "x" * 10_000
DOC = "12345678909"


def rss_mb() -> float:
    """Resident set size of this process now, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def main(total: int, budget_mb: int) -> None:
    """Fill the cache with `total` distinct large pages under a `budget_mb` budget."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(50))
    hub = HubsoftSimulator(today=TODAY)
    hub.board.set("rewrite", {"especie_dinheiro": PAD}, path="/cliente/financeiro")
    sim_runner, sim_url = await start(hub.app())
    cache = MemoryCache(1_000_000, max_bytes=budget_mb * 1024 * 1024)
    conn = hubsoft_connection(sim_url, cache_fresh_s=3600.0, cache_stale_s=3600.0)
    gw_runner, gw = await start(create_app(make_settings(conn), cache=cache))
    first = date(2000, 1, 1)
    headers = {"Authorization": f"Bearer {API_KEY}"}
    queue = list(range(total))
    baseline = 0.0
    async with aiohttp.ClientSession(headers=headers) as http:

        async def worker() -> None:
            nonlocal baseline
            while queue:
                n = queue.pop(0)
                if n == min(total - 1, 300):
                    gc.collect()
                    baseline = rss_mb()
                if n % 1000 == 0:
                    hub.board.requests.clear()  # the simulator's own log, not ours
                if n and n % 5000 == 0:
                    print(f"  after {n} requests: RSS {rss_mb():.0f} MiB", flush=True)
                due_from = first + timedelta(days=n % 9000)
                due_to = TODAY + timedelta(days=365 + n // 9000)
                url = (
                    f"{gw}/v1/invoices?customer_document={DOC}"
                    f"&due_from={due_from}&due_to={due_to}"
                )
                async with http.get(url) as resp:
                    await resp.read()

        await asyncio.gather(*(worker() for _ in range(8)))
    gc.collect()
    end = rss_mb()
    held = cache.bytes / 1024 / 1024
    print(
        f"{total} distinct misses, cache budget {budget_mb} MiB: cache holds "
        f"{held:.1f} MiB in {len(cache)} entries "
        f"(~{cache.bytes / max(1, len(cache)) / 1024:.0f} KiB each)"
    )
    print(
        f"RSS after 300 requests {baseline:.0f} MiB, after {total}: {end:.0f} MiB "
        f"(growth {end - baseline:.0f} MiB; budget {budget_mb} MiB)"
    )
    await gw_runner.cleanup()
    await sim_runner.cleanup()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        main(int(args[0]) if args else 20_000, int(args[1]) if len(args) > 1 else 64)
    )

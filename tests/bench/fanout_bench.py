"""Cold fan-out costs the slowest source plus a few ms, never the sum (DESIGN.md section 11).

Run: .venv/bin/python -m tests.bench.fanout_bench [rounds]
Three simulators each delay one API call by 100, 200 and 300 ms; each round asks the
gateway a cold question all three must answer (`Cache-Control: no-cache`). Prints the
median and worst round time next to the slowest source and the sum.
"""

from __future__ import annotations

import asyncio
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

DELAYS = {"hubsoft": 0.1, "fintera": 0.2, "xarios": 0.3}


async def main(rounds: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sims = {
        "hubsoft": HubsoftSimulator(today=TODAY),
        "fintera": FinteraSimulator(today=TODAY),
        "xarios": XariosSimulator(today=TODAY),
    }
    runners, urls = [], {}
    for name, sim in sims.items():
        runner, urls[name] = await start(sim.app())
        runners.append(runner)
    xar = sims["xarios"]
    settings = make_settings(
        hubsoft_connection(urls["hubsoft"]),
        fintera_connection(urls["fintera"]),
        xarios_connection(
            urls["xarios"],
            xar.issue_refresh_token(),
            options={"document_tenants": {"12345678909": xar.tenant_id(0)}},
        ),
    )
    gw_runner, gw = await start(create_app(settings))
    runners.append(gw_runner)
    url = f"{gw}/v1/invoices?customer_document=12345678909"
    headers = {"Authorization": f"Bearer {API_KEY}", "Cache-Control": "no-cache"}
    times = []
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(url) as resp:  # log in everywhere first
            await resp.read()
        for _ in range(rounds):
            for name, sim in sims.items():
                sim.board.set(
                    "latency", DELAYS[name], times=1
                )  # one slow call per source
            t0 = time.perf_counter()
            async with http.get(url) as resp:
                body = await resp.json()
            times.append(time.perf_counter() - t0)
            assert {s["status"] for s in body["sources"]} == {"ok"}
    slowest, total = max(DELAYS.values()), sum(DELAYS.values())
    print(
        f"{rounds} cold rounds over 3 sources answering in "
        f"{', '.join(f'{v * 1000:.0f} ms' for v in DELAYS.values())}"
    )
    print(
        f"median {statistics.median(times) * 1000:.1f} ms, worst {max(times) * 1000:.1f} ms; "
        f"slowest source {slowest * 1000:.0f} ms, sum {total * 1000:.0f} ms"
    )
    print(
        f"gateway's own cost over the slowest source (median): "
        f"{(statistics.median(times) - slowest) * 1000:.1f} ms"
    )
    for runner in reversed(runners):
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10))

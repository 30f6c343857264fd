"""The change detector's upstream cost: calls per sync interval per connection.

Run: .venv/bin/python -m tests.bench.events_sync_bench [syncs]
Serves the three simulators with their seeded data, lets the detector take its
baseline, then runs `syncs` more syncs and prints, per connection, the upstream HTTP
calls each sync made (token calls included) and the invoices it read, with the default
window (due dates from 90 days back to 45 days ahead).
"""

from __future__ import annotations

import asyncio
import statistics
import sys

import structlog
from aiohttp import web

from adapters.fintera.simulator import FinteraSimulator
from adapters.hubsoft.simulator import HubsoftSimulator
from adapters.xarios.simulator import XariosSimulator
from gateway.app import create_app
from gateway.events.state import DETECTOR
from tests.bench.cache_hit_bench import start
from tests.support import (
    NOW,
    TODAY,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

HOUR = 3600.0


async def main(syncs: int) -> None:
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))
    sims = {
        "acme-isp": HubsoftSimulator(today=TODAY),
        "fin": FinteraSimulator(today=TODAY),
        "reseller": XariosSimulator(today=TODAY),
    }
    runners, urls = [], {}
    for name, sim in sims.items():
        runner, urls[name] = await start(sim.app())
        runners.append(runner)
    settings = make_settings(
        hubsoft_connection(urls["acme-isp"], sync_interval_s=HOUR),
        fintera_connection(urls["fin"], sync_interval_s=HOUR),
        xarios_connection(
            urls["reseller"],
            sims["reseller"].issue_refresh_token(),
            sync_interval_s=HOUR,
        ),
    )
    app = create_app(settings, now=lambda: NOW)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    runners.append(runner)
    detector = app[DETECTOR]
    while True:  # until the baseline sync of every connection is done
        if detector.fence is not None and len(detector.syncs) == len(sims):
            break
        await asyncio.sleep(0.05)
    calls: dict[str, list[int]] = {cid: [] for cid in sims}
    read: dict[str, int] = {}
    for _ in range(syncs):
        before = {cid: len(sim.board.requests) for cid, sim in sims.items()}
        for report in await detector.sync_now():
            read[report.connection] = report.read
        for cid, sim in sims.items():
            calls[cid].append(len(sim.board.requests) - before[cid])
    print(f"{syncs} syncs per connection after the baseline, window -90..+45 days")
    for cid, counts in calls.items():
        print(
            f"  {cid:9} {settings.connections[list(sims).index(cid)].provider:8}"
            f" upstream calls per sync: median {statistics.median(counts):g},"
            f" max {max(counts)}; invoices read: {read.get(cid, 0)}"
        )
    for r in reversed(runners):
        await r.cleanup()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))

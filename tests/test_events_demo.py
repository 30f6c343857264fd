"""The demo's pay switch and webhook receiver: invoice.paid can be watched arriving."""

from __future__ import annotations

import asyncio
import os
import re

import aiohttp

from tests.events_support import eventually
from tests.processes import launch, read_until, stop


async def test_demo_pay_switch_shows_invoice_paid_at_its_receiver():
    """Pressing the printed pay switch makes the demo receiver print a signed invoice.paid."""
    proc = await launch(
        "demo",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        out = await read_until(proc.stdout, "/__sim/pay/")
        switch = re.search(r"curl -s -X POST (http://\S+/__sim/pay/\d+)", out).group(1)
        base = re.search(r"is up at (http://\S+)", out).group(1)
        async with aiohttp.ClientSession() as http:

            async def baseline_taken() -> bool:
                async with http.get(f"{base}/metrics") as resp:
                    text = await resp.text()
                return 'gateway_events_syncs_total{connection="demo-hubsoft"}' in text

            await eventually(baseline_taken)
            async with http.post(switch) as resp:
                assert resp.status == 200
        line = (await read_until(proc.stdout, "invoice.paid", 40)).splitlines()[-1]
        assert "signature ok" in line
        assert switch.rsplit("/", 1)[1] in line
    finally:
        await stop(proc)

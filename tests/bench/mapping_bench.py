"""Mapping speed: 10,000 Hubsoft rows to canonical invoices (DESIGN.md section 11).

Run: .venv/bin/python -m tests.bench.mapping_bench
Prints rows/s for mapping alone and for mapping + the cache's encode/decode round trip.
"""

from __future__ import annotations

import time
from datetime import date

from adapters.hubsoft.mapping import to_invoice
from adapters.hubsoft.simulator import HubsoftSimulator
from gateway.invoices.listing import decode_result, encode_result
from gateway.invoices.models import Customer
from gateway.upstream.providers import SourceResult

ROWS = 10_000


def main() -> None:
    sim = HubsoftSimulator(today=date(2026, 11, 20), customers=800)
    origin = "https://api.bench.hubsoft.com.br"
    rows = [sim._row_cliente(inv, origin) for inv in sim.invoices]
    rows = (rows * (ROWS // len(rows) + 1))[:ROWS]
    today = date(2026, 11, 20)
    best_map = best_trip = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        invoices = [
            to_invoice(
                r, connection="bench", today=today, searched=Customer(), scope=("", "")
            )
            for r in rows
        ]
        t1 = time.perf_counter()
        decode_result(encode_result(SourceResult(tuple(invoices))))
        t2 = time.perf_counter()
        best_map, best_trip = min(best_map, t1 - t0), min(best_trip, t2 - t1)
    print(f"map {ROWS} rows: {best_map * 1000:.1f} ms ({ROWS / best_map:,.0f} rows/s)")
    print(f"cache encode+decode {ROWS} invoices: {best_trip * 1000:.1f} ms")


if __name__ == "__main__":
    main()

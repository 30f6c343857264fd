"""One upstream budget for all replicas: a token bucket in Redis."""

from __future__ import annotations

import asyncio

from gateway.config.settings import Secret
from tests.support import API_KEY, fintera_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_two_replicas_share_one_budget(
    gateway_factory, fintera_url, fintera_sim, redis_server
):
    """Two gateways, 40 upstream calls, a 10-per-second upstream: no 429 at all.

    Each replica alone would pace itself to the full limit, so together they would send
    twice too much; the shared bucket keeps the sum under the limit.
    """
    fintera_sim.rate_limit, fintera_sim.rate_window_s = 10, 1.0
    conn = fintera_connection(
        fintera_url, rate_limit_requests=10, rate_limit_window_s=1.0
    )
    settings = make_settings(conn, redis_url=Secret(redis_server.url))
    replicas = [await gateway_factory(settings) for _ in range(2)]
    ids = [
        f"fintera:fin:{r['entity_id']}-{r['id']}" for r in fintera_sim.receivables[:20]
    ]
    responses = await asyncio.gather(
        *(
            replicas[n % 2].get(f"/v1/invoices/{ident}", headers=AUTH)
            for n, ident in enumerate(ids)
        )
    )
    assert {r.status for r in responses} == {200}
    assert fintera_sim.throttled == 0

"""The gateway on a real 3-master Redis Cluster: cache, tokens, idempotency, rate budget."""

from __future__ import annotations

import asyncio

from redis.asyncio import RedisCluster

from gateway.config.settings import Secret
from gateway.state.redis_calls import guarded
from tests.support import (
    API_KEY,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC = "12345678909"


async def test_everything_shared_works_on_a_cluster(
    gateway_factory,
    redis_cluster,
    hubsoft_url,
    fintera_url,
    xarios_url,
    xarios_sim,
    fintera_sim,
):
    """Keys spread over slots (hash tags keep each lock with its data); all features hold."""
    redis_cluster.flush()
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        fintera_connection(
            fintera_url, rate_limit_requests=50, rate_limit_window_s=60.0
        ),
        xarios_connection(
            xarios_url,
            xarios_sim.issue_refresh_token(),
            options={"document_tenants": {DOC: xarios_sim.tenant_id(0)}},
        ),
        redis_url=Secret(redis_cluster.url),
        redis_cluster=True,
    )
    replicas = [await gateway_factory(settings) for _ in range(2)]
    first = await (
        await replicas[0].get(f"/v1/invoices?customer_document={DOC}", headers=AUTH)
    ).json()
    assert {s["status"] for s in first["sources"]} == {"ok"}
    second = await (
        await replicas[1].get(f"/v1/invoices?customer_document={DOC}", headers=AUTH)
    ).json()
    assert {s["from_cache"] for s in second["sources"]} == {
        True
    }  # the other replica's cache
    assert xarios_sim.token_calls == 1

    body = {
        "connection": "fin",
        "name": "Cluster",
        "entity_id": 3798,
        "acquirer": "getnet",
        "payment_methods": ["pix"],
    }
    headers = {**AUTH, "Idempotency-Key": "cluster-key"}
    one = await replicas[0].post("/v1/sale-accounts", json=body, headers=headers)
    two = await replicas[1].post("/v1/sale-accounts", json=body, headers=headers)
    assert (one.status, two.status) == (201, 201)
    assert two.headers["Idempotent-Replayed"] == "true"
    assert (
        sum(1 for a in fintera_sim.sale_accounts.values() if a["name"] == "Cluster")
        == 1
    )
    ready = await (await replicas[0].get("/readyz")).json()
    assert ready["cache"] == {"backend": "redis", "redis": "up"}


async def test_a_cold_cluster_client_answers_a_burst_of_first_commands(redis_cluster):
    """Fifty commands on a fresh client at once: every one answered, none torn down.

    redis-py's Cluster client races with itself when its first commands arrive together
    (some are written to a connection torn down under them); unguarded, most fresh
    clients lost at least one of the fifty. Several fresh clients, so a pass means it.
    """
    redis_cluster.flush()
    for _ in range(5):
        client = guarded(RedisCluster.from_url(redis_cluster.url))
        try:
            got = await asyncio.gather(
                *(client.get(f"ig:v1:cold:{n % 3}") for n in range(50)),
                return_exceptions=True,
            )
        finally:
            await client.aclose()
        assert [g for g in got if g is not None] == []

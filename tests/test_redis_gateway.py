"""The gateway on Redis: shared cache, fail-open when Redis dies, recovery without restart."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from gateway.config.settings import Secret
from tests.support import API_KEY, hubsoft_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_cache_lives_in_redis_and_survives_its_outage(
    gateway_factory, hubsoft_url, hubsoft_sim, redis_server
):
    """Entries go to Redis; with Redis killed mid-load no 5xx; back again, caching resumes."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
    )
    client = await gateway_factory(settings)
    docs = [p.document for p in hubsoft_sim.people[:10]]

    async def ask(doc, **headers):
        resp = await client.get(
            f"/v1/invoices?customer_document={doc}", headers={**AUTH, **headers}
        )
        return resp.status, await resp.json()

    status, body = await ask(docs[0])
    assert status == 200
    probe = aioredis.Redis.from_url(redis_server.url)
    assert [k async for k in probe.scan_iter("ig:v1:*")]
    await probe.aclose()
    assert (await ask(docs[0]))[1]["sources"][0]["from_cache"] is True

    async def load(rounds: int) -> list[tuple[int, dict]]:
        out = []
        for n in range(rounds):
            out += await asyncio.gather(
                *(
                    ask(doc, **{"Cache-Control": "no-cache"} if n % 2 else {})
                    for doc in docs
                )
            )
            await asyncio.sleep(0.01)
        return out

    under_load = asyncio.create_task(load(30))
    await asyncio.sleep(0.1)
    redis_server.stop()  # killed mid-load, as a crash would
    results = await under_load + await load(3)
    assert {status for status, _ in results} == {200}
    assert all(body["sources"][0]["status"] in {"ok", "stale"} for _, body in results)
    ready = await (await client.get("/readyz")).json()
    assert ready["cache"] == {"backend": "redis", "redis": "down"}
    conns = await (await client.get("/v1/connections", headers=AUTH)).json()
    assert conns["cache"]["redis"] == "down"

    redis_server.start()
    await ask(docs[1])
    status, body = await ask(docs[1])
    assert body["sources"][0]["from_cache"] is True  # cached again, no gateway restart
    ready = await (await client.get("/readyz")).json()
    assert ready["cache"]["redis"] == "up"

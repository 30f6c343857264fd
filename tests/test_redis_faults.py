"""Redis and replica faults with real processes: consents survive, writes never lie.

Three `invoice-gateway serve` processes share a real redis-server; the Xarios simulator
detects refresh-token reuse (and counts it), the Fintera simulator counts creates. Waits
are on conditions with generous bounds, never on tight timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

import aiohttp
import pytest

from tests.processes import HEADERS, Gateways, gateway_env, wait_until

XARIOS = "/v1/invoices?connection=reseller"
ACCOUNT = {
    "connection": "fin",
    "name": "Fault-proof",
    "entity_id": 3798,
    "acquirer": "cielo",
    "payment_methods": ["pix"],
}


@pytest.fixture
async def deployment(tmp_path, redis_server, xarios_url, fintera_url, xarios_sim):
    """Three gateways on one Redis; Xarios access tokens live 4 s (refresh every ~3 s)."""
    xarios_sim.access_lifetime_s = 4
    refresh = xarios_sim.issue_refresh_token()
    env = gateway_env(tmp_path, redis_server.url, xarios_url, fintera_url, refresh)
    gateways = Gateways(env, 3, tmp_path)
    try:  # a start-up that fails must not leave processes behind
        await gateways.start()
        yield gateways, refresh
    finally:
        await gateways.stop()


async def xarios_status(http: aiohttp.ClientSession, base: str) -> str:
    """The Xarios source's status for one uncached list on one gateway."""
    try:
        async with http.get(base + XARIOS) as resp:
            body = await resp.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError):
        return "unreachable"
    sources = body.get("sources") or []
    return str(sources[0]["status"]) if sources else f"http {resp.status}"


async def traffic(bases: list[str], stop: asyncio.Event, seen: list[str]) -> None:
    """Light Xarios traffic over every gateway until `stop`; statuses into `seen`."""
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(headers=HEADERS, timeout=timeout) as http:
        n = 0
        while not stop.is_set():
            seen.append(await xarios_status(http, bases[n % len(bases)]))
            n += 1
            await asyncio.sleep(0.1)


async def all_serve_xarios(bases: list[str]) -> bool:
    """Every gateway answers the Xarios source `ok` right now."""
    async with aiohttp.ClientSession(headers=HEADERS) as http:
        statuses = [await xarios_status(http, base) for base in bases]
    return set(statuses) == {"ok"}


async def test_redis_stalled_10s_under_xarios_traffic_never_reuses_a_refresh_token(
    deployment, redis_server, xarios_sim
):
    """SIGSTOP Redis 10 s while tokens expire every few seconds: 0 reuses, consent alive."""
    gateways, _ = deployment
    stop, seen = asyncio.Event(), []
    load = asyncio.create_task(traffic(gateways.bases, stop, seen))
    await wait_until(
        lambda: _true(xarios_sim.token_calls >= 2), 30, "a refresh before the stall"
    )
    redis_server.proc.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(10)
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    calls_after_stall = xarios_sim.token_calls
    await wait_until(
        lambda: _true(xarios_sim.token_calls > calls_after_stall),
        30,
        "a refresh after the stall",
    )
    await wait_until(
        lambda: all_serve_xarios(gateways.bases), 30, "every gateway serves Xarios"
    )
    stop.set()
    await load
    assert xarios_sim.reuses == 0
    assert "ok" in seen


async def test_redis_restarted_empty_keeps_the_consent(
    deployment, redis_server, xarios_sim
):
    """Redis killed and back empty: the newest token is written back, nothing reused."""
    gateways, refresh = deployment
    stop, seen = asyncio.Event(), []
    load = asyncio.create_task(traffic(gateways.bases, stop, seen))
    await wait_until(
        lambda: _true(xarios_sim.token_calls >= 2), 30, "the configured token rotated"
    )
    redis_server.stop()
    await asyncio.sleep(2)
    redis_server.start()
    calls_after_restart = xarios_sim.token_calls
    await wait_until(
        lambda: _true(xarios_sim.token_calls > calls_after_restart + 1),
        40,
        "refreshes after the restart",
    )
    await wait_until(
        lambda: all_serve_xarios(gateways.bases), 30, "every gateway serves Xarios"
    )
    stop.set()
    await load
    assert xarios_sim.reuses == 0
    assert xarios_sim.consent_alive(refresh)


async def post_account(
    http: aiohttp.ClientSession, base: str, key: str
) -> tuple[int, dict]:
    """POST the account with an Idempotency-Key: (status, body)."""
    async with http.post(
        base + "/v1/sale-accounts", json=ACCOUNT, headers={"Idempotency-Key": key}
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def creates(fintera_sim) -> int:
    """How many accounts the upstream holds under the test's name."""
    return sum(
        1 for a in fintera_sim.sale_accounts.values() if a["name"] == ACCOUNT["name"]
    )


async def post_seen(fintera_sim) -> bool:
    """Whether the create reached the Fintera simulator."""
    return any(c["method"] == "POST" for c in fintera_sim.calls("/sale_accounts"))


async def test_redis_killed_during_a_slow_create_then_a_retry_creates_once(
    deployment, redis_server, fintera_sim
):
    """The create lands while Redis is dead: 504 'retry', never 503; the retry replays it."""
    gateways, _ = deployment
    fintera_sim.board.set("slow_create", 2.0, times=1)
    async with aiohttp.ClientSession(headers=HEADERS) as http:
        first = asyncio.create_task(post_account(http, gateways.bases[0], "k-redis"))
        await wait_until(lambda: post_seen(fintera_sim), 30, "the create was sent")
        redis_server.stop()
        status, body = await first
        assert status == 504, body
        assert "retry with the same Idempotency-Key" in body["detail"]
        redis_server.start()
        retried: tuple[int, dict] = (0, {})

        async def replayed() -> bool:
            nonlocal retried
            retried = await post_account(http, gateways.bases[1], "k-redis")
            return retried[0] != 503  # 503 only while the replica reconnects

        await wait_until(replayed, 30, "the retry is answered")
    assert retried[0] == 201, retried
    assert retried[1]["name"] == ACCOUNT["name"]
    assert creates(fintera_sim) == 1


async def test_replica_killed_mid_create_a_retry_succeeds_within_10s_once(
    deployment, fintera_sim
):
    """The owner dies mid-create: its lease lapses, the retry finds the account."""
    gateways, _ = deployment
    fintera_sim.board.set("slow_create", 2.0, times=1)
    async with aiohttp.ClientSession(headers=HEADERS) as http:
        first = asyncio.create_task(post_account(http, gateways.bases[0], "k-kill"))
        await wait_until(lambda: post_seen(fintera_sim), 30, "the create was sent")
        gateways.kill(0)
        with contextlib.suppress(aiohttp.ClientError):
            await first
        started = time.monotonic()
        status, body = await post_account(http, gateways.bases[1], "k-kill")
        took = time.monotonic() - started
    assert status == 201, body
    assert took < 10
    assert creates(fintera_sim) == 1


async def _true(value: bool) -> bool:
    return value

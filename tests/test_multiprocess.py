"""Three gateway processes on one Redis behave as one: one upstream call, one token call."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket

import aiohttp
import pytest

from adapters.fintera.simulator import API_TOKEN, ENTITIES
from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from adapters.xarios.simulator import CLIENT_ID as X_ID
from adapters.xarios.simulator import CLIENT_SECRET as X_SECRET
from tests.processes import healthy, launch, stop
from tests.support import CURSOR_SECRET

KEY = "multi-process-key-0123"
DOC = "12345678909"


def free_port() -> int:
    """A free loopback port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
async def cluster_of_gateways(
    tmp_path, redis_server, hubsoft_url, xarios_url, fintera_url, xarios_sim
):
    """Three `invoice-gateway serve` processes sharing one Redis and the simulators."""
    conf = tmp_path / "connections.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "mp"\nsha256 = "{hashlib.sha256(KEY.encode()).hexdigest()}"\n'
        'scopes = ["invoices:read", "sale_accounts:write"]\n'
        f'[connections.acme-isp]\nprovider = "hubsoft"\nbase_url = "{hubsoft_url}"\n'
        '[connections.acme-isp.secrets]\nclient_id = "H_ID"\nclient_secret = "H_SECRET"\n'
        'username = "H_USER"\npassword = "H_PASS"\n'
        f'[connections.reseller]\nprovider = "xarios"\nbase_url = "{xarios_url}"\n'
        '[connections.reseller.secrets]\nclient_id = "X_ID"\nclient_secret = "X_SECRET"\n'
        'refresh_token = "X_REFRESH"\n'
        f'[connections.reseller.options]\nauth_url = "{xarios_url}"\n'
        f'document_tenants = {{ "{DOC}" = "{xarios_sim.tenant_id(0)}" }}\n'
        f'[connections.fin]\nprovider = "fintera"\nbase_url = "{fintera_url}"\n'
        '[connections.fin.secrets]\napi_token = "F_TOKEN"\n'
        f"[connections.fin.options]\naccount_id = 3613\nentity_ids = {ENTITIES}\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
        "GATEWAY_STATE_DIR": str(tmp_path / "state"),
        "GATEWAY_LOG_LEVEL": "warning",
        "REDIS_URL": redis_server.url,
        "H_ID": CLIENT_ID,
        "H_SECRET": CLIENT_SECRET,
        "H_USER": USERNAME,
        "H_PASS": PASSWORD,
        "X_ID": X_ID,
        "X_SECRET": X_SECRET,
        "X_REFRESH": xarios_sim.issue_refresh_token(),
        "F_TOKEN": API_TOKEN,
    }
    ports = [free_port() for _ in range(3)]
    procs = [await launch("serve", "--port", str(port), env=env) for port in ports]
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:  # a start-up that fails must not leave processes behind
        for base, proc in zip(bases, procs, strict=True):
            await healthy(base, proc)
        yield bases
    finally:
        await stop(*procs)


async def test_cold_storm_across_processes_makes_one_call_per_source(
    cluster_of_gateways, hubsoft_sim, xarios_sim, fintera_sim
):
    """300 concurrent cold requests on 3 processes: one upstream call per source, one login."""
    bases = cluster_of_gateways
    for sim in (hubsoft_sim, xarios_sim, fintera_sim):
        sim.board.set("latency", 0.3, times=1)  # keep the first call in flight a while
    headers = {"Authorization": f"Bearer {KEY}"}
    async with aiohttp.ClientSession(headers=headers) as http:

        async def ask(n: int) -> int:
            async with http.get(
                f"{bases[n % 3]}/v1/invoices?customer_document={DOC}"
            ) as resp:
                body = await resp.json()
                assert {s["status"] for s in body["sources"]} == {"ok"}, [
                    s["error"] for s in body["sources"]
                ]
                return resp.status

        statuses = await asyncio.gather(*(ask(n) for n in range(300)))
    assert set(statuses) == {200}
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 1
    assert len(fintera_sim.calls("/people")) == 1
    assert len(xarios_sim.calls("/api/v1.0/billingdata")) == 1
    assert hubsoft_sim.logins == 1
    assert xarios_sim.token_calls == 1


async def test_token_expiring_under_load_is_refreshed_once_in_total(
    cluster_of_gateways, xarios_sim
):
    """Xarios tokens expire while 300 requests for five tenants hit three processes."""
    bases = cluster_of_gateways
    headers = {"Authorization": f"Bearer {KEY}"}
    tenants = [xarios_sim.tenant_id(n) for n in range(5)]
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{bases[0]}/v1/invoices?provider=xarios") as resp:
            assert resp.status == 200
        xarios_sim.expire_access_tokens()
        before = xarios_sim.token_calls

        async def ask(n: int) -> int:
            url = f"{bases[n % 3]}/v1/invoices?connection=reseller&customer_id={tenants[n % 5]}"
            async with http.get(url, headers={"Cache-Control": "no-cache"}) as resp:
                body = await resp.json()
                assert body["sources"][0]["status"] == "ok", body["sources"]
                return resp.status

        statuses = await asyncio.gather(*(ask(n) for n in range(300)))
    assert set(statuses) == {200}
    assert xarios_sim.token_calls - before == 1


async def test_sale_account_writes_show_at_once_on_every_replica(
    cluster_of_gateways, fintera_sim
):
    """POST, PUT and DELETE on one process: the others' list and item agree at once.

    Fintera deletes asynchronously (here: a minute later), and every replica has the list
    cached before each write; neither may make a deleted account linger.
    """
    fintera_sim.delete_delay_s = 60.0
    bases = cluster_of_gateways
    headers = {"Authorization": f"Bearer {KEY}"}
    body = {
        "connection": "fin",
        "name": "Replicada",
        "entity_id": ENTITIES[0],
        "acquirer": "stone",
        "payment_methods": ["pix"],
    }
    async with aiohttp.ClientSession(headers=headers) as http:

        async def names(base: str) -> dict[str, str]:
            async with http.get(f"{base}/v1/sale-accounts?connection=fin") as resp:
                assert resp.status == 200
                return {a["id"]: a["name"] for a in (await resp.json())["data"]}

        async def item(base: str, account_id: str) -> tuple[int, dict]:
            async with http.get(f"{base}/v1/sale-accounts/{account_id}") as resp:
                return resp.status, await resp.json()

        for base in bases:
            await names(base)  # every replica has the list cached
        async with http.post(
            f"{bases[0]}/v1/sale-accounts", json=body, headers={"Idempotency-Key": "r1"}
        ) as resp:
            assert resp.status == 201
            account = await resp.json()
            assert resp.headers["Location"] == f"/v1/sale-accounts/{account['id']}"
        for base in bases:
            assert (await names(base))[account["id"]] == "Replicada"
        async with http.put(
            f"{bases[1]}/v1/sale-accounts/{account['id']}", json={"name": "Renomeada"}
        ) as resp:
            assert resp.status == 200
        for base in bases:
            assert (await names(base))[account["id"]] == "Renomeada"
            assert (await item(base, account["id"]))[1]["name"] == "Renomeada"
        async with http.delete(f"{bases[2]}/v1/sale-accounts/{account['id']}") as resp:
            assert resp.status == 202
        remote = int(account["remote_id"])
        assert remote in fintera_sim.sale_accounts  # upstream still has it, scheduled
        for base in bases:
            assert account["id"] not in await names(base)
            assert (await item(base, account["id"]))[0] == 404

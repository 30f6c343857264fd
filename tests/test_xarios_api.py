"""Xarios through the gateway: mixed lists, filters, detail, PDF streaming, consent CLI."""

from __future__ import annotations

import asyncio
import hashlib
import re
from decimal import Decimal

import aiohttp
import pytest

from adapters.xarios.simulator import CLIENT_ID, CLIENT_SECRET
from gateway.app import token_store
from gateway.cli.auth import _authorize
from gateway.config.load import load_settings
from gateway.state.redis_token_record import RedisTokenStore
from gateway.state.tokenfile import FileTokenStore
from tests.support import (
    API_KEY,
    CURSOR_SECRET,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC = "12345678909"


@pytest.fixture
async def mixed(gateway_factory, hubsoft_url, xarios_url, xarios_sim):
    """A gateway over Hubsoft and Xarios; Xarios tenant 0 mapped to Maria's CPF."""
    xarios = xarios_connection(
        xarios_url,
        xarios_sim.issue_refresh_token(),
        currency="USD",
        options={"document_tenants": {DOC: xarios_sim.tenant_id(0)}},
    )
    return await gateway_factory(make_settings(hubsoft_connection(hubsoft_url), xarios))


async def get_json(client, path, status=200):
    """GET with the test key, assert the status, return the JSON body."""
    resp = await client.get(path, headers=AUTH)
    assert resp.status == status, await resp.text()
    return await resp.json()


async def test_mixed_query_merges_both_providers_in_one_sorted_list(mixed, xarios_sim):
    """One list over two providers; an amount sort groups by currency, then amount."""
    body = await get_json(
        mixed, f"/v1/invoices?customer_document={DOC}&sort=-amount&limit=200"
    )
    providers = {i["provider"] for i in body["data"]}
    assert providers == {"hubsoft", "xarios"}
    order = [(i["currency"], -Decimal(i["amount"])) for i in body["data"]]
    assert order == sorted(order)
    assert body["data"][0]["currency"] == "BRL"  # BRL < USD
    assert {s["status"] for s in body["sources"]} == {"ok"}
    xarios_rows = [i for i in body["data"] if i["provider"] == "xarios"]
    assert len(xarios_rows) == sum(
        1 for b in xarios_sim.bills if b.tenant == xarios_sim.tenant_id(0)
    )
    assert {i["currency"] for i in xarios_rows} == {"USD"}
    assert all(i["status"] == "unknown" and i["due_date"] is None for i in xarios_rows)


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("customer_document=11144477735", "document"),
        (f"customer_document={DOC}&due_from=2026-01-01", "due date"),
        (f"customer_document={DOC}&status=open", "payment status"),
        ("connection=reseller&contract_id=88", "contracts"),
    ],
)
async def test_unanswerable_filters_skip_xarios(mixed, query, reason):
    """Filters Xarios cannot serve mark it `skipped` with the reason."""
    body = await get_json(mixed, f"/v1/invoices?{query}")
    source = next(s for s in body["sources"] if s["connection"] == "reseller")
    assert source["status"] == "skipped"
    assert reason in source["note"]
    assert source["error"] is None


async def test_customer_id_and_billing_period_filters(mixed, xarios_sim):
    """`customer_id` is the tenant; the period filter keeps overlapping periods only."""
    tenant = xarios_sim.tenant_id(1)
    bill = next(b for b in xarios_sim.bills if b.tenant == tenant)
    body = await get_json(
        mixed,
        f"/v1/invoices?connection=reseller&customer_id={tenant}"
        f"&period_from={bill.start}&period_to={bill.start}",
    )
    assert [i["remote_id"] for i in body["data"]] == [bill.id]
    assert body["data"][0]["billing_period"] == {
        "start": str(bill.start),
        "end": str(bill.end),
    }


@pytest.mark.parametrize("lowercase", [False, True])
async def test_one_invoice_has_detail_lines(mixed, xarios_sim, lowercase):
    """The detail ZIP's lines map alike in the example's camelCase and the schema's lowercase."""
    xarios_sim.lowercase_detail = lowercase
    bill = xarios_sim.bills[3]
    inv = await get_json(mixed, f"/v1/invoices/xarios:reseller:{bill.id}")
    expected = xarios_sim.detail_json(bill)["invoiceItems"]
    assert [line["amount"] for line in inv["lines"]] == [
        f"{Decimal(str(i['value'])):.2f}" for i in expected
    ]
    assert all(
        line["description"].startswith(i["productTagName"])
        for line, i in zip(inv["lines"], expected, strict=True)
    )
    assert inv["issue_date"] is not None
    assert inv["customer"]["name"] == bill.tenant_name


async def test_malformed_zip_is_a_provider_error_not_a_500(mixed, xarios_sim):
    """A broken detail ZIP answers 502 naming the connection."""
    xarios_sim.board.set("bad_zip")
    body = await get_json(
        mixed, f"/v1/invoices/xarios:reseller:{xarios_sim.bills[0].id}", 502
    )
    assert body["connection"] == "reseller"
    assert "ZIP" in body["detail"]


async def test_broken_xarios_list_leaves_hubsoft_answering(mixed, xarios_sim):
    """Xarios returning garbage is that source's error; Hubsoft still answers."""
    xarios_sim.board.set("malformed")
    body = await get_json(mixed, f"/v1/invoices?customer_document={DOC}")
    by_conn = {s["connection"]: s["status"] for s in body["sources"]}
    assert by_conn == {"acme-isp": "ok", "reseller": "error"}
    assert body["data"]
    assert body["complete"] is False


async def test_summary_pdf_is_streamed_byte_identical(mixed, xarios_sim):
    """The summary PDF arrives unchanged."""
    bill = xarios_sim.bills[5]
    resp = await mixed.get(
        f"/v1/invoices/xarios:reseller:{bill.id}/document", headers=AUTH
    )
    body = await resp.read()
    assert resp.status == 200
    assert (
        hashlib.sha256(body).digest()
        == hashlib.sha256(xarios_sim.summary_pdf(bill)).digest()
    )
    assert resp.headers["Content-Disposition"] == (
        f'inline; filename="xarios-reseller-{bill.id}.pdf"'
    )
    # Xarios labels it application/octet-stream; the bytes say PDF, so PDF it is.
    assert resp.content_type == "application/pdf"


async def test_a_document_that_is_not_a_pdf_is_a_502(mixed, xarios_sim):
    """Bytes without the PDF magic are never passed on: 502 naming the connection."""
    xarios_sim.board.set("malformed", path=r"/summary$")
    resp = await mixed.get(
        f"/v1/invoices/xarios:reseller:{xarios_sim.bills[5].id}/document", headers=AUTH
    )
    assert resp.status == 502
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["connection"] == "reseller"
    assert "not a PDF" in body["detail"]


@pytest.mark.parametrize("store", ["file", "redis"])
async def test_auth_command_completes_the_code_flow(
    xarios_url, xarios_sim, tmp_path, unused_tcp_port, capsys, request, store
):
    """`auth xarios` prints the URL, gets the redirect, stores the tokens where served.

    With `REDIS_URL` set the consent goes to Redis, where every replica reads it.
    """
    key = hashlib.sha256(b"k").hexdigest()
    conf = tmp_path / "c.toml"
    conf.write_text(
        f'[[api_keys]]\nname = "a"\nsha256 = "{key}"\n'
        f'[connections.reseller]\nprovider = "xarios"\nbase_url = "{xarios_url}"\n'
        '[connections.reseller.secrets]\nclient_id = "X_ID"\nclient_secret = "X_SECRET"\n'
        f'[connections.reseller.options]\nauth_url = "{xarios_url}"\n'
        f'redirect_uri = "http://127.0.0.1:{unused_tcp_port}/callback"\n',
        encoding="utf-8",
    )
    env = {
        "GATEWAY_CONFIG": str(conf),
        "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
        "GATEWAY_STATE_DIR": str(tmp_path / "state"),
        "X_ID": CLIENT_ID,
        "X_SECRET": CLIENT_SECRET,
    }
    if store == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_server").url
    settings = load_settings(env, ["hubsoft", "xarios"])
    flow = asyncio.create_task(_authorize(settings, "xarios", "reseller"))
    url = None
    for _ in range(100):
        await asyncio.sleep(0.02)
        if match := re.search(
            r"(http://\S+/connect/authorize\S+)", capsys.readouterr().out
        ):
            url = match.group(1)
            break
    assert url, "no authorize URL printed"
    async with (
        aiohttp.ClientSession() as human,
        human.get(url) as resp,
    ):  # the human approves
        assert resp.status == 200
        assert "Authorized" in await resp.text()
    await asyncio.wait_for(flow, 5)
    async with token_store(settings) as saved_in:
        token = await saved_in.load("reseller")
    assert isinstance(saved_in, RedisTokenStore if store == "redis" else FileTokenStore)
    assert token is not None
    assert token.refresh is not None
    assert token.refresh.reveal() not in capsys.readouterr().out  # never printed


async def test_upstream_cut_mid_document_cuts_the_client_too(mixed, xarios_sim):
    """Headers went out, then the upstream died: the client must see a broken body."""
    bill = xarios_sim.bills[2]
    xarios_sim.board.set("reset", b"%PDF-1.4\n%\xe2\xe3", path=r"/summary$")
    resp = await mixed.get(
        f"/v1/invoices/xarios:reseller:{bill.id}/document", headers=AUTH
    )
    assert resp.status == 200  # the upstream's headers were fine
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()


async def test_summary_never_invents_zeros_for_unknown_amounts(mixed, xarios_sim):
    """Unknown amounts due/paid are counted apart and their totals are null, not 0.00."""
    body = await get_json(mixed, f"/v1/invoices/summary?customer_document={DOC}")
    by_currency = {t["currency"]: t for t in body["totals"]}
    usd = by_currency["USD"]
    bills = [b for b in xarios_sim.bills if b.tenant == xarios_sim.tenant_id(0)]
    assert usd["count"] == len(bills)
    assert usd["amount_due"] is None
    assert usd["amount_paid"] is None
    assert usd["unknown"] == {
        "amount": 0,
        "amount_due": len(bills),
        "amount_paid": len(bills),
    }
    assert Decimal(usd["amount"]) == sum(Decimal(str(b.value)) for b in bills)
    assert usd["by_status"]["unknown"]["count"] == len(bills)
    brl = by_currency["BRL"]
    assert brl["unknown"] == {"amount": 0, "amount_due": 0, "amount_paid": 0}
    assert Decimal(brl["amount_due"]) >= 0

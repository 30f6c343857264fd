"""The adapter contract: every registered provider, through its own simulator, answers alike.

Parametrized over the registry (plus the tests' own providers, `tests/providers.py`): a
provider joins the suite by its registry line and a `contract.py` beside its simulator.
Each case goes through the real gateway on loopback, except the cache policy's unit half.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from structlog.testing import capture_logs

from gateway.config.settings import Secret
from gateway.invoices.models import InvoiceStatus
from gateway.upstream.providers import InvoiceQuery, SourceResult
from tests.providers import Upstream, provider_names
from tests.support import AUTH, make_settings

CHANGING = {InvoiceStatus.OPEN, InvoiceStatus.OVERDUE}
FAILURES = {
    "status": (503, "unavailable"),
    "hang": (True, "timeout"),
    "malformed": (True, "protocol"),
    "html": (True, "protocol"),
}


@pytest.fixture(params=provider_names())
async def up(request, upstream_factory) -> Upstream:
    """The provider's simulator, running on loopback."""
    return await upstream_factory(request.param)


@pytest.fixture
def gateway_for(gateway_factory, up):
    """A gateway over the one connection, nothing cached unless the adapter says so."""

    async def build(**kw):
        conn_kw = {"timeout_s": 2.0, "cache_fresh_s": 0.0, "cache_stale_s": 0.0, **kw}
        return await gateway_factory(make_settings(up.connection(**conn_kw)))

    return build


def list_path(up: Upstream) -> str:
    """The list route for the contract's customer, on the provider's connection."""
    params = {**up.contract.query, "connection": up.connection_id, "limit": "200"}
    return "/v1/invoices?" + urlencode(params)


def item_path(up: Upstream, suffix: str = "") -> str:
    """The route of the contract's item (canonical id)."""
    provider, item = up.contract.upstream.provider, up.contract.item
    return f"/v1/invoices/{provider}:{up.connection_id}:{item}{suffix}"


async def read_list(client, up: Upstream) -> tuple[int, dict]:
    """Every page of the customer's list: (status of the first answer, merged body)."""
    resp = await client.get(list_path(up), headers=AUTH)
    body = await resp.json()
    first = resp.status
    while resp.status == 200 and body.get("next_cursor"):
        more = f"{list_path(up)}&cursor={body['next_cursor']}"
        resp = await client.get(more, headers=AUTH)
        page = await resp.json()
        body = {**page, "data": body["data"] + page["data"]}
    return first, body


def source(body: dict) -> dict:
    """The one source of a response."""
    (only,) = body["sources"]
    return only


def strangers(up: Upstream, body: dict) -> list[dict]:
    """Served invoices whose customer is not the one the contract's query names."""
    fields = {"customer_id": "remote_id", "customer_document": "document"}
    return [
        inv
        for inv in body["data"]
        if any(inv["customer"][fields[k]] != v for k, v in up.contract.query.items())
    ]


def remote_ids(body: dict) -> list[str]:
    """Remote ids of the invoices served, in order."""
    return [inv["remote_id"] for inv in body["data"]]


async def test_list_pages_to_the_end_without_duplicates(gateway_for, up):
    """The customer's whole list comes back, once each, over the upstream's pages."""
    client = await gateway_for()
    status, body = await read_list(client, up)
    assert status == 200, body
    ids = remote_ids(body)
    assert len(ids) == len(set(ids))
    assert set(ids) == up.contract.expected
    assert not strangers(up, body)
    assert source(body)["status"] == "ok"
    assert source(body)["complete"] is True
    assert up.calls(up.contract.list_path) >= up.contract.min_list_calls


async def test_get_reads_one_invoice(gateway_for, up):
    """One invoice by canonical id, with its identity; an id that does not exist is 404."""
    client = await gateway_for()
    resp = await client.get(item_path(up), headers=AUTH)
    body = await resp.json()
    assert resp.status == 200, body
    assert body["remote_id"] == up.contract.item
    assert body["connection"] == up.connection_id
    assert body["provider"] == up.contract.upstream.provider
    missing = await client.get(
        item_path(up).rsplit(":", 1)[0] + ":999999", headers=AUTH
    )
    assert missing.status == 404


async def test_document_is_a_pdf_or_a_404(gateway_for, up):
    """A document streams as a well-formed PDF; a provider without documents says 404."""
    client = await gateway_for()
    resp = await client.get(item_path(up, "/document"), headers=AUTH)
    if not up.contract.has_documents:
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
        return
    pdf = await resp.read()
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert pdf.startswith(b"%PDF-")
    assert pdf.rstrip().endswith(b"%%EOF")
    xref = int(re.findall(rb"startxref\s+(\d+)", pdf)[-1])
    assert pdf[xref : xref + 4] == b"xref"  # the cross-reference table is where it says


async def test_unknown_upstream_status_maps_to_unknown(gateway_for, up):
    """A status word nobody mapped reads `unknown`, and then no amount due is claimed."""
    client = await gateway_for()
    if up.contract.unknown_status is not None:
        up.set_fault(
            "rewrite_rows", up.contract.unknown_status, path=up.contract.list_path
        )
    status, body = await read_list(client, up)
    assert status == 200, body
    assert body["data"]
    for invoice in body["data"]:
        assert invoice["status"] == "unknown", invoice
        assert invoice["amount_due"] is None
        if up.contract.unknown_status is not None:
            assert invoice["remote_status"] is not None


async def test_401_refreshes_once_and_retries_once(gateway_for, up):
    """A rejected token costs one token call and one retry; static credentials fail at once."""
    client = await gateway_for()
    lists, tokens = up.contract.list_path, up.contract.token_path or r"^$"
    await read_list(client, up)
    before = up.calls(lists)
    await read_list(client, up)
    per_read = up.calls(lists) - before
    before_lists, before_tokens = up.calls(lists), up.calls(tokens)
    up.set_fault("unauthorized", times=1, path=lists)
    status, body = await read_list(client, up)
    if up.contract.token_path is None:
        assert source(body)["error"]["type"] == "auth", body
        assert up.calls(lists) - before_lists <= per_read  # no retry
        return
    assert status == 200, body
    assert set(remote_ids(body)) == up.contract.expected
    assert up.calls(tokens) - before_tokens == 1
    assert up.calls(lists) - before_lists == per_read + 1


async def test_refused_credentials_fail_without_a_storm(gateway_for, up):
    """Wrong secrets: an `auth` error naming the connection, after a handful of calls."""
    wrong = {
        k: Secret("wrong-" + v.reveal()) for k, v in up.connection().secrets.items()
    }
    client = await gateway_for(secrets=wrong)
    for attempt in (1, 2):
        resp = await client.get(list_path(up), headers=AUTH)
        body = await resp.json()
        assert resp.status == 502, body
        assert source(body)["error"]["type"] == "auth"
        assert up.connection_id in source(body)["error"]["detail"]
        assert up.calls() <= 2 * attempt  # a login (and one fallback), never a loop


@pytest.mark.parametrize("fault", sorted(FAILURES))
async def test_upstream_failure_is_a_typed_source_error(gateway_for, up, fault):
    """503, no answer, garbage: the source fails with its type, the caller gets a problem."""
    client = await gateway_for(timeout_s=0.3, retry_attempts=1)
    value, kind = FAILURES[fault]
    up.set_fault(fault, value)
    resp = await client.get(list_path(up), headers=AUTH)
    body = await resp.json()
    assert resp.status in {502, 504}, body
    assert resp.content_type == "application/problem+json"
    assert source(body)["error"]["type"] == kind
    assert up.connection_id in source(body)["error"]["detail"]


async def test_malformed_row_is_dropped_and_counted(gateway_for, up):
    """One unreadable row leaves the list, is counted in the note, the source incomplete."""
    client = await gateway_for()
    up.set_fault("rewrite_row", up.contract.bad_value, 1, path=up.contract.list_path)
    status, body = await read_list(client, up)
    assert status == 200, body
    ids = set(remote_ids(body))
    assert ids < up.contract.expected
    assert len(ids) == len(up.contract.expected) - 1
    assert source(body)["complete"] is False
    assert "1 row(s) unreadable" in source(body)["note"]


async def test_malformed_item_is_a_502_naming_the_connection(gateway_for, up):
    """An unreadable single record is the connection's fault: 502 problem, named."""
    client = await gateway_for()
    up.set_fault("rewrite", up.contract.bad_value)
    resp = await client.get(item_path(up), headers=AUTH)
    body = await resp.json()
    assert resp.status == 502, body
    assert resp.content_type == "application/problem+json"
    assert up.connection_id in body["detail"]


async def test_rows_of_another_customer_are_never_served(
    gateway_for, make_provider, upstream_factory, up
):
    """When the upstream answers others' rows, none is served; a count says so if any.

    Checked through the gateway and of the adapter alone (the core filters by document
    too, so the adapter's own re-check is only visible there).
    """
    name, value = up.contract.foreign_rows
    client = await gateway_for()
    up.set_fault(name, value, path=up.contract.list_path)
    status, body = await read_list(client, up)
    assert status == 200, body
    assert body["data"]
    assert set(remote_ids(body)) <= up.contract.expected
    assert not strangers(up, body)
    twin = await upstream_factory(up.name)
    twin.set_fault(name, value, path=twin.contract.list_path)
    result = await make_provider(twin.connection()).list_invoices(
        InvoiceQuery(**twin.contract.query)
    )
    alone = {"data": [inv.to_dict() for inv in result.invoices]}
    assert alone["data"]
    assert not strangers(twin, alone)
    for outcome in (source(body), {"complete": result.complete, "note": result.note}):
        if not outcome["complete"]:
            assert "other customers" in outcome["note"]


async def test_cache_lifetimes_follow_the_adapters_policy(
    gateway_for, make_provider, upstream_factory, up
):
    """Lists and changing invoices keep the configured lifetimes; longer ones are honoured.

    What the adapter keeps longer (settled, immutable) is served without an upstream call.
    """
    # The adapter alone reads its own simulator: a consent's rotating token has one holder.
    twin = await upstream_factory(up.name)
    adapter = make_provider(twin.connection())
    result = await adapter.list_invoices(InvoiceQuery(**up.contract.query))
    assert adapter.cache_ttl("invoices", result) is None
    for invoice in result.invoices:
        ttl = adapter.cache_ttl("invoice", SourceResult((invoice,)))
        if invoice.status in CHANGING:
            assert ttl is None, invoice
        elif ttl is not None:
            assert 0 < ttl[0] <= ttl[1]
    item = next(i for i in result.invoices if i.remote_id == up.contract.item)
    kept = adapter.cache_ttl("invoice", SourceResult((item,)))
    client = await gateway_for()
    assert (await client.get(item_path(up), headers=AUTH)).status == 200
    before = up.calls()
    assert (await client.get(item_path(up), headers=AUTH)).status == 200
    assert (up.calls() == before) is (kept is not None and kept[0] > 0)


async def test_no_secret_in_any_error_answer_or_log(gateway_for, up):
    """Refusals, failures and broken records: no secret in an answer or a log line."""
    wrong = {
        k: Secret("wrong-" + v.reveal()) for k, v in up.connection().secrets.items()
    }
    secrets = up.secret_values() + [s.reveal() for s in wrong.values()]
    texts = []
    with capture_logs() as logs:
        refused = await gateway_for(secrets=wrong, timeout_s=0.3, retry_attempts=1)
        texts.append(await (await refused.get(list_path(up), headers=AUTH)).text())
        client = await gateway_for(timeout_s=0.3, retry_attempts=1)
        up.set_fault("unauthorized", times=1, path=up.contract.list_path)
        texts.append(await (await client.get(list_path(up), headers=AUTH)).text())
        up.set_fault("rewrite", up.contract.bad_value)
        texts.append(await (await client.get(item_path(up), headers=AUTH)).text())
        up.set_fault("status", 503)
        texts.append(await (await client.get(list_path(up), headers=AUTH)).text())
    texts += [repr(event) for event in logs]
    assert any("error" in text for text in texts)
    for secret in secrets:
        assert not [t for t in texts if secret in t], f"a secret of {up.name} leaked"

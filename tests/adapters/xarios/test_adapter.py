"""The Xarios adapter and its token rotation against the simulator on loopback."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from adapters.xarios.simulator import CLIENT_ID, CLIENT_SECRET
from gateway.errors import NotFoundError, UpstreamAuthError, UpstreamNotFoundError
from gateway.state.tokenfile import FileTokenStore
from gateway.state.tokens import LocalTokenProvider
from gateway.upstream.providers import InvoiceQuery
from tests.support import xarios_connection


@pytest.fixture
def make_adapter(make_provider, xarios_url, xarios_sim):
    """Adapters for a consented connection; tokens shared unless a provider is given."""
    refresh = xarios_sim.issue_refresh_token()
    shared = LocalTokenProvider()

    def build(tokens=None, refresh_token=refresh, **kw):
        conn = xarios_connection(xarios_url, refresh_token, **kw)
        return make_provider(conn, tokens or shared)

    build.refresh = refresh
    return build


async def refresh_grant(url: str, refresh: str) -> int:
    """Present a refresh token directly to the identity server; return the status."""
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(url + "/connect/token", data=form) as r,
    ):
        return r.status


async def test_each_refresh_uses_the_latest_token_and_reuse_fails(
    make_adapter, xarios_sim, xarios_url
):
    """Rotation: every refresh presents the newest refresh token; an old one is refused."""
    tokens = LocalTokenProvider()
    adapter = make_adapter(tokens)
    await adapter.list_invoices(InvoiceQuery())
    first = tokens._tokens["reseller"].refresh.reveal()
    assert first != make_adapter.refresh  # rotated on the first refresh
    for _ in range(3):
        xarios_sim.expire_access_tokens()
        await adapter.list_invoices(InvoiceQuery())
    # Four refreshes, all accepted: presenting any but the newest would have voided it.
    assert xarios_sim.token_calls == 4
    latest = tokens._tokens["reseller"].refresh.reveal()
    assert await refresh_grant(xarios_url, first) == 400  # reuse of a rotated token
    assert (
        await refresh_grant(xarios_url, latest) == 400
    )  # reuse voided the whole consent


async def test_many_concurrent_requests_at_expiry_cause_one_refresh(
    make_adapter, xarios_sim
):
    """200 concurrent calls with an expired access token share a single refresh."""
    adapter = make_adapter()
    await adapter.list_invoices(InvoiceQuery())
    ids = [b.id for b in xarios_sim.bills][:50]
    xarios_sim.expire_access_tokens()
    before = xarios_sim.token_calls
    results = await asyncio.gather(
        *(adapter.get_invoice(ids[n % 50]) for n in range(200))
    )
    assert len(results) == 200
    assert xarios_sim.token_calls - before == 1


async def test_401_mid_life_refreshes_once_and_retries_once(make_adapter, xarios_sim):
    """A 401 before expiry drops the access token, refreshes once, retries once."""
    adapter = make_adapter()
    await adapter.list_invoices(InvoiceQuery())
    before_tokens, before_lists = (
        xarios_sim.token_calls,
        len(xarios_sim.calls("/billingdata")),
    )
    xarios_sim.board.set("unauthorized", times=1)
    result = await adapter.list_invoices(InvoiceQuery())
    assert result.invoices
    assert xarios_sim.token_calls - before_tokens == 1
    assert len(xarios_sim.calls("/billingdata")) - before_lists == 2


async def test_refused_consent_says_how_to_fix_it(make_adapter, xarios_sim):
    """A dead refresh token is an auth error naming the re-consent command."""
    adapter = make_adapter(refresh_token="rt_never_issued")
    with pytest.raises(
        UpstreamAuthError, match="invoice-gateway auth xarios --connection reseller"
    ):
        await adapter.list_invoices(InvoiceQuery())


async def test_rotated_token_is_persisted_before_use_and_survives_restart(
    make_adapter, xarios_sim, tmp_path
):
    """The store holds the newest refresh token; a new process continues from it."""
    store = FileTokenStore(tmp_path)
    adapter = make_adapter(LocalTokenProvider(store=store))
    await adapter.list_invoices(InvoiceQuery())
    saved = await store.load("reseller")
    assert saved.refresh.reveal() != make_adapter.refresh
    assert (tmp_path / "reseller.token.json").stat().st_mode & 0o777 == 0o600
    xarios_sim.expire_access_tokens()
    restarted = make_adapter(
        LocalTokenProvider(store=store)
    )  # env still holds the old one
    assert (await restarted.list_invoices(InvoiceQuery())).invoices
    assert (await store.load("reseller")).refresh != saved.refresh


async def test_get_invoice_maps_detail_zip_lines(make_adapter, xarios_sim):
    """One invoice carries its detail ZIP's items and invoice date."""
    bill = xarios_sim.bills[7]
    inv = await make_adapter().get_invoice(bill.id)
    detail = xarios_sim.detail_json(bill)
    assert [line.description.split(" #")[0] for line in inv.lines] == [
        name for name, _, _ in bill.items
    ]
    assert sum(line.amount for line in inv.lines) == pytest.approx(bill.value)
    assert inv.issue_date.isoformat() == detail["invoiceDate"][:10]
    assert inv.customer.name == bill.tenant_name


async def test_unknown_invoice_is_not_found(make_adapter):
    """The documented 404 envelope becomes not-found; odd ids never reach the upstream."""
    adapter = make_adapter()
    with pytest.raises(UpstreamNotFoundError):
        await adapter.get_invoice("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFoundError):
        await adapter.get_invoice("../../connect/token")


async def test_customer_id_and_document_mapping_select_tenants(
    make_adapter, xarios_sim
):
    """`customer_id` is the tenant id; a mapped document selects its tenants."""
    tenant = xarios_sim.tenant_id(2)
    doc = "12345678909"
    adapter = make_adapter(options={"document_tenants": {doc: tenant}})
    by_id = await adapter.list_invoices(InvoiceQuery(customer_id=tenant))
    by_doc = await adapter.list_invoices(InvoiceQuery(customer_document=doc))
    wanted = {b.id for b in xarios_sim.bills if b.tenant == tenant}
    assert {i.remote_id for i in by_id.invoices} == wanted
    assert {i.remote_id for i in by_doc.invoices} == wanted
    assert {i.customer.document for i in by_doc.invoices} == {doc}
    assert (
        adapter.unsupported(InvoiceQuery(customer_document="11144477735")) is not None
    )

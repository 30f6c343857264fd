"""The Hubsoft adapter against its simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import date, timedelta

import pytest

from adapters.hubsoft.adapter import create
from adapters.hubsoft.simdata import HEAVY_CODE, SimInvoice
from gateway.config.settings import Secret
from gateway.errors import (
    ConfigError,
    NotFoundError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRejectedError,
    UpstreamUnavailableError,
)
from gateway.invoices.models import InvoiceStatus
from gateway.state.tokens import LocalTokenProvider
from gateway.upstream.providers import InvoiceQuery, ProviderContext
from tests.support import NOW, TODAY, hubsoft_connection


@pytest.fixture
def make_adapter(make_provider, hubsoft_url):
    """Adapters for `acme-isp` sharing one token provider (the shared `make_provider`)."""
    tokens = LocalTokenProvider()

    def build(**overrides):
        conn = hubsoft_connection(
            hubsoft_url, timeout_s=overrides.pop("timeout_s", 5.0)
        )
        if "secrets" in overrides:
            conn = dataclasses.replace(conn, secrets=overrides.pop("secrets"))
        return make_provider(conn, tokens)

    return build


@pytest.fixture
def adapter(make_adapter):
    """The default adapter for `acme-isp`."""
    return make_adapter()


def expected_ids(sim, code: str, *, paid: bool = True) -> set[str]:
    """Remote ids the simulator holds for a customer."""
    return {
        f"{code}-{inv.id}"
        for inv in sim.invoices
        if inv.customer.code == code and (paid or inv.paid_on is None)
    }


async def test_paid_invoices_are_returned(adapter, hubsoft_sim):
    """Upstream defaults to pending-only; an unfiltered query still gets the paid ones."""
    result = await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    statuses = {inv.status for inv in result.invoices}
    assert InvoiceStatus.PAID in statuses
    assert {inv.remote_id for inv in result.invoices} == expected_ids(
        hubsoft_sim, "1099"
    )
    assert (
        hubsoft_sim.calls("/cliente/financeiro")[0]["query"]["apenas_pendente"] == "nao"
    )


async def test_pending_filter_asks_upstream_for_pending_only(adapter, hubsoft_sim):
    """Asking only for open/overdue lets the upstream filter (`apenas_pendente=sim`)."""
    query = InvoiceQuery(
        customer_id="1099", statuses=frozenset({InvoiceStatus.OVERDUE})
    )
    result = await adapter.list_invoices(query)
    assert {inv.remote_id for inv in result.invoices} == expected_ids(
        hubsoft_sim, "1099", paid=False
    )
    assert (
        hubsoft_sim.calls("/cliente/financeiro")[0]["query"]["apenas_pendente"] == "sim"
    )


async def test_fifty_row_cap_is_paged_around_not_truncated(adapter, hubsoft_sim):
    """A customer with 70+ invoices comes back whole, over several 50-row calls."""
    wanted = expected_ids(hubsoft_sim, HEAVY_CODE)
    assert len(wanted) > 50
    result = await adapter.list_invoices(InvoiceQuery(customer_id=HEAVY_CODE))
    ids = [inv.remote_id for inv in result.invoices]
    assert len(ids) == len(set(ids))
    assert set(ids) == wanted
    assert result.complete
    assert len(hubsoft_sim.calls("/cliente/financeiro")) >= 2
    assert all(
        c["query"]["limit"] == "50" for c in hubsoft_sim.calls("/cliente/financeiro")
    )


async def test_more_than_fifty_on_one_day_marks_source_incomplete(adapter, hubsoft_sim):
    """When paging cannot progress (51+ due the same day) the result says so."""
    cust = next(c for c in hubsoft_sim.people if c.code == "2005")
    day = date(2026, 12, 1)
    hubsoft_sim.invoices.extend(
        SimInvoice(
            90000 + i, cust, day, day, hubsoft_sim.invoices[0].amount, "pix", str(i)
        )
        for i in range(60)
    )
    result = await adapter.list_invoices(InvoiceQuery(customer_id="2005"))
    assert not result.complete
    assert "2026-12-01" in result.note
    assert len(result.invoices) >= 50


async def test_search_by_document_and_by_service(adapter, hubsoft_sim):
    """`cpf_cnpj` and `id_cliente_servico` searches reach the same invoices."""
    cust = hubsoft_sim.people[3]
    by_doc = await adapter.list_invoices(InvoiceQuery(customer_document=cust.document))
    by_svc = await adapter.list_invoices(InvoiceQuery(contract_id=str(cust.service_id)))
    assert {i.remote_id for i in by_doc.invoices} == expected_ids(
        hubsoft_sim, cust.code
    )
    assert {i.remote_id for i in by_svc.invoices} == expected_ids(
        hubsoft_sim, cust.code
    )
    assert {c["query"]["busca"] for c in hubsoft_sim.calls("/cliente/financeiro")} == {
        "cpf_cnpj",
        "id_cliente_servico",
    }


async def test_due_window_is_passed_upstream(adapter, hubsoft_sim):
    """Due-date bounds go upstream as `data_inicio`/`data_fim` on `data_vencimento`."""
    query = InvoiceQuery(
        customer_id=HEAVY_CODE, due_from=date(2025, 1, 1), due_to=date(2025, 6, 30)
    )
    result = await adapter.list_invoices(query)
    assert result.invoices
    assert all(
        date(2025, 1, 1) <= i.due_date <= date(2025, 6, 30) for i in result.invoices
    )
    call = hubsoft_sim.calls("/cliente/financeiro")[0]["query"]
    assert (call["data_inicio"], call["data_fim"], call["tipo_data"]) == (
        "2025-01-01",
        "2025-06-30",
        "data_vencimento",
    )


async def test_token_is_reused_across_calls(adapter, hubsoft_sim):
    """One login serves many calls while the token lives."""
    for code in ("1099", "2002", "2003"):
        await adapter.list_invoices(InvoiceQuery(customer_id=code))
    assert hubsoft_sim.logins == 1


async def test_revoked_token_causes_one_relogin_for_many_concurrent_callers(
    adapter, hubsoft_sim
):
    """N callers hitting a revoked token share a single new login, then all succeed."""
    await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    hubsoft_sim.revoke_tokens()
    results = await asyncio.gather(
        *(
            adapter.list_invoices(InvoiceQuery(customer_id=str(2000 + n)))
            for n in range(2, 22)
        )
    )
    assert all(r.invoices for r in results)
    assert hubsoft_sim.logins == 2


async def test_expired_token_is_replaced_before_use(make_adapter, hubsoft_sim):
    """A token past its lifetime (minus skew) is renewed without a 401 round trip."""
    hubsoft_sim.token_lifetime_s = 1
    adapter = make_adapter()
    await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    await asyncio.sleep(1.1)
    await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    assert hubsoft_sim.logins == 2
    assert (
        len(hubsoft_sim.calls("/cliente/financeiro")) == 2
    )  # no rejected call in between


async def test_persistent_401_is_an_auth_error_after_one_retry(adapter, hubsoft_sim):
    """If even a fresh token is refused, the call fails as auth error (no loop)."""
    hubsoft_sim.set_fault("unauthorized")
    with pytest.raises(UpstreamAuthError):
        await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 2
    assert hubsoft_sim.logins == 2


async def test_wrong_credentials_are_an_auth_error_without_secrets(make_adapter):
    """A refused login names the connection, not the password."""
    adapter = make_adapter(
        secrets={
            "client_id": Secret("x"),
            "client_secret": Secret("nope-secret"),
            "username": Secret("u@x"),
            "password": Secret("hunter2"),
        }
    )
    with pytest.raises(UpstreamAuthError) as info:
        await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    assert "acme-isp" in str(info.value)
    assert "hunter2" not in str(info.value)
    assert "nope-secret" not in str(info.value)


async def test_envelope_error_in_http_200_is_an_error(adapter, hubsoft_sim):
    """`status: error` inside a 200 is rejected, message kept."""
    hubsoft_sim.set_fault("envelope_error")
    with pytest.raises(UpstreamRejectedError, match="Erro interno"):
        await adapter.list_invoices(InvoiceQuery(customer_id="1099"))


async def test_malformed_body_is_a_protocol_error(adapter, hubsoft_sim):
    """Truncated JSON never leaks an orjson exception."""
    hubsoft_sim.set_fault("malformed")
    with pytest.raises(UpstreamProtocolError):
        await adapter.list_invoices(InvoiceQuery(customer_id="1099"))


async def test_html_5xx_is_unavailable_after_a_retry(adapter, hubsoft_sim):
    """A 503 HTML page is retried once, then reported unavailable."""
    hubsoft_sim.set_fault("status", 503)
    with pytest.raises(UpstreamUnavailableError):
        await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 2


async def test_transient_5xx_is_retried_to_success(adapter, hubsoft_sim):
    """One failed read followed by a good one is a success."""
    hubsoft_sim.set_fault("status", 502, times=1)
    result = await adapter.list_invoices(InvoiceQuery(customer_id="1099"))
    assert result.invoices


async def test_slow_upstream_is_a_timeout_error(make_adapter, hubsoft_sim):
    """No answer within the connection timeout becomes an UpstreamError of kind timeout."""
    adapter = make_adapter(timeout_s=0.2)
    await adapter.list_invoices(InvoiceQuery(customer_id="1099"))  # log in first
    hubsoft_sim.set_fault("latency", 1.0)
    with pytest.raises(UpstreamError) as info:
        await adapter.list_invoices(InvoiceQuery(customer_id="2002"))
    assert info.value.error_type == "timeout"


async def test_tenant_wide_window_is_split_into_thirty_day_calls(adapter, hubsoft_sim):
    """Without a customer, `/financeiro/fatura` is read in <=30-day windows, every page."""
    start, end = TODAY - timedelta(days=89), TODAY
    result = await adapter.list_invoices(InvoiceQuery(due_from=start, due_to=end))
    wanted = {inv.id for inv in hubsoft_sim.invoices if start <= inv.due <= end}
    assert {int(i.remote_id.split("-")[1]) for i in result.invoices} == wanted
    calls = hubsoft_sim.calls("/financeiro/fatura")
    assert len(calls) >= 3
    for c in calls:
        span = date.fromisoformat(c["query"]["data_fim"]) - date.fromisoformat(
            c["query"]["data_inicio"]
        )
        assert span.days < 30


def test_unsupported_queries_are_named(adapter):
    """No customer and no bounded window: the source is skipped with a reason."""
    assert adapter.unsupported(InvoiceQuery()) is not None
    assert adapter.unsupported(InvoiceQuery(due_from=TODAY, due_to=TODAY)) is None
    wide = InvoiceQuery(due_from=date(2020, 1, 1), due_to=TODAY)
    assert "366" in adapter.unsupported(wide)


async def test_get_invoice_by_remote_id_including_paid(adapter, hubsoft_sim):
    """The remote id carries the customer, so one invoice can be found again."""
    inv = next(
        i for i in hubsoft_sim.invoices if i.customer.code == HEAVY_CODE and i.paid_on
    )
    found = await adapter.get_invoice(f"{HEAVY_CODE}-{inv.id}")
    assert found.status is InvoiceStatus.PAID
    assert found.due_date == inv.due


@pytest.mark.parametrize("remote_id", ["1099-1", "nonsense", "1099-", "x1-2"])
async def test_get_unknown_invoice_is_not_found(adapter, remote_id):
    """Absent or malformed ids are NotFoundError."""
    with pytest.raises(NotFoundError):
        await adapter.get_invoice(remote_id)


def test_missing_secrets_are_config_errors(hubsoft_url):
    """A connection without its credentials is refused at start, each missing one named."""
    conn = dataclasses.replace(hubsoft_connection(hubsoft_url), secrets={})
    ctx = ProviderContext(conn, None, LocalTokenProvider(), now=lambda: NOW)  # type: ignore[arg-type]
    with pytest.raises(ConfigError) as info:
        create(ctx)
    assert len(info.value.problems) == 4

"""The Fintera adapter against its simulator over loopback."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import pytest

from gateway.config.settings import Secret
from gateway.errors import (
    UpstreamAuthError,
    UpstreamConfigError,
    UpstreamRejectedError,
)
from gateway.invoices.models import InvoiceStatus
from gateway.upstream.providers import InvoiceQuery
from tests.support import fintera_connection

DOC = "12345678909"


@pytest.fixture
def make_adapter(make_provider, fintera_url):
    """Adapters for `fin`; `limit` paces calls like a configured connection."""

    def build(limit=None, window=60.0, **kw):
        conn = fintera_connection(fintera_url, **kw)
        return make_provider(conn, limit=limit, window=window)

    return build


def maria_rows(sim):
    """The simulator's receivables of the seeded customer with CPF 12345678909."""
    return [r for r in sim.receivables if r["person_id"] == 1001]


async def test_document_lookup_then_receivables_from_every_entity(
    make_adapter, fintera_sim
):
    """A CPF is found among people (formatted) and its receivables come from both entities."""
    result = await make_adapter().list_invoices(InvoiceQuery(customer_document=DOC))
    assert {i.remote_id for i in result.invoices} == {
        f"{r['entity_id']}-{r['id']}" for r in maria_rows(fintera_sim)
    }
    assert {i.customer.name for i in result.invoices} == {"Maria Silva"}
    people = fintera_sim.calls("/people")[0]["query"]
    assert people["search[federation_subscription_number_equals]"] == "123.456.789-09"
    assert {i.status for i in result.invoices} >= {InvoiceStatus.PAID}


async def test_pagination_follows_link_across_many_pages(make_adapter, fintera_sim):
    """Three rows a page: every row, once, by following `next` to the end."""
    fintera_sim.max_per_page = 3
    result = await make_adapter().list_invoices(InvoiceQuery(customer_id="1001"))
    ids = [i.remote_id for i in result.invoices]
    assert len(ids) == len(set(ids)) == len(maria_rows(fintera_sim))
    assert len(fintera_sim.calls("/receivable_accounts")) >= len(ids) // 3


async def test_past_the_end_empty_page_ends_the_walk(make_adapter, fintera_sim):
    """An upstream that links `next` from its last page: the `[]` page stops the loop."""
    fintera_sim.max_per_page = 4
    fintera_sim.stale_next = True
    result = await make_adapter().list_invoices(InvoiceQuery(customer_id="1001"))
    assert len(result.invoices) == len(maria_rows(fintera_sim))
    assert result.complete


async def test_due_window_goes_upstream_in_fintera_format(make_adapter, fintera_sim):
    """Due bounds are sent as search[due_date_gte|lte] in dd/mm/yyyy."""
    query = InvoiceQuery(
        customer_id="1001", due_from=date(2026, 1, 1), due_to=date(2026, 6, 30)
    )
    result = await make_adapter().list_invoices(query)
    assert all(
        date(2026, 1, 1) <= i.due_date <= date(2026, 6, 30) for i in result.invoices
    )
    sent = fintera_sim.calls("/receivable_accounts")[0]["query"]
    assert (sent["search[due_date_gte]"], sent["search[due_date_lte]"]) == (
        "01/01/2026",
        "30/06/2026",
    )


async def test_xml_answers_are_read_too(make_adapter, fintera_sim):
    """When the upstream answers XML, the same invoices come out."""
    fintera_sim.force_xml = True
    result = await make_adapter().list_invoices(InvoiceQuery(customer_document=DOC))
    assert len(result.invoices) == len(maria_rows(fintera_sim))


async def test_burst_stays_under_the_rate_limit(make_adapter, fintera_sim):
    """40 calls (20 invoices + their people) at a 10-per-second upstream: paced, no 429."""
    fintera_sim.rate_limit, fintera_sim.rate_window_s = 10, 1.0
    adapter = make_adapter(limit=10, window=1.0)
    ids = [f"{r['entity_id']}-{r['id']}" for r in fintera_sim.receivables[:20]]
    results = await asyncio.gather(*(adapter.get_invoice(i) for i in ids))
    assert len(results) == 20
    assert fintera_sim.throttled == 0


async def test_remaining_zero_waits_for_reset_instead_of_hitting_429(
    make_adapter, fintera_sim
):
    """Without a configured limit, X-RateLimit-Remaining: 0 holds calls until the reset."""
    fintera_sim.rate_limit, fintera_sim.rate_window_s = 3, 1.0
    adapter = make_adapter()
    ids = [f"{r['entity_id']}-{r['id']}" for r in fintera_sim.receivables[:4]]
    results = [
        await adapter.get_invoice(i) for i in ids
    ]  # 2 calls each: receivable + person
    assert len(results) == 4
    assert fintera_sim.throttled == 0


async def test_429_from_someone_elses_burst_is_waited_out(make_adapter, fintera_sim):
    """The window was used up by another client: the 429's Retry-After is honoured."""
    fintera_sim.rate_limit, fintera_sim.rate_window_s = 3, 1.0
    fintera_sim._window_start, fintera_sim._window_count = time.time(), 3
    row = fintera_sim.receivables[0]
    invoice = await make_adapter().get_invoice(f"{row['entity_id']}-{row['id']}")
    assert invoice.remote_id.endswith(str(row["id"]))
    assert fintera_sim.throttled == 1


async def test_html_401_is_an_auth_error_not_retried(make_adapter, fintera_sim):
    """A wrong token: HTML 401, one call per entity, no second try with the same token."""
    adapter = make_adapter(secrets={"api_token": Secret("wrong")})
    with pytest.raises(UpstreamAuthError):
        await adapter.list_invoices(InvoiceQuery(customer_id="1001"))
    assert (
        len(fintera_sim.calls("/receivable_accounts")) == 2
    )  # two entities, once each


@pytest.mark.parametrize(
    ("fault", "words"),
    [("overdue", "subscription overdue"), ("no_api", "no API access")],
)
async def test_402_and_403_are_clear_account_problems(
    make_adapter, fintera_sim, fault, words
):
    """402/403 say what the account owner must fix, and are not retried."""
    fintera_sim.board.set(fault)
    with pytest.raises(UpstreamRejectedError, match=words):
        await make_adapter().list_invoices(InvoiceQuery(customer_id="1001"))
    assert (
        len(fintera_sim.calls("/receivable_accounts")) == 2
    )  # two entities, once each


async def test_missing_account_id_is_reported(make_adapter, fintera_url):
    """A multi-account token without ACCOUNT_ID: a config error naming the accounts."""
    adapter = make_adapter(options={"account_id": None})
    with pytest.raises(UpstreamConfigError) as info:
        await adapter.list_invoices(InvoiceQuery(customer_id="1001"))
    assert info.value.error_type == "config"
    assert "set options.account_id to one of: 3613" in str(info.value)

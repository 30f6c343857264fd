"""A Fintera person is matched to the asked document by the adapter, not by the search.

The receivables are fetched per person id the `/people` search answers; an upstream is
never trusted to have filtered, so a person whose record does not carry the asked
document (another one, or none at all) must not lend its receivables to the query.
"""

from __future__ import annotations

from gateway.upstream.providers import InvoiceQuery
from tests.support import AUTH, fintera_connection, make_settings

DOC = "12345678909"
OTHER = 1002  # "Cliente 01", another seeded person with receivables
BLANK = {
    "id": OTHER,
    "federation_subscription_number": None,
    "federation_subscription_number_only_numbers": None,
}


async def test_a_person_without_the_asked_document_lends_no_invoice(
    make_provider, fintera_sim, fintera_url
):
    """The search answers someone with no document on file: none of theirs is served."""
    fintera_sim.board.set("rewrite_rows", BLANK, path=r"^/people")
    adapter = make_provider(fintera_connection(fintera_url))
    result = await adapter.list_invoices(InvoiceQuery(customer_document=DOC))
    assert not [i for i in result.invoices if i.customer.remote_id == str(OTHER)]
    assert result.complete is False
    assert "other customers" in (result.note or "")


async def test_through_the_gateway_an_api_key_gets_none_of_their_invoices(
    gateway_factory, fintera_sim, fintera_url
):
    """The core lets an unknown document pass; the adapter is what keeps them out."""
    client = await gateway_factory(make_settings(fintera_connection(fintera_url)))
    fintera_sim.board.set("rewrite_rows", BLANK, path=r"^/people")
    resp = await client.get(f"/v1/invoices?customer_document={DOC}", headers=AUTH)
    body = await resp.json()
    assert resp.status == 200, body
    theirs = [r["id"] for r in fintera_sim.receivables if r["person_id"] == OTHER]
    served = {inv["remote_id"].rsplit("-", 1)[-1] for inv in body["data"]}
    assert not served & {str(i) for i in theirs}, "another person's invoices served"

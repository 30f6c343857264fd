"""One customer across all three providers: one merged, sorted, paged list."""

from __future__ import annotations

from tests.support import AUTH, DOC, make_settings


async def test_same_cpf_in_hubsoft_fintera_and_xarios_merges(
    gateway_factory, demo_connections, hubsoft_sim, fintera_sim, xarios_sim
):
    """Maria's CPF: Hubsoft, Fintera and the mapped Xarios tenant in one due-date order."""
    client = await gateway_factory(make_settings(*demo_connections()))
    seen, cursor = [], None
    while True:
        url = f"/v1/invoices?customer_document={DOC}&limit=9" + (
            f"&cursor={cursor}" if cursor else ""
        )
        body = await (await client.get(url, headers=AUTH)).json()
        assert {s["status"] for s in body["sources"]} == {"ok"}
        seen += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    by_provider = {
        p: [i for i in seen if i["provider"] == p]
        for p in ("hubsoft", "fintera", "xarios")
    }
    assert len(by_provider["hubsoft"]) == sum(
        1 for i in hubsoft_sim.invoices if i.customer.document == DOC
    )
    assert len(by_provider["fintera"]) == sum(
        1 for r in fintera_sim.receivables if r["person_id"] == 1001
    )
    assert len(by_provider["xarios"]) == sum(
        1 for b in xarios_sim.bills if b.tenant == xarios_sim.tenant_id(0)
    )
    dated = [i["due_date"] for i in seen if i["due_date"]]
    assert dated == sorted(dated)
    assert all(
        i["due_date"] is None for i in seen[len(dated) :]
    )  # undated (Xarios) last
    assert len({i["id"] for i in seen}) == len(seen)

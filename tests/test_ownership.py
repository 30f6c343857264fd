"""Never another person's invoice, never a wrong word: rows re-checked, config errors named.

An upstream is never trusted to have filtered. Each simulator here misbehaves as its
vendor can (Hubsoft answering every customer's rows, Fintera next links without the
first page's filters or ignoring the person filter, Xarios having no filter at all), and
the customer's list must still hold only the customer's invoices.
"""

from __future__ import annotations

from tests.support import (
    AUTH,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

DOC = "12345678909"
MARIA_FINTERA = 1001  # Maria's person id in the Fintera simulator


async def listed(client, query):
    """Every invoice of a query (one page of 200) and its single source."""
    resp = await client.get(f"/v1/invoices?{query}&limit=200", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    (source,) = body["sources"]
    return body["data"], source


async def test_hubsoft_rows_of_other_customers_are_dropped_and_counted(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Hubsoft answering everyone's rows: only Maria's are served, the rest counted."""
    client = await gateway_factory(make_settings(hubsoft_connection(hubsoft_url)))
    hubsoft_sim.board.set("ignore_filter")
    data, source = await listed(client, f"customer_document={DOC}")
    assert data
    assert {i["customer"]["document"] for i in data} == {DOC}
    assert source["complete"] is False
    assert "other customers left out" in source["note"]


async def test_hubsoft_rows_that_do_not_state_the_document_are_not_served(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Hubsoft ignoring its filter AND leaving `cpf_cnpj` out: nothing can be shown Maria's.

    A `cliente` block that does not state the identifier asked for cannot be told apart
    from another customer's row; such rows are dropped and counted, never stamped with
    the asked document.
    """
    client = await gateway_factory(make_settings(hubsoft_connection(hubsoft_url)))
    hubsoft_sim.board.set("ignore_filter")
    hubsoft_sim.board.set("rewrite_rows", {"cpf_cnpj": None})
    data, source = await listed(client, f"customer_document={DOC}")
    assert data == []
    assert source["complete"] is False
    assert "other customers left out" in source["note"]


async def test_hubsoft_item_route_refuses_another_customers_row(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """An id naming Maria's code finds nothing among rows that belong to someone else."""
    client = await gateway_factory(make_settings(hubsoft_connection(hubsoft_url)))
    other = next(i for i in hubsoft_sim.invoices if i.customer.code != "1099")
    hubsoft_sim.board.set("ignore_filter")
    resp = await client.get(
        f"/v1/invoices/hubsoft:acme-isp:1099-{other.id}", headers=AUTH
    )
    assert resp.status == 404


async def test_fintera_next_links_without_filters_still_page_the_customer(
    gateway_factory, fintera_url, fintera_sim
):
    """Next links that drop `search[...]`: filters are put back, the list stays whole."""
    fintera_sim.max_per_page = 2  # force several pages
    client = await gateway_factory(make_settings(fintera_connection(fintera_url)))
    expected = sum(
        1 for r in fintera_sim.receivables if r["person_id"] == MARIA_FINTERA
    )
    fintera_sim.board.set("unfiltered_next")
    data, source = await listed(client, f"customer_document={DOC}")
    assert len(data) == expected
    assert {i["customer"]["remote_id"] for i in data} == {str(MARIA_FINTERA)}
    assert source["complete"] is True
    later = [
        c["query"]
        for c in fintera_sim.calls("receivable_accounts.json")
        if c["query"].get("page") != "1"
    ]
    assert later, "the walk went past page 1"
    assert all(q["search[person_id_equals]"] == str(MARIA_FINTERA) for q in later)


async def test_fintera_rows_of_other_people_are_dropped_and_counted(
    gateway_factory, fintera_url, fintera_sim
):
    """Fintera ignoring the person filter: others' receivables never reach Maria's list."""
    client = await gateway_factory(make_settings(fintera_connection(fintera_url)))
    fintera_sim.board.set("ignore_filter")
    data, source = await listed(client, f"customer_document={DOC}")
    assert data
    assert {i["customer"]["remote_id"] for i in data} == {str(MARIA_FINTERA)}
    assert {i["customer"]["document"] for i in data} == {DOC}
    assert source["complete"] is False
    assert "other customers left out" in source["note"]


async def test_xarios_serves_only_the_asked_tenant(
    gateway_factory, xarios_url, xarios_sim
):
    """Xarios lists every tenant's bills: a tenant's list holds that tenant's only."""
    tenant = xarios_sim.tenant_id(1)
    client = await gateway_factory(
        make_settings(
            xarios_connection(
                xarios_url,
                xarios_sim.issue_refresh_token(),
                options={"document_tenants": {DOC: xarios_sim.tenant_id(0)}},
            )
        )
    )
    data, source = await listed(client, f"connection=reseller&customer_id={tenant}")
    assert data
    assert {i["customer"]["remote_id"] for i in data} == {tenant}
    assert all(i["customer"]["document"] is None for i in data)
    by_doc, _ = await listed(client, f"customer_document={DOC}")
    assert {i["customer"]["remote_id"] for i in by_doc} == {xarios_sim.tenant_id(0)}
    assert source["status"] == "ok"


async def test_missing_fintera_account_is_a_config_error_naming_the_accounts(
    gateway_factory, fintera_url
):
    """No ACCOUNT_ID for a multi-account token: `config`, with the account ids to choose."""
    client = await gateway_factory(
        make_settings(fintera_connection(fintera_url, options={"account_id": None}))
    )
    resp = await client.get(f"/v1/invoices?customer_document={DOC}", headers=AUTH)
    assert resp.status == 502
    (source,) = (await resp.json())["sources"]
    assert source["error"]["type"] == "config"
    assert "set options.account_id to one of: 3613" in source["error"]["detail"]

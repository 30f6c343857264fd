"""Isolation matrix: two customers x every route x API-key and end-user callers.

Maria (A) has invoices at Hubsoft, Fintera and a mapped Xarios tenant; customer B at
Fintera and another Xarios tenant. An end user's token sees its own customer's
invoices, summary and PDFs, and for anything of the other customer gets exactly what a
made-up id gets; internal routes are closed to it. The API key sees everyone.
"""

from __future__ import annotations

import pytest

from tests.jwt_support import JwksServer, issuer, mint, rsa_key
from tests.support import (
    AUTH,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

A = "12345678909"  # Maria: Hubsoft, Fintera person 1001, Xarios tenant 0
B = "94580730224"  # Fintera person 1002, Xarios tenant 1
KEY = rsa_key("matrix")
GOOD_SALE = {
    "connection": "fin",
    "name": "Loja",
    "entity_id": 3798,
    "acquirer": "stone",
    "payment_methods": ["pix"],
}


def bearer(token: str) -> dict[str, str]:
    """An Authorization header."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def world(
    gateway_factory,
    aiohttp_server,
    hubsoft_url,
    fintera_url,
    xarios_url,
    xarios_sim,
):
    """The gateway over three simulators, the callers, and each customer's invoice ids."""
    jwks = JwksServer([KEY])
    served = await aiohttp_server(jwks.app())
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        fintera_connection(fintera_url),
        xarios_connection(
            xarios_url,
            xarios_sim.issue_refresh_token(),
            options={
                "document_tenants": {
                    A: xarios_sim.tenant_id(0),
                    B: xarios_sim.tenant_id(1),
                }
            },
        ),
        jwt_issuers=(issuer(str(served.make_url("/jwks.json"))),),
    )
    client = await gateway_factory(settings)
    callers = {
        "key": AUTH,
        A: bearer(mint(KEY, A)),
        B: bearer(mint(KEY, B)),
    }
    owned = {}
    for doc in (A, B):
        ids = await all_ids(client, AUTH, f"customer_document={doc}")
        assert ids, doc
        owned[doc] = ids
    assert not set(owned[A]) & set(owned[B])
    return client, callers, owned


async def all_ids(client, headers, query="", *, whole=True):
    """Every invoice id a caller gets for a query, walking every page."""
    ids, cursor = [], None
    while True:
        url = f"/v1/invoices?limit=7&{query}" + (f"&cursor={cursor}" if cursor else "")
        resp = await client.get(url, headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert body["complete"] is True or not whole, body["sources"]
        ids += [i["id"] for i in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return ids


def one_per_provider(ids):
    """The first id of each provider."""
    out = {}
    for i in ids:
        out.setdefault(i.split(":")[0], i)
    return out


@pytest.mark.parametrize("me", [A, B])
async def test_list_shows_an_end_user_only_its_own_invoices(world, me):
    """GET /v1/invoices: the token's customer forced; same list the key gets for it."""
    client, callers, owned = world
    mine = await all_ids(client, callers[me])
    assert mine == owned[me]
    explicit = await all_ids(client, callers[me], f"customer_document={me}")
    assert explicit == owned[me]


@pytest.mark.parametrize("me", [A, B])
async def test_list_with_the_other_customers_document_is_refused(world, me):
    """Asking for the other customer's document is a 403, never their list."""
    client, callers, _ = world
    other = B if me == A else A
    resp = await client.get(
        f"/v1/invoices?customer_document={other}", headers=callers[me]
    )
    assert resp.status == 403


@pytest.mark.parametrize("me", [A, B])
async def test_list_filters_cannot_widen_an_end_users_view(world, me):
    """Provider, connection and customer_id filters only ever narrow the forced one."""
    client, callers, owned = world
    other = B if me == A else A
    for query in (
        "provider=fintera",
        "connection=fin",
        "connection=fin&customer_id=1001",
        "connection=fin&customer_id=1002",
        "status=open,overdue,paid,cancelled",
    ):
        ids = await all_ids(client, callers[me], query, whole=False)
        assert set(ids) <= set(owned[me]), query
        assert not set(ids) & set(owned[other]), query


@pytest.mark.parametrize("me", [A, B])
async def test_summary_counts_only_the_callers_customer(world, me):
    """GET /v1/invoices/summary: equal to the key's summary for that customer only."""
    client, callers, _ = world
    mine = await client.get("/v1/invoices/summary", headers=callers[me])
    assert mine.status == 200
    as_key = await client.get(
        f"/v1/invoices/summary?customer_document={me}", headers=AUTH
    )
    assert (await mine.json())["totals"] == (await as_key.json())["totals"]


async def test_summaries_of_the_two_customers_differ(world):
    """The two customers' summaries are not the same numbers (the test can tell)."""
    client, callers, _ = world
    a = await (await client.get("/v1/invoices/summary", headers=callers[A])).json()
    b = await (await client.get("/v1/invoices/summary", headers=callers[B])).json()
    assert a["totals"] != b["totals"]


async def _not_found_shape(resp):
    body = await resp.json()
    return resp.status, body["type"], body["title"]


@pytest.mark.parametrize("owner", [A, B])
@pytest.mark.parametrize("caller", ["key", A, B])
async def test_item_route(world, owner, caller):
    """GET /v1/invoices/{id}: the owner and the key get it; the other gets a plain 404."""
    client, callers, owned = world
    for provider, invoice_id in one_per_provider(owned[owner]).items():
        resp = await client.get(f"/v1/invoices/{invoice_id}", headers=callers[caller])
        if caller in ("key", owner):
            assert resp.status == 200, (provider, await resp.text())
            assert (await resp.json())["customer"]["document"] == owner
        else:
            made_up = invoice_id.rsplit(":", 1)[0] + ":999999999"
            ghost = await client.get(f"/v1/invoices/{made_up}", headers=callers[caller])
            assert await _not_found_shape(resp) == await _not_found_shape(ghost)
            assert resp.status == 404, provider


async def with_pdf(client, ids):
    """Per provider, the first of `ids` whose PDF the key can open (some have none)."""
    out = {}
    for invoice_id in ids:
        provider = invoice_id.split(":")[0]
        if provider in out:
            continue
        resp = await client.get(f"/v1/invoices/{invoice_id}/document", headers=AUTH)
        if resp.status == 200:
            out[provider] = invoice_id
    return out


@pytest.mark.parametrize("owner", [A, B])
@pytest.mark.parametrize("caller", ["key", A, B])
async def test_document_route(world, owner, caller):
    """GET /v1/invoices/{id}/document: the PDF for the owner and the key, else 404."""
    client, callers, owned = world
    pdfs = await with_pdf(client, owned[owner])
    # Fintera receivables carry no document; B is not a Hubsoft customer.
    assert set(pdfs) == ({"hubsoft", "xarios"} if owner == A else {"xarios"})
    for provider, invoice_id in pdfs.items():
        resp = await client.get(
            f"/v1/invoices/{invoice_id}/document", headers=callers[caller]
        )
        if caller in ("key", owner):
            assert resp.status == 200, (provider, await resp.text())
            assert resp.content_type == "application/pdf"
            assert (await resp.read()).startswith(b"%PDF-")
        else:
            assert resp.status == 404, provider


async def test_hubsoft_id_naming_marias_code_does_not_open_it_for_b(world):
    """Ownership comes from the mapped invoice: B gets 404 even for a well-formed id."""
    client, callers, owned = world
    hub = [i for i in owned[A] if i.startswith("hubsoft:")]
    for invoice_id in hub[:3]:
        for suffix in ("", "/document"):
            resp = await client.get(
                f"/v1/invoices/{invoice_id}{suffix}", headers=callers[B]
            )
            assert resp.status == 404


INTERNAL = [
    ("GET", "/v1/connections", None),
    ("GET", "/v1/audit", None),
    ("GET", "/v1/sale-accounts?connection=fin", None),
    ("GET", "/v1/sale-accounts/fintera:fin:1", None),
    ("POST", "/v1/sale-accounts", GOOD_SALE),
    ("PUT", "/v1/sale-accounts/fintera:fin:1", {"name": "x"}),
    ("DELETE", "/v1/sale-accounts/fintera:fin:1", None),
]


@pytest.mark.parametrize(("method", "path", "body"), INTERNAL)
@pytest.mark.parametrize("me", [A, B])
async def test_internal_routes_are_closed_to_end_users(world, me, method, path, body):
    """Connections, audit and sale accounts: 403 for a token without those scopes."""
    client, callers, _ = world
    resp = await client.request(method, path, headers=callers[me], json=body)
    assert resp.status == 403, await resp.text()


async def test_connections_stay_open_to_the_api_key(world):
    """The internal key still sees connection details (the 403 above is about who)."""
    client, _, _ = world
    resp = await client.get("/v1/connections", headers=AUTH)
    assert resp.status == 200
    assert {c["id"] for c in (await resp.json())["data"]} == {
        "acme-isp",
        "fin",
        "reseller",
    }


async def test_a_token_for_two_customers_chooses_one_per_request(world):
    """A token naming both documents must pick one; each then shows only that one."""
    client, _, owned = world
    both = bearer(mint(KEY, [A, B]))
    resp = await client.get("/v1/invoices", headers=both)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "customer_document"
    for doc in (A, B):
        assert await all_ids(client, both, f"customer_document={doc}") == owned[doc]
    for doc in (A, B):
        invoice_id = owned[doc][0]
        assert (
            await client.get(f"/v1/invoices/{invoice_id}", headers=both)
        ).status == 200

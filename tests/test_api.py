"""The HTTP API end to end: gateway and Hubsoft simulator on real loopback sockets."""

from __future__ import annotations

import asyncio
import base64
from datetime import date
from decimal import Decimal

import pytest

from adapters.hubsoft.simdata import HEAVY_CODE
from adapters.hubsoft.simulator import HubsoftSimulator
from tests.support import API_KEY, LIMITED_KEY, TODAY, hubsoft_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}
DOC = "12345678909"


async def get_json(client, path, status=200, headers=None):
    """GET with the test key, assert the status, return the JSON body."""
    resp = await client.get(path, headers={**AUTH, **(headers or {})})
    assert resp.status == status, await resp.text()
    return await resp.json()


def sim_ids(sim, code):
    """Canonical ids the simulator holds for a customer of `acme-isp`."""
    return {
        f"hubsoft:acme-isp:{code}-{i.id}"
        for i in sim.invoices
        if i.customer.code == code
    }


# --- auth and errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {API_KEY}"},
        {"Authorization": "Bearer "},
    ],
)
async def test_missing_or_wrong_key_is_401_problem(gateway, headers):
    """Every /v1 route needs a configured API key."""
    for path in (
        "/v1/invoices?customer_document=" + DOC,
        "/v1/connections",
        "/v1/invoices/hubsoft:acme-isp:1099-44612",
    ):
        resp = await gateway.get(path, headers=headers)
        assert resp.status == 401
        assert resp.content_type == "application/problem+json"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        body = await resp.json()
        assert body["status"] == 401
        assert API_KEY not in await resp.text()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=abc", "limit"),
        ("status=late", "status"),
        ("status=open,", "status"),
        ("due_from=2026-13-01", "due_from"),
        ("due_from=20261101", "due_from"),
        ("due_to=yesterday", "due_to"),
        ("due_from=2026-11-10&due_to=2026-11-01", "due_to"),
        ("sort=price", "sort"),
        ("provider=sap", "provider"),
        ("connection=nope", "connection"),
        ("customer_document=123", "customer_document"),
        ("customer_document=12345678900", "customer_document"),
        ("customer_document=11111111111", "customer_document"),
        ("customer_id=1099", "customer_id"),
        ("connection=acme-isp&customer_id=10%2099", "customer_id"),
        ("contract_id=8801", "contract_id"),
        ("include=everything", "include"),
        ("staus=paid", "staus"),
        ("limit=5&limit=6", "limit"),
        ("cursor=", "cursor"),
        ("cursor=abc.def", "cursor"),
    ],
)
async def test_each_bad_parameter_is_400_naming_it(gateway, query, field):
    """Bad input is a 400 problem whose `errors` names the field."""
    body = await get_json(
        gateway,
        f"/v1/invoices?customer_document={DOC}&{query}"
        if "customer_document" not in query
        else f"/v1/invoices?{query}",
        400,
    )
    assert body["type"].endswith("invalid-request")
    assert field in {e["field"] for e in body["errors"]}


async def test_all_bad_parameters_are_reported_at_once(gateway):
    """Several mistakes, one answer listing each."""
    body = await get_json(gateway, "/v1/invoices?limit=0&sort=x&status=y", 400)
    assert {e["field"] for e in body["errors"]} == {"limit", "sort", "status"}


async def test_unknown_route_and_method_are_problems(gateway):
    """Aiohttp's own 404/405 also come as problem+json."""
    resp = await gateway.get("/v2/nothing", headers=AUTH)
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    resp = await gateway.post("/healthz")
    assert resp.status == 405
    assert resp.content_type == "application/problem+json"


# --- listing ----------------------------------------------------------------------------


async def test_list_by_document_reports_sources_and_maps_invoices(gateway, hubsoft_sim):
    """A customer's invoices, paid ones included, in one canonical list."""
    body = await get_json(
        gateway, "/v1/invoices?customer_document=123.456.789-09&limit=200"
    )
    assert {i["id"] for i in body["data"]} == sim_ids(hubsoft_sim, "1099")
    assert body["complete"] is True
    assert body["next_cursor"] is None
    (source,) = body["sources"]
    assert source["connection"] == "acme-isp"
    assert source["status"] == "ok"
    assert source["count"] == len(body["data"])
    assert source["from_cache"] is False
    seed_boleto = next(i for i in body["data"] if i["id"].endswith("-44612"))
    assert seed_boleto["status"] == "overdue"
    assert seed_boleto["amount"] == "10.00"
    assert seed_boleto["payment"]["boleto"]["our_number"] == "0274764-0"
    assert "remote" not in seed_boleto


async def test_status_and_due_filters(gateway, hubsoft_sim):
    """`status` and the due window narrow the list exactly."""
    body = await get_json(
        gateway,
        f"/v1/invoices?connection=acme-isp&customer_id={HEAVY_CODE}&status=paid,overdue"
        "&due_from=2024-01-01&due_to=2025-12-31&limit=200",
    )
    assert body["data"]
    for inv in body["data"]:
        assert inv["status"] in {"paid", "overdue"}
        assert "2024-01-01" <= inv["due_date"] <= "2025-12-31"
    wanted = {
        i.id
        for i in hubsoft_sim.invoices
        if i.customer.code == HEAVY_CODE
        and "2024-01-01" <= i.due.isoformat() <= "2025-12-31"
        and (i.paid_on is not None or i.due < TODAY)
    }
    assert {int(i["id"].rsplit("-", 1)[1]) for i in body["data"]} == wanted
    assert body["sources"][0]["count"] == len(
        body["data"]
    )  # after the gateway's filters


async def test_open_filter_returns_only_future_dues(gateway):
    """`open` is unpaid and not yet due."""
    body = await get_json(gateway, f"/v1/invoices?customer_document={DOC}&status=open")
    assert body["data"]
    assert all(
        i["status"] == "open" and i["due_date"] >= TODAY.isoformat()
        for i in body["data"]
    )


async def test_contract_filter_and_include_remote(gateway, hubsoft_sim):
    """`contract_id` searches the service; `include=remote` adds the upstream record."""
    body = await get_json(
        gateway,
        "/v1/invoices?connection=acme-isp&contract_id=8801&include=remote&limit=200",
    )
    assert {i["id"] for i in body["data"]} == sim_ids(hubsoft_sim, "1099")
    assert all(i["remote"]["id_fatura"] for i in body["data"])


async def test_provider_filter_selects_connections(gateway):
    """`provider=hubsoft` keeps the connection."""
    body = await get_json(
        gateway, f"/v1/invoices?customer_document={DOC}&provider=hubsoft"
    )
    assert [s["connection"] for s in body["sources"]] == ["acme-isp"]


@pytest.mark.parametrize("sort", ["due_date", "-due_date", "amount", "-amount"])
async def test_sort_orders(gateway, sort):
    """Each sort orders the merged list, ties broken by id."""
    body = await get_json(
        gateway,
        f"/v1/invoices?connection=acme-isp&customer_id={HEAVY_CODE}&sort={sort}&limit=200",
    )
    field = sort.lstrip("-")
    conv = Decimal if field == "amount" else str
    keys = [(conv(i[field]), i["id"]) for i in body["data"]]
    expected = sorted(keys, key=lambda k: k[1])
    expected.sort(key=lambda k: k[0], reverse=sort.startswith("-"))
    assert [k[0] for k in keys] == [k[0] for k in expected]
    assert len(keys) > 50


@pytest.mark.parametrize("sort", ["due_date", "-amount"])
async def test_cursor_pages_to_the_end_without_duplicates_or_gaps(
    gateway, hubsoft_sim, sort
):
    """Following next_cursor yields the unpaged list exactly, in order."""
    base = f"/v1/invoices?connection=acme-isp&customer_id={HEAVY_CODE}&sort={sort}"
    whole = [i["id"] for i in (await get_json(gateway, base + "&limit=200"))["data"]]
    seen, cursor, pages = [], None, 0
    while True:
        url = base + "&limit=7" + (f"&cursor={cursor}" if cursor else "")
        body = await get_json(gateway, url)
        seen += [i["id"] for i in body["data"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == whole
    assert len(set(seen)) == len(seen) == len(sim_ids(hubsoft_sim, HEAVY_CODE))
    assert pages == -(-len(whole) // 7)


async def test_tampered_or_foreign_cursor_is_400(gateway):
    """A cursor altered by a byte, or reused with other filters, is refused."""
    base = f"/v1/invoices?connection=acme-isp&customer_id={HEAVY_CODE}&limit=5"
    cursor = (await get_json(gateway, base))["next_cursor"]
    body, _, sig = cursor.partition(".")
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    raw[-3] = ord("9") if raw[-3] != ord("9") else ord("8")
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=") + "." + sig
    for bad in (forged, cursor[:-2] + "xx"):
        problem = await get_json(gateway, f"{base}&cursor={bad}", 400)
        assert problem["errors"][0]["field"] == "cursor"
    other = await get_json(gateway, f"{base}&sort=-amount&cursor={cursor}", 400)
    assert "different query" in other["errors"][0]["message"]
    same = await get_json(
        gateway, f"{base}&cursor={cursor}"
    )  # limit may change, though
    assert same["data"]


async def test_tenant_wide_without_window_is_skipped_not_failed(gateway):
    """A source that cannot serve the filter is `skipped`; the answer is still 200."""
    body = await get_json(gateway, "/v1/invoices?status=open")
    assert body["data"] == []
    assert body["complete"] is False
    assert body["sources"][0]["status"] == "skipped"
    assert "due_from" in body["sources"][0]["note"]


async def test_key_limited_to_no_connection_sees_nothing(gateway):
    """Connections outside a key's list do not exist for it."""
    headers = {"Authorization": f"Bearer {LIMITED_KEY}"}
    resp = await gateway.get(f"/v1/invoices?customer_document={DOC}", headers=headers)
    body = await resp.json()
    assert (resp.status, body["data"], body["sources"]) == (200, [], [])
    resp = await gateway.get("/v1/invoices?connection=acme-isp", headers=headers)
    assert resp.status == 400
    resp = await gateway.get(
        "/v1/invoices/hubsoft:acme-isp:1099-44612", headers=headers
    )
    assert resp.status == 404


# --- one invoice ------------------------------------------------------------------------


async def test_get_one_invoice_matches_the_list_item(gateway):
    """`GET /v1/invoices/{id}` returns the same canonical record as the list."""
    listed = (
        await get_json(gateway, f"/v1/invoices?customer_document={DOC}&limit=200")
    )["data"]
    item = next(i for i in listed if i["status"] == "paid")
    one = await get_json(gateway, f"/v1/invoices/{item['id']}")
    assert one == item
    with_remote = await get_json(gateway, f"/v1/invoices/{item['id']}?include=remote")
    assert with_remote["remote"]["id_fatura"] == int(item["remote_id"].split("-")[1])


@pytest.mark.parametrize(
    "ident",
    [
        "hubsoft:acme-isp:1099-1",
        "hubsoft:other:1099-44612",
        "fintera:acme-isp:1099-44612",
        "hubsoft:acme-isp:zzz",
    ],
)
async def test_unknown_invoice_is_404(gateway, ident):
    """Unknown connection, provider mismatch or absent invoice: 404 problem."""
    body = await get_json(gateway, f"/v1/invoices/{ident}", 404)
    assert body["status"] == 404


async def test_malformed_invoice_id_is_400(gateway):
    """An id without its three parts names `id`."""
    body = await get_json(gateway, "/v1/invoices/just-a-number", 400)
    assert body["errors"][0]["field"] == "id"


# --- caching, ETags, request ids -------------------------------------------------------


async def test_second_read_is_served_from_cache_and_no_cache_refreshes(
    gateway, hubsoft_sim
):
    """Identical queries hit the cache; `Cache-Control: no-cache` goes upstream again."""
    url = f"/v1/invoices?customer_document={DOC}"
    await get_json(gateway, url)
    calls = len(hubsoft_sim.calls("/cliente/financeiro"))
    body = await get_json(
        gateway, url + "&sort=-amount"
    )  # sort is not part of the cache key
    assert body["sources"][0]["from_cache"] is True
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == calls
    body = await get_json(gateway, url, headers={"Cache-Control": "no-cache"})
    assert body["sources"][0]["from_cache"] is False
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == calls + 1


async def test_concurrent_identical_cold_requests_make_one_upstream_call(
    gateway, hubsoft_sim
):
    """K identical cold requests share one upstream call (single-flight)."""
    hubsoft_sim.set_fault("latency", 0.2)
    url = f"/v1/invoices?customer_document={DOC}"
    bodies = await asyncio.gather(*(get_json(gateway, url) for _ in range(25)))
    assert len({len(b["data"]) for b in bodies}) == 1
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 1


async def test_etag_gives_304(gateway):
    """`If-None-Match` with the current ETag answers 304 without a body."""
    url = f"/v1/invoices?customer_document={DOC}"
    resp = await gateway.get(url, headers=AUTH)
    etag = resp.headers["ETag"]
    assert resp.headers["Cache-Control"].startswith("private")
    resp = await gateway.get(url, headers={**AUTH, "If-None-Match": etag})
    assert resp.status == 304
    assert await resp.read() == b""


async def test_request_id_is_echoed_or_made(gateway):
    """`X-Request-ID` comes back as sent, or a new one is generated."""
    resp = await gateway.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    resp = await gateway.get("/healthz", headers={"X-Request-ID": "bad id; drop"})
    assert len(resp.headers["X-Request-ID"]) == 32


# --- upstream failures ------------------------------------------------------------------


async def test_upstream_down_with_nothing_cached_is_502_problem(gateway, hubsoft_sim):
    """No source answered: 502 problem+json listing the source."""
    hubsoft_sim.set_fault("status", 503)
    resp = await gateway.get(f"/v1/invoices?customer_document={DOC}", headers=AUTH)
    assert resp.status == 502
    body = await resp.json()
    assert resp.content_type == "application/problem+json"
    assert body["sources"][0]["status"] == "error"
    assert body["sources"][0]["error"]["type"] == "unavailable"
    assert "HTTP 503" in body["sources"][0]["error"]["detail"]


async def test_upstream_too_slow_is_504(gateway_factory, hubsoft_url, hubsoft_sim):
    """Every source timing out gives 504, well before the upstream would answer."""
    settings = make_settings(hubsoft_connection(hubsoft_url), request_timeout_s=0.3)
    client = await gateway_factory(settings)
    hubsoft_sim.set_fault("latency", 2)
    started = asyncio.get_running_loop().time()
    resp = await client.get(f"/v1/invoices?customer_document={DOC}", headers=AUTH)
    assert resp.status == 504
    assert asyncio.get_running_loop().time() - started < 1.5
    assert (await resp.json())["sources"][0]["status"] == "timeout"


async def test_stale_data_is_served_when_upstream_fails(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Past freshness: served at once and revalidated; a failed refresh marks it `stale`."""
    conn = hubsoft_connection(hubsoft_url, cache_fresh_s=0.0, cache_stale_s=600.0)
    client = await gateway_factory(make_settings(conn))
    url = f"/v1/invoices?customer_document={DOC}"
    first = await get_json(client, url)
    hubsoft_sim.set_fault("status", 500)
    second = await get_json(client, url)  # stale-while-revalidate: no wait for upstream
    assert second["data"] == first["data"]
    assert (second["sources"][0]["status"], second["sources"][0]["from_cache"]) == (
        "ok",
        True,
    )
    await asyncio.sleep(0.3)  # the background refresh fails meanwhile
    third = await get_json(client, url)
    assert third["data"] == first["data"]
    assert third["sources"][0]["status"] == "stale"
    assert third["sources"][0]["error"]["type"] == "unavailable"
    assert "HTTP 500" in third["sources"][0]["error"]["detail"]
    assert third["complete"] is False
    forced = await get_json(client, url, headers={"Cache-Control": "no-cache"})
    assert forced["sources"][0]["status"] == "stale"  # a forced read also falls back


async def test_one_failing_connection_does_not_sink_the_others(
    gateway_factory, hubsoft_url, aiohttp_server
):
    """Partial answers: one source ok, the other error, 200 with complete=false."""
    broken = HubsoftSimulator(today=TODAY)
    broken.set_fault("malformed")
    broken_server = await aiohttp_server(broken.app())
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        hubsoft_connection(str(broken_server.make_url("")).rstrip("/"), cid="beta-isp"),
    )
    client = await gateway_factory(settings)
    body = await get_json(client, f"/v1/invoices?customer_document={DOC}")
    by_conn = {s["connection"]: s for s in body["sources"]}
    assert by_conn["acme-isp"]["status"] == "ok"
    assert by_conn["beta-isp"]["status"] == "error"
    assert by_conn["beta-isp"]["error"]["type"] == "protocol"
    assert "malformed JSON" in by_conn["beta-isp"]["error"]["detail"]
    assert body["complete"] is False
    assert body["data"]


# --- operations ------------------------------------------------------------------------


async def test_connections_show_health_and_token_state_without_secrets(gateway):
    """`/v1/connections` tells health and token presence, never a credential."""
    await get_json(gateway, f"/v1/invoices?customer_document={DOC}")
    resp = await gateway.get("/v1/connections", headers=AUTH)
    text = await resp.text()
    (conn,) = (await resp.json())["data"]
    assert conn["health"] == "up"
    assert conn["token"]["present"] is True
    assert conn["token"]["refreshes"] == 1
    for secret in ("demo-client-secret", "demo-password", "eyJ0eXAi"):
        assert secret not in text


async def test_health_and_readiness(gateway):
    """Liveness and readiness answer without calling an upstream."""
    assert (await (await gateway.get("/healthz")).json()) == {"status": "ok"}
    ready = await (await gateway.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert ready["connections"] == {"acme-isp": "unknown"}


# --- documents --------------------------------------------------------------------------


async def test_boleto_pdf_is_streamed_byte_identical(gateway, hubsoft_sim):
    """`/document` relays the upstream PDF unchanged, with its type and a request id."""
    inv = next(
        i
        for i in hubsoft_sim.invoices
        if i.kind == "boleto_bancario" and i.customer.code == "2002"
    )
    resp = await gateway.get(
        f"/v1/invoices/hubsoft:acme-isp:2002-{inv.id}/document", headers=AUTH
    )
    body = await resp.read()
    assert resp.status == 200
    assert resp.content_type == "application/pdf"
    assert resp.headers["X-Request-ID"]
    assert body == hubsoft_sim.pdf(inv)
    assert len(body) > 200_000


async def test_invoice_without_boleto_has_no_document(gateway, hubsoft_sim):
    """A direct-debit invoice has no slip: 404 problem, nothing fetched."""
    inv = next(i for i in hubsoft_sim.invoices if i.kind == "debito_conta_corrente")
    code = inv.customer.code
    resp = await gateway.get(
        f"/v1/invoices/hubsoft:acme-isp:{code}-{inv.id}/document", headers=AUTH
    )
    assert resp.status == 404
    assert resp.content_type == "application/problem+json"
    assert hubsoft_sim.calls("/pdf/fatura/" + hubsoft_sim.pdf_token(inv)) == []


async def test_period_filters_skip_hubsoft(gateway):
    """Hubsoft has no billing periods: a period filter marks it skipped."""
    body = await get_json(
        gateway, f"/v1/invoices?customer_document={DOC}&period_from=2026-01-01"
    )
    assert body["sources"][0]["status"] == "skipped"
    assert "billing period" in body["sources"][0]["note"]


async def test_a_paid_invoice_is_cached_longer_than_the_connection_says(
    gateway_factory, hubsoft_url, hubsoft_sim
):
    """Per-kind lifetimes: a paid invoice outlives `cache_fresh_s`; an open one does not."""
    conn = hubsoft_connection(hubsoft_url, cache_fresh_s=0.0, cache_stale_s=0.0)
    client = await gateway_factory(make_settings(conn))
    paid = next(
        i for i in hubsoft_sim.invoices if i.customer.code == "2002" and i.paid_on
    )
    unpaid = next(
        i for i in hubsoft_sim.invoices if i.customer.code == "2002" and not i.paid_on
    )
    for inv in (paid, unpaid, paid, unpaid):
        await get_json(client, f"/v1/invoices/hubsoft:acme-isp:2002-{inv.id}")
    # The paid one was fetched once; the unpaid one each time (no caching configured).
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 3


async def test_summary_totals_match_the_list(gateway):
    """Per-currency totals, per-status counts and overdue aging agree with the list."""
    query = f"connection=acme-isp&customer_id={HEAVY_CODE}"
    listed = (await get_json(gateway, f"/v1/invoices?{query}&limit=200"))["data"]
    body = await get_json(gateway, f"/v1/invoices/summary?{query}")
    (brl,) = body["totals"]
    assert brl["currency"] == "BRL"
    assert brl["count"] == len(listed)
    assert Decimal(brl["amount"]) == sum(Decimal(i["amount"]) for i in listed)
    assert Decimal(brl["amount_due"]) == sum(
        Decimal(i["amount_due"] or 0) for i in listed
    )
    for status, part in brl["by_status"].items():
        assert part["count"] == sum(1 for i in listed if i["status"] == status)
    overdue = [i for i in listed if i["status"] == "overdue"]
    assert sum(b["count"] for b in brl["aging"].values()) == len(overdue)
    recent = [
        i for i in overdue if (TODAY - date.fromisoformat(i["due_date"])).days <= 30
    ]
    assert brl["aging"]["0-30"]["count"] == len(recent)
    assert body["complete"] is True


async def test_summary_takes_filters_but_not_paging(gateway):
    """Filters apply; sort/limit/cursor are refused by name."""
    body = await get_json(
        gateway, f"/v1/invoices/summary?customer_document={DOC}&status=paid"
    )
    assert set(body["totals"][0]["by_status"]) == {"paid"}
    problem = await get_json(
        gateway, f"/v1/invoices/summary?customer_document={DOC}&limit=5", 400
    )
    assert problem["errors"][0]["field"] == "limit"

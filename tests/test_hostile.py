"""A hostile-input battery: what an attacker would send never earns a 500.

Every case is a request against a gateway over all three simulators; each must be
answered with its documented status (a 400 problem naming the field, a 401/404, or a
502 for an upstream's fault), and the whole battery must leave memory bounded. The
response log of `gateway_factory` then also checks each answer against the OpenAPI
document and fails on any 500.
"""

from __future__ import annotations

import dataclasses
import hashlib
import resource
from typing import Any
from urllib.parse import quote

import pytest

from gateway.config.settings import ApiKey
from tests.support import API_KEY, AUTH, DOC, hubsoft_connection, make_settings

HUB = "hubsoft:acme-isp:1099-44612"
SALE = "fintera:fin:36"
UNICODE_DIGITS = ["²", "١٢", "５０", "⁵⁰", "𝟓𝟎", "½", "Ⅻ", "߁"]
NEWLINES = ["%0A", "%0D", "%0D%0A", "%00", "%09", "%E2%80%A8", "%C2%85"]


@pytest.fixture
async def hostile(gateway_factory, demo_connections):
    """A gateway over Hubsoft, Xarios and Fintera, as the demo runs them."""
    return await gateway_factory(make_settings(*demo_connections()))


def q(**params: str) -> str:
    """A list URL with raw (already encoded) parameter values."""
    return "/v1/invoices?" + "&".join(f"{k}={v}" for k, v in params.items())


QUERY_CASES: list[tuple[str, str]] = [
    *[(q(customer_document=DOC, limit=quote(d)), "limit") for d in UNICODE_DIGITS],
    *[(q(customer_document=DOC, limit=v), "limit") for v in ("0", "201", "-1", "%2B5")],
    *[(q(customer_document=DOC, limit=v), "limit") for v in ("1e2", "0x10", "5.0")],
    (q(customer_document=DOC, limit="9" * 400), "limit"),
    (q(customer_document=DOC, limit="10%0A"), "limit"),
    *[(q(customer_document=quote(d * 11)), "customer_document") for d in "²١５"],
    (q(customer_document="1" * 5000), "customer_document"),
    (q(customer_document=DOC + "%0A0"), "customer_document"),
    (q(customer_document="123.456.789-0%C2%B2"), "customer_document"),
    *[
        (q(customer_document=DOC, due_from=v), "due_from")
        for v in (
            "2026-02-30",
            "2026-1-01",
            "２０２６-01-01",
            "2026-01-01T00:00",
            "2026-01-01%0A",
            "99999-01-01",
            "-2026-01-01",
            "2026-13-01",
            "0000-00-00",
        )
    ],
    (q(customer_document=DOC, due_from="2026-02-01", due_to="2026-01-01"), "due_to"),
    (q(customer_document=DOC, status="paid,bogus"), "status"),
    (q(customer_document=DOC, status=",,,"), "status"),
    (q(customer_document=DOC, status="paid%0A"), "status"),
    (q(customer_document=DOC, sort="amount%0A"), "sort"),
    (q(customer_document=DOC, sort="__class__"), "sort"),
    (q(customer_document=DOC, provider="hubsoft%00"), "provider"),
    (q(customer_document=DOC, connection="../etc"), "connection"),
    (q(customer_id="1099%0A", connection="acme-isp"), "customer_id"),
    (q(customer_id="a" * 65, connection="acme-isp"), "customer_id"),
    (q(customer_id="1099"), "customer_id"),
    (q(contract_id="x/y", connection="acme-isp"), "contract_id"),
    (q(customer_document=DOC, cursor="%FF%FE"), "cursor"),
    (q(customer_document=DOC, cursor="a" * 600), "cursor"),
    (q(customer_document=DOC, cursor="abc.def"), "cursor"),
    (q(customer_document=DOC, cursor="eyJ2IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA"), "cursor"),
    (q(customer_document=DOC, cursor="%F0%9F%92%A5.x"), "cursor"),
    (q(customer_document=DOC, include="remote,secrets"), "include"),
    (q(customer_document=DOC, staus="paid"), "staus"),
    (q(customer_document=DOC, limit="1") + "&limit=2", "limit"),
    (q(customer_document=DOC) + "&" + "x" * 300 + "=1", "x" * 300),
    ("/v1/invoices/summary?limit=5&customer_document=" + DOC, "limit"),
    ("/v1/invoices/summary?customer_document=%C2%B2", "customer_document"),
    ("/v1/sale-accounts?connection=fin&extra=1", "extra"),
    ("/v1/sale-accounts?connection=%0A", "connection"),
    ("/v1/sale-accounts?connection=acme-isp", "connection"),
    ("/v1/sale-accounts", "connection"),
]


@pytest.mark.parametrize(("path", "field"), QUERY_CASES)
async def test_hostile_query_is_a_400_naming_the_field(hostile, path, field):
    """Bad parameters: 400 problem naming the field, never a 500."""
    resp = await hostile.get(path, headers=AUTH)
    body = await resp.json()
    assert resp.status == 400, body
    assert resp.content_type == "application/problem+json"
    assert field in {e["field"] for e in body["errors"]}, body


ID_CASES = [
    *[f"/v1/invoices/{HUB}{n}" for n in NEWLINES],
    *[f"/v1/invoices/{HUB}{n}/document" for n in NEWLINES],
    *[f"/v1/sale-accounts/{SALE}{n}" for n in NEWLINES],
    "/v1/invoices/" + "a" * 300,
    "/v1/invoices/hubsoft:acme-isp:" + "1" * 200,
    "/v1/invoices/hubsoft:acme-isp",
    "/v1/invoices/hubsoft::1099-1",
    "/v1/invoices/:::",
    "/v1/invoices/hubsoft:acme-isp:1099-1:x",
    "/v1/invoices/hubsoft:acme-isp:%2E%2E%2Fetc",
    "/v1/invoices/hubsoft:acme-isp:..",
    "/v1/invoices/HUBSOFT:acme-isp:1099-1",
    "/v1/invoices/hubsoft:acme-isp:１０９９-1",
    "/v1/invoices/hubsoft:acme-isp:%FF%FE",
    "/v1/invoices/hubsoft:acme-isp:1099%201",
    "/v1/sale-accounts/fintera:fin:%F0%9F%92%A5",
    "/v1/sale-accounts/" + "f" * 300,
    "/v1/sale-accounts/fintera:fin:36%0A/x",
]


@pytest.mark.parametrize("path", ID_CASES)
async def test_hostile_id_is_a_400_or_404(hostile, path):
    """Ids with newlines, NULs, Unicode digits or wrong shapes: 400 naming `id`, or 404."""
    resp = await hostile.get(path, headers=AUTH)
    body = await resp.json()
    assert resp.status in {400, 404}, body
    assert resp.content_type == "application/problem+json"
    if resp.status == 400:
        assert {e["field"] for e in body["errors"]} == {"id"}, body


async def test_put_on_an_id_with_a_newline_changes_nothing(hostile, fintera_sim):
    """`PUT …:36%0A` is refused, so it can neither update 36 nor leave its cache stale."""
    created = await hostile.post(
        "/v1/sale-accounts",
        json={
            "connection": "fin",
            "name": "Loja",
            "entity_id": 3798,
            "acquirer": "stone",
            "payment_methods": ["pix"],
        },
        headers=AUTH,
    )
    account = await created.json()
    assert created.status == 201, account
    resp = await hostile.put(
        f"/v1/sale-accounts/{account['id']}%0A", json={"name": "Other"}, headers=AUTH
    )
    assert resp.status == 400
    stored = fintera_sim.sale_accounts[int(account["remote_id"])]
    assert stored["name"] == "Loja"


HEADER_CASES: list[tuple[dict[str, str], int, str | None]] = [
    *[({"X-Deadline-Ms": d}, 400, "X-Deadline-Ms") for d in UNICODE_DIGITS],
    ({"X-Deadline-Ms": "9" * 400}, 400, "X-Deadline-Ms"),
    ({"X-Deadline-Ms": "49"}, 400, "X-Deadline-Ms"),
    ({"X-Deadline-Ms": "-100"}, 400, "X-Deadline-Ms"),
    ({"X-Deadline-Ms": "1e3"}, 400, "X-Deadline-Ms"),
    ({"X-Deadline-Ms": "3600001"}, 400, "X-Deadline-Ms"),
    ({"X-Deadline-Ms": ""}, 400, "X-Deadline-Ms"),
    ({"X-Request-ID": "a" * 500}, 200, None),
    ({"X-Request-ID": "id\u00e9"}, 200, None),
    ({"Authorization": "Bearer " + "k" * 5000}, 401, None),
    ({"Authorization": "Bearer ключ"}, 401, None),
    ({"Authorization": "Bearer"}, 401, None),
    ({"Authorization": "Basic dXNlcjpwYXNz"}, 401, None),
    ({"Authorization": f"bearer  {API_KEY}  "}, 200, None),
    ({"Cache-Control": "no-cache" * 100}, 200, None),
    ({"If-None-Match": '"' * 1000}, 200, None),
]


@pytest.mark.parametrize(("headers", "status", "field"), HEADER_CASES)
async def test_hostile_headers(hostile, headers, status, field):
    """Headers with Unicode digits, huge numbers or junk: 400/401 problems, never 500."""
    resp = await hostile.get(
        f"/v1/invoices?customer_document={DOC}&limit=1", headers={**AUTH, **headers}
    )
    assert resp.status == status, await resp.text()
    if field is not None:
        body = await resp.json()
        assert {e["field"] for e in body["errors"]} == {field}


async def test_undecodable_header_bytes_are_a_401_not_a_500(hostile):
    """An API key with bytes that are not UTF-8 arrives as surrogates: refused cleanly."""
    reader, writer = await _raw(hostile)
    writer.write(
        b"GET /v1/connections HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer \xff\xfe\xfd\r\nConnection: close\r\n\r\n"
    )
    head = (await reader.read()).split(b"\r\n", 1)[0]
    writer.close()
    await writer.wait_closed()
    assert head == b"HTTP/1.1 401 Unauthorized"


async def _raw(client):
    import asyncio  # noqa: PLC0415 - only the raw-socket cases need it

    return await asyncio.open_connection(client.host, client.port)


GOOD_BODY = {
    "connection": "fin",
    "name": "Loja",
    "entity_id": 3798,
    "acquirer": "stone",
    "payment_methods": ["pix"],
}


def cls(**item: Any) -> dict[str, Any]:
    """GOOD_BODY with one custom classification."""
    return {
        **GOOD_BODY,
        "custom_classifications": [{"classifier_id": 1, "name": "Zona", **item}],
    }


BODY_CASES: list[tuple[Any, str]] = [
    ({**GOOD_BODY, "acquirer": ["stone"]}, "acquirer"),
    ({**GOOD_BODY, "acquirer": {"stone": 1}}, "acquirer"),
    ({**GOOD_BODY, "acquirer": 5}, "acquirer"),
    ({**GOOD_BODY, "acquirer": True}, "acquirer"),
    ({**GOOD_BODY, "payment_methods": [["pix"]]}, "payment_methods"),
    ({**GOOD_BODY, "payment_methods": [{"a": 1}]}, "payment_methods"),
    ({**GOOD_BODY, "payment_methods": "pix"}, "payment_methods"),
    ({**GOOD_BODY, "payment_methods": ["pix", "pix"]}, "payment_methods"),
    ({**GOOD_BODY, "connection": ["fin"]}, "connection"),
    ({**GOOD_BODY, "connection": {"id": "fin"}}, "connection"),
    ({**GOOD_BODY, "connection": "f" * 5000}, "connection"),
    ({**GOOD_BODY, "connection": 7}, "connection"),
    ({**GOOD_BODY, "entity_id": 2**64}, "entity_id"),
    ({**GOOD_BODY, "entity_id": -1}, "entity_id"),
    ({**GOOD_BODY, "entity_id": 1.5}, "entity_id"),
    ({**GOOD_BODY, "entity_id": "3798"}, "entity_id"),
    ({**GOOD_BODY, "entity_id": True}, "entity_id"),
    ({**GOOD_BODY, "name": "n" * 256}, "name"),
    ({**GOOD_BODY, "name": ["n"]}, "name"),
    ({**GOOD_BODY, "name": "   "}, "name"),
    ({**GOOD_BODY, "consolidate": "yes"}, "consolidate"),
    ({**GOOD_BODY, "description": {"a": 1}}, "description"),
    ({**GOOD_BODY, "category_id": [1]}, "category_id"),
    ({**GOOD_BODY, "__proto__": {}}, "__proto__"),
    ({**GOOD_BODY, "custom_classifications": "x"}, "custom_classifications"),
    ({**GOOD_BODY, "custom_classifications": [1]}, "custom_classifications[0]"),
    (
        {**GOOD_BODY, "custom_classifications": [{}] * 51},
        "custom_classifications",
    ),
    (cls(percentage="1e-1000000000"), "custom_classifications[0].percentage"),
    (cls(percentage="1e-999999999999999999"), "custom_classifications[0].percentage"),
    (cls(percentage="1e+999999999"), "custom_classifications[0].percentage"),
    (cls(percentage="NaN"), "custom_classifications[0].percentage"),
    (cls(percentage="Infinity"), "custom_classifications[0].percentage"),
    (cls(percentage="-0.01"), "custom_classifications[0].percentage"),
    (cls(percentage="100.01"), "custom_classifications[0].percentage"),
    (cls(percentage="0.001"), "custom_classifications[0].percentage"),
    (cls(percentage="١٢"), "custom_classifications[0].percentage"),
    (cls(percentage="1_0"), "custom_classifications[0].percentage"),
    (cls(percentage=" 1"), "custom_classifications[0].percentage"),
    (cls(percentage="1" * 5000), "custom_classifications[0].percentage"),
    (cls(percentage=[1]), "custom_classifications[0].percentage"),
    (cls(percentage=True), "custom_classifications[0].percentage"),
    (cls(amount=1e308), "custom_classifications[0].amount"),
    (cls(amount=1e-300), "custom_classifications[0].amount"),
    (cls(amount="9" * 16), "custom_classifications[0].amount"),
    (cls(amount="1E+20"), "custom_classifications[0].amount"),
    (cls(amount="12.345"), "custom_classifications[0].amount"),
    (cls(amount={"v": 1}), "custom_classifications[0].amount"),
    (cls(classifier_id="1"), "custom_classifications[0].classifier_id"),
    (cls(extra=1), "custom_classifications[0].extra"),
    ([GOOD_BODY], "body"),
    ("a string", "body"),
    (None, "body"),
    (12, "body"),
]


@pytest.mark.parametrize(("body", "field"), BODY_CASES)
async def test_hostile_body_is_a_400_naming_the_field(
    hostile, fintera_sim, body, field
):
    """Wrong types, unhashable values, huge exponents: 400 naming the field, no upstream call."""
    before = len(fintera_sim.sale_accounts)
    resp = await hostile.post("/v1/sale-accounts", json=body, headers=AUTH)
    problem = await resp.json()
    assert resp.status == 400, problem
    assert field in {e["field"] for e in problem["errors"]}, problem
    assert len(fintera_sim.sale_accounts) == before


RAW_BODIES = [
    b"",
    b"{",
    b"[" * 5000 + b"]" * 5000,
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,
    b"\xff\xfe\x00\x00",
    b'{"name": "\\ud800"}',
    b"NaN",
    b'{"connection": "fin", "connection": "x"}',
    b"1e999999999999",
    b'"' + b"a" * 60000 + b'"',
]


@pytest.mark.parametrize("raw", RAW_BODIES)
async def test_malformed_json_bodies_are_400s(hostile, raw):
    """Bodies that are not JSON, too deep, or not objects: a 400 naming `body` or a field."""
    resp = await hostile.post(
        "/v1/sale-accounts",
        data=raw,
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert resp.status == 400, await resp.text()
    assert resp.content_type == "application/problem+json"


async def test_a_body_over_the_limit_is_a_413_stating_it(hostile):
    """A too-large body: 413 problem whose detail says the limit."""
    resp = await hostile.post(
        "/v1/sale-accounts",
        data=b"{" + b" " * 70000 + b"}",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    body = await resp.json()
    assert resp.status == 413
    assert "65536" in body["detail"]


async def test_wrong_content_type_is_a_400(hostile):
    """A form body where JSON is expected: 400 naming `body`."""
    resp = await hostile.post("/v1/sale-accounts", data={"a": "b"}, headers=AUTH)
    body = await resp.json()
    assert resp.status == 400
    assert body["errors"][0]["field"] == "body"


@pytest.mark.parametrize(
    "kind", ["corrupt_deflate", "unknown_method", "encrypted", "garbage"]
)
async def test_hostile_xarios_archives_are_502s(hostile, xarios_sim, kind):
    """A detail ZIP with a broken deflate, unknown method or encryption: 502, not 500."""
    listing = await hostile.get(
        f"/v1/invoices?customer_document={DOC}&provider=xarios&limit=1", headers=AUTH
    )
    invoice_id = (await listing.json())["data"][0]["id"]
    xarios_sim.board.set("bad_zip", kind, None)
    resp = await hostile.get(f"/v1/invoices/{invoice_id}", headers=AUTH)
    body = await resp.json()
    assert resp.status == 502, body
    assert body["connection"] == "reseller"
    assert "ZIP" in body["detail"]


async def test_malformed_single_fintera_record_is_a_502(hostile, fintera_sim):
    """One receivable the mapping cannot read: 502 on its item route, never a 500."""
    listing = await hostile.get(
        f"/v1/invoices?customer_document={DOC}&provider=fintera&limit=1", headers=AUTH
    )
    invoice = (await listing.json())["data"][0]
    row = next(r for r in fintera_sim.receivables if str(r["id"]) in invoice["id"])
    row["due_date"] = "not a date"
    resp = await hostile.get(f"/v1/invoices/{invoice['id']}", headers=AUTH)
    assert resp.status == 502, await resp.text()
    listing = await hostile.get(
        f"/v1/invoices?customer_document={DOC}&provider=fintera&limit=200",
        headers={**AUTH, "Cache-Control": "no-cache"},
    )
    body = await listing.json()
    assert listing.status == 200
    assert body["sources"][0]["complete"] is False


async def test_malformed_single_hubsoft_record_is_a_502(hostile, hubsoft_sim):
    """One Hubsoft row of the wrong shape: 502 on its item route (was an IndexError)."""
    listing = await hostile.get(
        f"/v1/invoices?customer_document={DOC}&provider=hubsoft&limit=1", headers=AUTH
    )
    invoice = (await listing.json())["data"][0]
    target = next(i for i in hubsoft_sim.invoices if invoice["id"].endswith(f"-{i.id}"))
    target.kind = ["boleto"]  # type: ignore[assignment] - the hostile shape
    resp = await hostile.get(f"/v1/invoices/{invoice['id']}", headers=AUTH)
    assert resp.status == 502, await resp.text()


def test_battery_is_large_enough():
    """The battery holds at least 150 hostile cases."""
    cases = (
        len(QUERY_CASES)
        + len(ID_CASES)
        + len(HEADER_CASES)
        + len(BODY_CASES)
        + len(RAW_BODIES)
        + 4  # archives
        + 6  # single cases above
        + 3  # nulls for optional fields
        + 7  # hostile document links
        + 6  # audit parameters
    )
    assert cases >= 150, cases


async def test_huge_exponent_costs_no_memory(hostile):
    """`1e-1000000000` and friends are refused before any expansion: RSS stays put."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for exponent in ("1e-1000000000", "1e1000000000", "1e-999999999999999999"):
        for _ in range(20):
            resp = await hostile.post(
                "/v1/sale-accounts", json=cls(percentage=exponent), headers=AUTH
            )
            assert resp.status == 400
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 50 * 1024


@pytest.mark.parametrize("field", ["person_id", "description", "consolidate"])
async def test_null_for_an_optional_field_is_refused_not_ignored(hostile, field):
    """`{"person_id": null}` cannot clear the field, so it is a 400, not a silent no-op."""
    resp = await hostile.put(
        f"/v1/sale-accounts/{SALE}", json={field: None}, headers=AUTH
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert {e["field"] for e in body["errors"]} == {field}


@pytest.mark.parametrize(
    "token",
    ["%zz", "%00", "a b", "..%2F..%2Fx", "?q=1#frag", "\u202eevil", "//evil.example/x"],
)
async def test_hostile_document_links_are_never_a_500(
    hostile, hubsoft_sim, monkeypatch, token
):
    """Upstream boleto links with bad escapes, NULs or another host: 502/404, never 500."""
    listing = await hostile.get(
        f"/v1/invoices?customer_document={DOC}&provider=hubsoft&limit=200", headers=AUTH
    )
    invoices = (await listing.json())["data"]
    with_slip = next(i for i in invoices if (i["payment"] or {}).get("boleto"))
    monkeypatch.setattr(hubsoft_sim, "pdf_token", lambda _inv: token)
    resp = await hostile.get(
        f"/v1/invoices/{with_slip['id']}/document",
        headers={**AUTH, "Cache-Control": "no-cache"},
    )
    assert resp.status in {200, 404, 502}, await resp.text()
    if resp.status != 200:
        assert resp.content_type == "application/problem+json"


AUDITOR_KEY = "auditor-key-0123456789"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=%C2%B2", "limit"),
        ("limit=%EF%BC%95", "limit"),
        ("limit=9" + "9" * 400, "limit"),
        ("limit=0", "limit"),
        ("before=1-2%0A", "before"),
        ("before=%D9%A1-2", "before"),
    ],
)
async def test_hostile_audit_parameters_are_400s(
    gateway_factory, hubsoft_url, query, field
):
    """GET /v1/audit with Unicode digits or a trailing newline: 400 naming the field."""
    auditor = ApiKey(
        "auditor",
        hashlib.sha256(AUDITOR_KEY.encode()).hexdigest(),
        frozenset({"audit:read"}),
        None,
    )
    settings = make_settings(hubsoft_connection(hubsoft_url))
    settings = dataclasses.replace(settings, api_keys=(*settings.api_keys, auditor))
    client = await gateway_factory(settings)
    resp = await client.get(
        f"/v1/audit?{query}", headers={"Authorization": f"Bearer {AUDITOR_KEY}"}
    )
    body = await resp.json()
    assert resp.status == 400, body
    assert {e["field"] for e in body["errors"]} == {field}

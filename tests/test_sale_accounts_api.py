"""Sale accounts through the gateway: validation, idempotent creates, writes, caching."""

from __future__ import annotations

import asyncio

import pytest

from tests.support import (
    API_KEY,
    READER_KEY,
    fintera_connection,
    hubsoft_connection,
    make_settings,
)

AUTH = {"Authorization": f"Bearer {API_KEY}"}
GOOD = {
    "connection": "fin",
    "name": "Stone loja 1",
    "entity_id": 3798,
    "acquirer": "stone",
    "payment_methods": ["credit_card", "debit_card", "pix"],
    "consolidate": True,
    "custom_classifications": [
        {"classifier_id": 1, "name": "Zona Sul", "amount": "139.90"}
    ],
}


@pytest.fixture
async def client(gateway_factory, fintera_url, hubsoft_url):
    """A gateway with a Fintera connection `fin` (and a Hubsoft one, which keeps none)."""
    settings = make_settings(
        fintera_connection(fintera_url, timeout_s=0.5), hubsoft_connection(hubsoft_url)
    )
    return await gateway_factory(settings)


async def post(client, body, key=None, auth=AUTH):
    """POST /v1/sale-accounts with an optional Idempotency-Key."""
    headers = {**auth, **({"Idempotency-Key": key} if key else {})}
    return await client.post("/v1/sale-accounts", json=body, headers=headers)


def created(sim, name="Stone loja 1"):
    """Accounts of that name in the simulator."""
    return [a for a in sim.sale_accounts.values() if a["name"] == name]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": None}, "name"),
        ({"name": 5}, "name"),
        ({"entity_id": "x"}, "entity_id"),
        ({"entity_id": 0}, "entity_id"),
        ({"acquirer": "elo"}, "acquirer"),
        ({"acquirer": None}, "acquirer"),
        ({"payment_methods": []}, "payment_methods"),
        ({"payment_methods": "pix"}, "payment_methods"),
        ({"payment_methods": ["pix", "pix"]}, "payment_methods"),
        ({"payment_methods": ["billet"]}, "payment_methods"),
        ({"payment_methods": [{"a": 1}]}, "payment_methods"),
        ({"consolidate": "yes"}, "consolidate"),
        ({"category_id": -1}, "category_id"),
        ({"description": 3}, "description"),
        ({"color": "red"}, "color"),
        ({"connection": "nope"}, "connection"),
        ({"connection": "acme-isp"}, "connection"),
        ({"custom_classifications": {}}, "custom_classifications"),
        (
            {"custom_classifications": [{"classifier_id": 1}]},
            "custom_classifications[0].name",
        ),
        (
            {
                "custom_classifications": [
                    {"classifier_id": 1, "name": "a", "amount": "1,5"}
                ]
            },
            "custom_classifications[0].amount",
        ),
        (
            {
                "classification_center_classifications": [
                    {"classifier_id": 1, "name": "a", "percentage": 150}
                ]
            },
            "classification_center_classifications[0].percentage",
        ),
    ],
)
async def test_every_invalid_field_is_400_naming_it(client, fintera_sim, change, field):
    """Bad fields never reach the upstream; each is named."""
    resp = await post(client, {**GOOD, **change})
    body = await resp.json()
    assert resp.status == 400, body
    assert field in {e["field"] for e in body["errors"]}
    assert fintera_sim.calls("/sale_accounts") == [] or all(
        c["method"] != "POST" for c in fintera_sim.calls("/sale_accounts")
    )


async def test_malformed_json_and_wrong_content_type_are_400(client):
    """The body itself is checked first."""
    resp = await client.post(
        "/v1/sale-accounts",
        data=b"{nope",
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert (resp.status, (await resp.json())["errors"][0]["field"]) == (400, "body")
    resp = await client.post("/v1/sale-accounts", data=b"name=x", headers=AUTH)
    assert resp.status == 400


async def test_create_then_list_and_get_are_fresh(client, fintera_sim):
    """A create drops the cached list: the next read shows the new account."""
    before = await (
        await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    ).json()
    resp = await post(client, GOOD, key="k1")
    account = await resp.json()
    assert resp.status == 201
    assert account["payment_methods"] == GOOD["payment_methods"]
    assert account["custom_classifications"][0]["name"] == "Zona Sul"
    after = await (
        await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    ).json()
    assert len(after["data"]) == len(before["data"]) + 1
    one = await (
        await client.get(f"/v1/sale-accounts/{account['id']}", headers=AUTH)
    ).json()
    assert one["name"] == "Stone loja 1"
    sent = created(fintera_sim)[0]
    assert sent["payment_methods"] == "credit,debit,pix"  # translated upstream


async def test_same_key_same_body_replays_without_second_create(client, fintera_sim):
    """A retried POST gets the first answer back; one account exists."""
    first = await post(client, GOOD, key="same")
    second = await post(client, GOOD, key="same")
    assert (first.status, second.status) == (201, 201)
    assert await first.read() == await second.read()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert len(created(fintera_sim)) == 1


async def test_same_key_other_body_is_422(client, fintera_sim):
    """Reusing a key for another request is refused."""
    await post(client, GOOD, key="reuse")
    resp = await post(client, {**GOOD, "name": "Outra"}, key="reuse")
    assert resp.status == 422
    assert "different request body" in (await resp.json())["detail"]
    assert created(fintera_sim, "Outra") == []


async def test_concurrent_requests_with_one_key_create_once(client, fintera_sim):
    """Ten simultaneous POSTs with one key: one upstream create, one answer for all."""
    fintera_sim.board.set("latency", 0.2, times=1)
    responses = await asyncio.gather(
        *(post(client, GOOD, key="race") for _ in range(10))
    )
    bodies = {await r.read() for r in responses}
    assert {r.status for r in responses} == {201}
    assert len(bodies) == 1
    assert len(created(fintera_sim)) == 1
    assert (
        sum(1 for c in fintera_sim.calls("/sale_accounts") if c["method"] == "POST")
        == 1
    )


async def test_timed_out_create_is_504_and_the_retry_finds_it(client, fintera_sim):
    """The upstream created the account but answered too late: no second account."""
    fintera_sim.board.set("slow_create", 1.5, times=1)
    first = await post(client, GOOD, key="slow")
    problem = await first.json()
    assert first.status == 504
    assert "same Idempotency-Key" in problem["detail"]
    await asyncio.sleep(1.1)  # the upstream finished creating meanwhile
    retry = await post(client, GOOD, key="slow")
    account = await retry.json()
    assert retry.status == 201
    assert len(created(fintera_sim)) == 1
    assert account["remote_id"] == str(created(fintera_sim)[0]["id"])
    assert (
        sum(1 for c in fintera_sim.calls("/sale_accounts") if c["method"] == "POST")
        == 1
    )


async def test_timed_out_create_that_never_happened_is_created_on_retry(
    client, fintera_sim
):
    """If the lookup finds nothing, the retry creates (exactly once)."""
    fintera_sim.board.set("latency", 1.0, times=1)  # times out before the upstream acts
    first = await post(client, GOOD, key="lost")
    assert first.status == 504
    await asyncio.sleep(0.6)
    retry = await post(client, GOOD, key="lost")
    assert retry.status == 201
    assert len(created(fintera_sim)) == 1


async def test_upstream_422_fields_surface_as_422(client):
    """Fields the upstream refuses come back as a 422 problem with those fields."""
    resp = await post(client, {**GOOD, "entity_id": 999})
    body = await resp.json()
    assert resp.status == 422
    assert body["errors"] == [
        {
            "field": "entity_id",
            "message": "does not exist",
            "upstream": {"field": "entity", "message": "não existe"},
        }
    ]


async def test_update_changes_fields_and_refreshes_reads(client, fintera_sim):
    """PUT changes only the given fields; the next GET shows them."""
    account = await (await post(client, GOOD)).json()
    await client.get(f"/v1/sale-accounts/{account['id']}", headers=AUTH)  # now cached
    resp = await client.put(
        f"/v1/sale-accounts/{account['id']}", json={"name": "Renomeada"}, headers=AUTH
    )
    assert resp.status == 200
    assert (await resp.json())["name"] == "Renomeada"
    again = await (
        await client.get(f"/v1/sale-accounts/{account['id']}", headers=AUTH)
    ).json()
    assert again["name"] == "Renomeada"
    assert again["acquirer"] == "stone"
    bad = await client.put(
        f"/v1/sale-accounts/{account['id']}", json={"connection": "x"}, headers=AUTH
    )
    assert bad.status == 400


async def test_delete_is_accepted_and_the_account_goes_away(client, fintera_sim):
    """DELETE answers 202 (Fintera only schedules it); the account disappears later."""
    account = await (await post(client, GOOD)).json()
    resp = await client.delete(f"/v1/sale-accounts/{account['id']}", headers=AUTH)
    assert resp.status == 202
    await asyncio.sleep(fintera_sim.delete_delay_s + 0.1)
    gone = await client.get(f"/v1/sale-accounts/{account['id']}", headers=AUTH)
    assert gone.status == 404


async def test_writes_need_the_write_scope(client):
    """A read-only key may not create."""
    resp = await post(client, GOOD, auth={"Authorization": f"Bearer {READER_KEY}"})
    assert resp.status == 403


async def test_402_is_a_clear_problem(client, fintera_sim):
    """A subscription overdue upstream is named as such."""
    fintera_sim.board.set("overdue")
    resp = await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    body = await resp.json()
    assert resp.status == 502
    assert "subscription overdue" in body["detail"]


async def test_list_needs_a_sale_account_connection(client):
    """`connection` is required and must keep sale accounts."""
    resp = await client.get("/v1/sale-accounts?connection=acme-isp", headers=AUTH)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["field"] == "connection"


async def test_created_account_has_a_location_also_on_replay(client):
    """201 carries `Location` of the new account; the idempotent replay carries it too."""
    first = await post(client, GOOD, key="loc-1")
    account = await first.json()
    assert first.headers["Location"] == f"/v1/sale-accounts/{account['id']}"
    again = await post(client, GOOD, key="loc-1")
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]


@pytest.mark.parametrize("put_empty", [False, True])
async def test_put_answers_with_the_upstream_body_or_reads_back(
    client, fintera_sim, put_empty
):
    """PUT serves the account from Fintera's 200 body; an empty 200 is read back."""
    fintera_sim.put_empty = put_empty
    account = await (await post(client, GOOD)).json()
    path = f"/sale_accounts/{account['remote_id']}.json"
    reads_before = [c for c in fintera_sim.calls(path) if c["method"] == "GET"]
    resp = await client.put(
        f"/v1/sale-accounts/{account['id']}", json={"name": "Outro"}, headers=AUTH
    )
    assert resp.status == 200
    assert (await resp.json())["name"] == "Outro"
    reads = [c for c in fintera_sim.calls(path) if c["method"] == "GET"]
    assert len(reads) - len(reads_before) == (1 if put_empty else 0)


async def test_deleted_account_leaves_list_and_item_at_once(client, fintera_sim):
    """DELETE 202, then the list and the item no longer show it, though Fintera lags."""
    fintera_sim.delete_delay_s = 60.0
    account = await (await post(client, GOOD)).json()
    listed = await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    assert account["id"] in {a["id"] for a in (await listed.json())["data"]}
    resp = await client.delete(f"/v1/sale-accounts/{account['id']}", headers=AUTH)
    assert resp.status == 202
    for headers in (AUTH, {**AUTH, "Cache-Control": "no-cache"}):
        listed = await client.get("/v1/sale-accounts?connection=fin", headers=headers)
        assert account["id"] not in {a["id"] for a in (await listed.json())["data"]}
        item = await client.get(f"/v1/sale-accounts/{account['id']}", headers=headers)
        assert item.status == 404


async def test_no_cache_reloads_the_sale_account_list(client, fintera_sim):
    """`Cache-Control: no-cache` on the list goes upstream; without it the cache serves."""
    await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    calls = len(fintera_sim.calls("/sale_accounts.json"))
    await client.get("/v1/sale-accounts?connection=fin", headers=AUTH)
    assert len(fintera_sim.calls("/sale_accounts.json")) == calls
    await client.get(
        "/v1/sale-accounts?connection=fin",
        headers={**AUTH, "Cache-Control": "no-cache"},
    )
    assert len(fintera_sim.calls("/sale_accounts.json")) == calls + 1

"""End users (JWT bound to a customer) see only their own customer's events."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.events.state import DETECTOR
from tests.jwt_support import JwksServer, issuer, mint, rsa_key
from tests.support import API_KEY, TODAY
from tests.test_events_feed import build, pages, two_tenants

__all__ = ["build", "two_tenants"]  # fixtures used by name
MARIA = "12345678909"
KEY = rsa_key("events")
WEEKS_8 = timedelta(weeks=8)


async def test_feed_and_stream_show_an_end_user_only_its_customers_events(
    build, two_tenants, aiohttp_server
):
    """Maria's token sees the event about her invoice, not the one about another customer."""
    jwks = await aiohttp_server(JwksServer([KEY]).app())
    client, app = await build(jwt_issuers=(issuer(str(jwks.make_url("/jwks.json"))),))
    (acme, _), _ = two_tenants
    watched = [
        i
        for i in acme.invoices
        if i.paid_on is None and TODAY - WEEKS_8 <= i.due <= TODAY + WEEKS_8 / 2
    ]
    hers = next(i for i in watched if i.customer.document == MARIA)
    other = next(i for i in watched if i.customer.document != MARIA)
    for inv in (other, hers):
        acme.mark_paid(inv.id)
    await app[DETECTOR].sync_now()
    assert len(await pages(client, API_KEY, 10)) == 2
    token = mint(KEY, MARIA)
    seen = await pages(client, token, 10)
    assert [e["data"]["customer"]["document"] for e in seen] == [MARIA]
    headers = {"Authorization": f"Bearer {token}"}
    async with client.get(
        "/v1/events/stream", params={"after": "0-0"}, headers=headers
    ) as resp:
        line = ""
        while not line.startswith("data: "):
            line = (await asyncio.wait_for(resp.content.readline(), 10)).decode()
    assert MARIA in line
    async with client.get("/v1/webhooks/x/deliveries", headers=headers) as resp:
        assert resp.status == 403

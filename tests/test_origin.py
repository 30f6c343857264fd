"""Credentials stay home: hostile links in upstream data never reach another origin.

A trap server on another loopback port counts every request it receives. Each hostile
link form is planted where upstream data carries links — Fintera's next page, Hubsoft's
boleto link, and a redirect's Location — and the trap must see nothing.
"""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.upstream import origin
from tests.support import (
    AUTH,
    DOC,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)

# {trap}: the trap's port; {port}: the upstream's own port.
HOSTILE = {
    "relative with a port": ":{trap}/steal.json",
    "network-path //host": "//127.0.0.1:{trap}/steal.json",
    "another port": "http://127.0.0.1:{trap}/steal.json",
    "another name, same machine": "http://localhost:{trap}/steal.json",
    "@host": "@127.0.0.1:{trap}/steal.json",
    "user info before the host": "http://127.0.0.1:{port}@127.0.0.1:{trap}/steal",
    "host suffix": "http://127.0.0.1.:{trap}/steal.json",
    "relative host suffix": ".localhost:{trap}/steal.json",
    "file:": "file:///etc/passwd",
    "double port": "http://127.0.0.1:{port}:{trap}/steal.json",
    "IDN folding to localhost": "http://\u217cocalhost:{trap}/steal.json",
    "backslashes": "\\\\127.0.0.1:{trap}\\steal.json",
    "slash-backslash": "/\\127.0.0.1:{trap}/steal.json",
    "percent-encoded slashes": "%2F%2F127.0.0.1:{trap}/steal.json",
    "percent-encoded scheme separator": "http:%2F%2F127.0.0.1:{trap}/steal.json",
    "scheme change": "https://127.0.0.1:{port}/steal.json",
    "scheme change to ws": "ws://127.0.0.1:{trap}/steal.json",
    "tab inside": "http://127.0.0.1:{trap}/\tsteal.json",
}


class Trap:
    """A listener on another port: counts requests and the headers they carried."""

    def __init__(self) -> None:
        """No request yet."""
        self.seen: list[dict[str, str]] = []

    def app(self) -> web.Application:
        """Answers everything with a small PDF (so a leak would look like success)."""

        async def anything(request: web.Request) -> web.Response:
            self.seen.append(dict(request.headers))
            return web.Response(body=b"%PDF-1.4 trap", content_type="application/pdf")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", anything)
        return app


@pytest.fixture
async def trap(aiohttp_server) -> tuple[Trap, int]:
    """The trap and its port."""
    catcher = Trap()
    server: TestServer = await aiohttp_server(catcher.app())
    return catcher, server.port


def _form(name: str, trap_port: int, upstream_url: str) -> str:
    port = upstream_url.rsplit(":", 1)[1]
    return HOSTILE[name].format(trap=trap_port, port=port)


@pytest.fixture
async def gateway(gateway_factory, hubsoft_url, fintera_url):
    """Hubsoft and Fintera connections, no cache, one try per call."""
    kw = {"cache_fresh_s": 0.0, "cache_stale_s": 0.0, "retry_attempts": 1}
    return await gateway_factory(
        make_settings(
            hubsoft_connection(hubsoft_url, **kw), fintera_connection(fintera_url, **kw)
        )
    )


async def _boleto_invoice(gateway) -> str:
    resp = await gateway.get(
        f"/v1/invoices?customer_document={DOC}&provider=hubsoft&limit=200",
        headers=AUTH,
    )
    body = await resp.json()
    return next(
        inv["id"]
        for inv in body["data"]
        if inv["payment"]
        and inv["payment"]["boleto"]
        and inv["payment"]["boleto"]["url"]
    )


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_next_link_reaches_no_other_origin(
    gateway, fintera_sim, fintera_url, trap, name
):
    """A next link in any hostile form: the trap sees nothing, the source says why."""
    catcher, trap_port = trap
    fintera_sim.board.set("next_link", _form(name, trap_port, fintera_url))
    resp = await gateway.get(
        f"/v1/invoices?customer_document={DOC}&connection=fin", headers=AUTH
    )
    raw = await resp.read()
    assert resp.status in {200, 502}, raw
    assert catcher.seen == []
    source = orjson.loads(raw)["sources"][0]
    assert source["status"] != "ok" or source["complete"] is False
    assert str(trap_port) not in raw.decode()  # the link is never echoed


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_boleto_link_reaches_no_other_origin(
    gateway, hubsoft_sim, hubsoft_url, trap, name
):
    """A boleto link in any hostile form: no request leaves, and the answer is no 500."""
    catcher, trap_port = trap
    invoice_id = await _boleto_invoice(gateway)
    hubsoft_sim.board.set("rewrite", {"link": _form(name, trap_port, hubsoft_url)})
    resp = await gateway.get(f"/v1/invoices/{invoice_id}/document", headers=AUTH)
    raw = await resp.read()
    assert resp.status in {404, 502}, raw
    assert resp.content_type == "application/problem+json"
    assert catcher.seen == []
    assert str(trap_port) not in raw.decode()


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_redirect_reaches_no_other_origin(
    gateway, hubsoft_sim, fintera_sim, hubsoft_url, fintera_url, trap, name
):
    """A redirect to any hostile form, on an API read and on a document: none followed."""
    catcher, trap_port = trap
    invoice_id = await _boleto_invoice(gateway)
    fintera_sim.board.set("redirect", _form(name, trap_port, fintera_url))
    hubsoft_sim.board.set("redirect", _form(name, trap_port, hubsoft_url), path="/pdf/")
    listed = await gateway.get(
        f"/v1/invoices?customer_document={DOC}&connection=fin", headers=AUTH
    )
    document = await gateway.get(f"/v1/invoices/{invoice_id}/document", headers=AUTH)
    assert listed.status == 502, await listed.text()
    assert document.status in {404, 502}, await document.text()
    assert catcher.seen == []


async def test_refused_link_is_a_source_error_naming_the_connection(
    gateway, fintera_sim, trap
):
    """The refusal reads as this connection's error, without the link itself."""
    _, trap_port = trap
    fintera_sim.board.set("next_link", f"http://127.0.0.1:{trap_port}/x?sig=SECRET")
    resp = await gateway.get(
        f"/v1/invoices?customer_document={DOC}&connection=fin", headers=AUTH
    )
    body = await resp.json()
    error = str(body["sources"][0]["error"])
    assert "fin" in error
    assert "refused" in error
    assert "SECRET" not in error


async def test_same_origin_redirect_is_followed(gateway, fintera_sim, fintera_url):
    """A redirect back to the connection's own origin is followed (bounded)."""
    again = (
        f"{fintera_url}/people.json?search%5Bfederation_subscription_number_equals%5D="
    )
    fintera_sim.board.set("redirect", again + "123.456.789-09", times=1, path="/people")
    resp = await gateway.get(
        f"/v1/invoices?customer_document={DOC}&connection=fin", headers=AUTH
    )
    body = await resp.json()
    assert resp.status == 200
    assert body["sources"][0]["status"] == "ok"
    assert body["data"]
    assert len(fintera_sim.calls("/people")) == 2


async def test_listed_document_origin_is_fetched_without_credentials(
    gateway_factory, hubsoft_url, hubsoft_sim, trap
):
    """A boleto on a configured document origin is served, sent no credential."""
    catcher, trap_port = trap
    cdn = f"http://127.0.0.1:{trap_port}"
    client = await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url, document_origins=(cdn,)))
    )
    invoice_id = await _boleto_invoice(client)
    hubsoft_sim.board.set("rewrite", {"link": f"{cdn}/boleto.pdf?sig=abc"})
    resp = await client.get(f"/v1/invoices/{invoice_id}/document", headers=AUTH)
    assert resp.status == 200
    assert (await resp.read()).startswith(b"%PDF")
    assert len(catcher.seen) == 1
    assert "Authorization" not in catcher.seen[0]


async def test_redirect_to_document_origin_drops_the_bearer_token(
    gateway_factory, xarios_url, xarios_sim, trap
):
    """Xarios's authenticated summary, redirected to a listed CDN, arrives there bare."""
    catcher, trap_port = trap
    cdn = f"http://127.0.0.1:{trap_port}"
    client = await gateway_factory(
        make_settings(
            xarios_connection(
                xarios_url, xarios_sim.issue_refresh_token(), document_origins=(cdn,)
            )
        )
    )
    listed = await (await client.get("/v1/invoices", headers=AUTH)).json()
    invoice_id = listed["data"][0]["id"]
    xarios_sim.board.set("redirect", f"{cdn}/summary.pdf", path="/summary$")
    resp = await client.get(f"/v1/invoices/{invoice_id}/document", headers=AUTH)
    assert resp.status == 200
    assert len(catcher.seen) == 1
    assert "Authorization" not in catcher.seen[0]


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_portless_base_keeps_every_form_on_its_origin(name):
    """Against a production-style base URL (no port), no form resolves elsewhere."""
    base = origin.base_url("https://api.vendor.example")
    link = origin.Link(HOSTILE[name].format(trap=19209, port=443))
    try:
        url = origin.resolve(base, link)
        landed = origin.check(url, {origin.Origin.of(base)})
    except origin.LinkRefusedError:
        return
    assert landed == origin.Origin("https", "api.vendor.example", 443)
    assert url.raw_host == "api.vendor.example"


@pytest.mark.parametrize(("fault", "status"), [(None, 404), ("status", 502)])
async def test_failed_document_names_no_query_or_token(
    gateway, hubsoft_sim, hubsoft_url, fault, status
):
    """A document that fails upstream: the problem carries neither its query nor token."""
    invoice_id = await _boleto_invoice(gateway)
    link = f"{hubsoft_url}/pdf/fatura/TOKEN-123?sig=SIGNATURE-456"
    hubsoft_sim.board.set("rewrite", {"link": link})
    if fault:
        hubsoft_sim.board.set(fault, 500, path="/pdf/")
    resp = await gateway.get(f"/v1/invoices/{invoice_id}/document", headers=AUTH)
    text = await resp.text()
    assert resp.status == status, text
    assert "SIGNATURE-456" not in text
    assert "TOKEN-123" not in text

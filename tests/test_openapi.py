"""The OpenAPI document matches the routes and the parameters the API really accepts."""

from __future__ import annotations

import re

from gateway.api.params import LIST_PARAMS, SUMMARY_PARAMS


def shape(path: str) -> str:
    """`/v1/invoices/{invoice_id}` and `/v1/invoices/{id}` compare equal."""
    return re.sub(r"\{[^}]+\}", "{}", path)


async def test_every_route_is_described_and_every_description_routed(gateway):
    """No undocumented route, no documented ghost."""
    spec = await (await gateway.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    documented = {
        (shape(p), m.upper()) for p, ops in spec["paths"].items() for m in ops
    }
    routed = {
        (shape(r.resource.canonical), r.method)
        for r in gateway.app.router.routes()
        if r.method != "HEAD"
        and r.resource is not None
        and r.resource.canonical not in {"/openapi.json", "/docs"}
        and not r.resource.canonical.startswith("/app")  # the page, not the API
    }
    assert documented == routed


async def test_documented_parameters_are_the_accepted_ones(gateway):
    """List and summary parameters in the document are exactly what the parser allows."""
    spec = await (await gateway.get("/openapi.json")).json()

    def query_params(path):
        return {
            p["name"]
            for p in spec["paths"][path]["get"]["parameters"]
            if p["in"] == "query"
        }

    assert query_params("/v1/invoices") == set(LIST_PARAMS)
    assert query_params("/v1/invoices/summary") == set(SUMMARY_PARAMS)


async def test_docs_page_lists_the_routes(gateway):
    """`/docs` is readable HTML naming every path."""
    resp = await gateway.get("/docs")
    page = await resp.text()
    assert resp.content_type == "text/html"
    for path in (
        "/v1/invoices",
        "/v1/invoices/summary",
        "/v1/sale-accounts/{id}",
        "/metrics",
    ):
        assert path in page

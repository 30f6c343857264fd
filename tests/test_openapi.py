"""The OpenAPI document matches the routes and the parameters the API really accepts."""

from __future__ import annotations

import re

from gateway.api.openapi import DOCUMENT
from gateway.api.params import LIST_PARAMS, SUMMARY_PARAMS
from tests.contract import validator


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
        and not r.resource.canonical.startswith(("/openapi.json", "/docs"))
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


async def test_every_operation_has_an_id_and_problem_responses(gateway):
    """Each operation: a unique operationId, and problem+json for every error status."""
    spec = await (await gateway.get("/openapi.json")).json()
    ops = [op for ops in spec["paths"].values() for op in ops.values()]
    ids = [op["operationId"] for op in ops]
    assert len(set(ids)) == len(ids) == 18
    problems = spec["components"]["responses"]
    for op in ops:
        for status, response in op["responses"].items():
            if int(status) >= 400:
                name = response["$ref"].rsplit("/", 1)[1]
                assert "application/problem+json" in problems[name]["content"]


def test_every_schema_names_its_required_members_and_has_examples():
    """Objects served or accepted state what is required; top-level ones carry examples."""
    for name, schema in DOCUMENT["components"]["schemas"].items():
        assert schema["type"] == "object", name
        assert schema.get("required") or schema.get("minProperties"), name
    for name in (
        "Invoice",
        "InvoiceList",
        "SaleAccount",
        "SaleAccountCreate",
        "Problem",
    ):
        assert DOCUMENT["components"]["schemas"][name]["examples"], name


def test_the_examples_match_their_schemas():
    """Every example in the document validates against the schema it illustrates."""
    for name, schema in DOCUMENT["components"]["schemas"].items():
        for example in schema.get("examples", []):
            errors = list(
                validator(f"#/components/schemas/{name}").iter_errors(example)
            )
            assert not errors, (name, errors[:1])


async def test_docs_page_is_swagger_ui_served_locally(gateway):
    """`/docs` loads Swagger UI from the gateway itself, never from another origin."""
    resp = await gateway.get("/docs")
    page = await resp.text()
    assert resp.content_type == "text/html"
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    assert all(a.startswith("/") for a in assets)
    for asset in assets:
        fetched = await gateway.get(asset)
        assert fetched.status == 200, asset
        assert len(await fetched.read()) > 100, asset
    init = await (await gateway.get("/docs/init.js")).text()
    assert '"/openapi.json"' in init

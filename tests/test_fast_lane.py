"""The fast lane: a cached page answered before routing, exactly as the pipeline answers it.

Served through `GatewayRunner` (as `invoice-gateway serve` does), a GET the lane can
answer must get the same status, headers, body, metrics and access line as the full way
(routing, middleware, the pipeline); every request it cannot answer must reach the full
way untouched and get the pipeline's own answer.
"""

from __future__ import annotations

import dataclasses
import hashlib

import orjson
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.parser import text_string_to_metric_families

from gateway.api.fastlane import FastLane, at_once_paths
from gateway.api.handlers import healthz, list_invoices
from gateway.api.middleware import pipeline
from gateway.app import create_app
from gateway.config.settings import ApiKey, CallerLimit, CorsSettings, Settings
from tests.conftest import GatewayTestServer
from tests.support import (
    API_KEY,
    AUTH,
    LIMITED_KEY,
    hubsoft_connection,
    log_lines,
    make_settings,
)

QUERY = "/v1/invoices?customer_document=12345678909&limit=5"
ORIGIN = "https://billing.example"
WRITER_KEY = "writer-key-0123456789"  # no invoices:read scope
BUDGET_KEY = "budget-key-0123456789"  # a budget to charge on every request
# What may differ between two answers to the same request: when, and which request.
PER_REQUEST = {"Date", "X-Request-ID"}


def _settings(hubsoft_url: str) -> Settings:
    settings = make_settings(
        hubsoft_connection(hubsoft_url), cors=CorsSettings(frozenset({ORIGIN}))
    )
    extra = (
        ApiKey(
            "writer",
            hashlib.sha256(WRITER_KEY.encode()).hexdigest(),
            frozenset({"sale_accounts:write"}),
            None,
        ),
        ApiKey(
            "budgeted",
            hashlib.sha256(BUDGET_KEY.encode()).hexdigest(),
            frozenset({"invoices:read"}),
            None,
            CallerLimit(1000, 60.0),
        ),
    )
    return dataclasses.replace(settings, api_keys=settings.api_keys + extra)


@pytest.fixture
async def served(aiohttp_client, hubsoft_url):
    """The gateway served as production serves it, its lane, and the page cached."""
    client = await aiohttp_client(GatewayTestServer(create_app(_settings(hubsoft_url))))
    lane = client.server.runner.server.request_handler
    assert isinstance(lane, FastLane)
    for _ in range(2):  # a miss keeps the page; the next hit checks it is current
        assert (await client.get(QUERY, headers=AUTH)).status == 200
    assert lane.answered == 0
    return client, lane


def _ageless(body: bytes) -> object:
    answer = orjson.loads(body)
    for source in answer["sources"]:
        source.pop("age_s")  # a second may tick between two requests
    return answer


async def test_the_lane_answers_a_hit_as_the_full_way_does(served, json_logs):
    """Same status, headers, body, access line and metrics, through the lane or not."""
    client, lane = served
    stream = json_logs()
    lane_answer = await client.get(QUERY, headers=AUTH)
    assert lane.answered == 1
    # A deadline to check sends a hit the full way (the pipeline answers it at once).
    full_answer = await client.get(QUERY, headers={**AUTH, "X-Deadline-Ms": "9000"})
    assert lane.answered == 1
    assert lane_answer.status == full_answer.status == 200
    lane_headers = {
        k: v for k, v in lane_answer.headers.items() if k not in PER_REQUEST
    }
    full_headers = {
        k: v for k, v in full_answer.headers.items() if k not in PER_REQUEST
    }
    assert lane_headers == full_headers
    assert lane_headers["Server"] == "invoice-gateway"
    assert lane_answer.headers["X-Request-ID"] != full_answer.headers["X-Request-ID"]
    assert _ageless(await lane_answer.read()) == _ageless(await full_answer.read())
    by_lane, by_full = log_lines(stream, "request")
    assert by_lane["request_id"] == lane_answer.headers["X-Request-ID"]
    assert by_full["request_id"] == full_answer.headers["X-Request-ID"]
    assert list(by_lane) == list(by_full)
    per_line = {"request_id", "duration_ms", "timestamp"}
    assert {k: v for k, v in by_lane.items() if k not in per_line} == {
        k: v for k, v in by_full.items() if k not in per_line
    }
    assert by_lane["sources"] == ["acme-isp:ok"]
    metrics = await (await client.get("/metrics")).text()
    counted = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    # The two requests of the set-up, the lane's and the full way's: each counted once.
    route = ("route", "/v1/invoices")
    assert counted[("gateway_requests_total", (route, ("status", "200")))] == 4
    assert counted[("gateway_request_duration_seconds_count", (route,))] == 4
    source = (("connection", "acme-isp"), ("from_cache", "true"), ("status", "ok"))
    assert counted[("gateway_source_outcomes_total", source)] == 3


@pytest.mark.parametrize(
    ("headers", "in_lane", "status"),
    [
        pytest.param(AUTH, True, 200, id="api-key"),
        pytest.param({**AUTH, "X-Request-ID": "front-7"}, True, 200, id="request-id"),
        pytest.param({**AUTH, "Origin": ORIGIN}, True, 200, id="cors-origin"),
        pytest.param(
            {**AUTH, "Origin": "https://evil.example"}, True, 200, id="cors-x"
        ),
        pytest.param({**AUTH, "Cache-Control": "no-cache"}, False, 200, id="no-cache"),
        pytest.param({}, False, 401, id="no-credential"),
        pytest.param({"Authorization": "Bearer nope-0000"}, False, 401, id="bad-key"),
        pytest.param({"Authorization": "Basic eDp5"}, False, 401, id="not-bearer"),
        pytest.param(
            {"Authorization": f"Bearer {WRITER_KEY}"}, False, 403, id="no-scope"
        ),
        pytest.param(
            {"Authorization": f"Bearer {BUDGET_KEY}"}, False, 200, id="budget"
        ),
        pytest.param(
            {"Authorization": f"Bearer {LIMITED_KEY}"}, False, 200, id="other-page"
        ),
        pytest.param({**AUTH, "X-Deadline-Ms": "soon"}, False, 400, id="bad-deadline"),
    ],
)
async def test_what_the_lane_leaves_gets_the_pipelines_answer(
    served, headers, in_lane, status
):
    """Only a simple hit stays in the lane; the rest gets the full way's answer."""
    client, lane = served
    resp = await client.get(QUERY, headers=headers)
    body = await resp.read()
    assert (resp.status, lane.answered) == (status, int(in_lane))
    assert resp.headers["Server"] == "invoice-gateway"
    request_id = resp.headers["X-Request-ID"]
    assert request_id == headers.get("X-Request-ID", request_id)
    assert len(request_id) >= 7
    if status >= 400:
        assert resp.content_type == "application/problem+json"
        assert orjson.loads(body)["status"] == status
    if "Origin" in headers:
        assert resp.headers["Vary"] == "Origin"
        granted = resp.headers.get("Access-Control-Allow-Origin")
        assert granted == (ORIGIN if headers["Origin"] == ORIGIN else None)
    if headers.get("Authorization", "").endswith(BUDGET_KEY):
        assert "RateLimit" in resp.headers


async def test_a_conditional_hit_is_a_304_in_the_lane(served):
    """If-None-Match with the page's ETag: 304 without a body, from the lane."""
    client, lane = served
    etag = (await client.get(QUERY, headers=AUTH)).headers["ETag"]
    resp = await client.get(QUERY, headers={**AUTH, "If-None-Match": etag})
    assert (resp.status, lane.answered) == (304, 2)
    assert await resp.read() == b""
    assert resp.headers["ETag"] == etag


async def test_other_methods_and_paths_go_the_full_way(served):
    """HEAD, POST, a body, another path: routing and the pipeline answer them."""
    client, lane = served
    head = await client.head(QUERY, headers=AUTH)
    post = await client.post(QUERY, headers=AUTH)
    with_body = await client.request("GET", QUERY, headers=AUTH, data=b"{}")
    slash = await client.get(QUERY.replace("invoices?", "invoices/?"), headers=AUTH)
    assert (head.status, post.status, with_body.status) == (200, 405, 200)
    assert slash.status == 404
    assert post.content_type == "application/problem+json"
    assert all("X-Request-ID" in r.headers for r in (head, post, with_body, slash))
    assert lane.answered == 0


def test_no_lane_where_routing_could_choose_otherwise(hubsoft_url):
    """An app with a response-prepare signal, or a sub-application, gets no lane."""
    plain = create_app(_settings(hubsoft_url))
    plain.freeze()
    assert set(at_once_paths(plain)) == {"/v1/invoices"}
    signalled = create_app(_settings(hubsoft_url))

    async def seen(_request: web.Request, _response: web.StreamResponse) -> None:
        return None

    signalled.on_response_prepare.append(seen)
    assert at_once_paths(signalled) == {}
    for first in (None, "*"):  # a `*` route first takes the path's GETs: no lane
        bare = web.Application(middlewares=[pipeline])
        if first is not None:  # (a resource of its own, registered first)
            bare.router.add_route(first, "/v1/invoices", healthz)
            bare.router.add_get("/v1/other", healthz)
        bare.router.add_get("/v1/invoices", list_invoices)
        assert set(at_once_paths(bare)) == (
            {"/v1/invoices"} if first is None else set()
        )
    nested = create_app(_settings(hubsoft_url))
    nested.add_subapp("/extra", web.Application())
    assert at_once_paths(nested) == {}


async def test_api_key_in_the_lane_is_still_checked(served):
    """A key that differs in one character is refused the full way (401), never served."""
    client, lane = served
    near = API_KEY[:-1] + ("0" if API_KEY[-1] != "0" else "1")
    resp = await client.get(QUERY, headers={"Authorization": f"Bearer {near}"})
    assert (resp.status, lane.answered) == (401, 0)


async def test_an_expectation_goes_the_full_way(served):
    """`Expect` is routing's to meet (100 Continue) or refuse (417): never the lane's.

    The full way refuses an expectation it cannot meet before any middleware runs; the
    lane, before routing, would answer the page as if none had been asked.
    """
    client, lane = served
    resp = await client.get(QUERY, headers={**AUTH, "Expect": "x-unknown"})
    assert (resp.status, lane.answered) == (417, 0)
    # Refused by routing before the pipeline, yet answered as the pipeline answers.
    assert resp.content_type == "application/problem+json"
    assert (await resp.json())["status"] == 417
    assert resp.headers["Server"] == "invoice-gateway"
    assert len(resp.headers["X-Request-ID"]) == 32


async def test_no_lane_past_another_middleware(aiohttp_client, hubsoft_url):
    """A middleware besides the pipeline must see every request: then there is no lane.

    The lane skips routing and so every middleware; one added before the pipeline (here
    a header on every answer; an address allow-list alike) would miss every cached hit.
    """
    app = create_app(_settings(hubsoft_url))

    @web.middleware
    async def stamped(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers["Strict-Transport-Security"] = "max-age=63072000"
        return response

    app.middlewares.insert(0, stamped)
    client = await aiohttp_client(GatewayTestServer(app))
    lane = client.server.runner.server.request_handler
    answers = [await client.get(QUERY, headers=AUTH) for _ in range(3)]
    assert [r.status for r in answers] == [200, 200, 200]
    assert all("Strict-Transport-Security" in r.headers for r in answers)
    assert lane.answered == 0

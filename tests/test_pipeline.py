"""The one-middleware request pipeline: its deadline backstop and its inline access line."""

from __future__ import annotations

import asyncio
import time

import structlog
import structlog.testing
from aiohttp import web

from gateway.api.deadlines import (
    BACKSTOP_GRACE_S,
    BACKSTOP_TICK_S,
    BACKSTOPS,
    Backstops,
)
from gateway.app import create_app
from tests.support import AUTH, hubsoft_connection, log_lines, make_settings

QUERY = "/v1/invoices?customer_document=12345678909&limit=5"


def _hanging_app(
    hubsoft_url: str, **settings: object
) -> tuple[web.Application, list[str]]:
    """The gateway with two extra routes whose handlers never answer; what they saw."""
    app = create_app(make_settings(hubsoft_connection(hubsoft_url), **settings))
    seen: list[str] = []

    async def hang(_request: web.Request) -> web.Response:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return web.Response()

    app.router.add_get("/v1/hang", hang)
    app.router.add_post("/v1/hang", hang)
    return app, seen


async def test_a_hung_handler_is_cut_at_its_deadline(aiohttp_client, hubsoft_url):
    """The backstop cancels the handler a grace after X-Deadline-Ms: 504 problem, in time."""
    app, seen = _hanging_app(hubsoft_url)
    client = await aiohttp_client(app)
    started = time.monotonic()
    resp = await client.get("/v1/hang", headers={**AUTH, "X-Deadline-Ms": "200"})
    took = time.monotonic() - started
    body = await resp.json()
    assert (resp.status, body["type"].rsplit(":", 1)[-1]) == (504, "deadline")
    assert "0.2s deadline" in body["detail"]
    assert "X-Request-ID" in resp.headers
    assert seen == ["cancelled"]
    assert (
        0.2 + BACKSTOP_GRACE_S
        <= took
        < 0.2 + BACKSTOP_GRACE_S + 2 * BACKSTOP_TICK_S + 1
    )
    assert len(app[BACKSTOPS]) == 0


async def test_a_cut_write_says_its_outcome_is_uncertain(aiohttp_client, hubsoft_url):
    """A write cut by the backstop may have reached the upstream: the 504 says so."""
    app, _ = _hanging_app(hubsoft_url, request_timeout_s=0.2)
    client = await aiohttp_client(app)
    resp = await client.post("/v1/hang", headers=AUTH)
    assert resp.status == 504
    assert "outcome is uncertain" in (await resp.json())["detail"]


async def test_answered_requests_leave_no_backstop_armed(aiohttp_client, hubsoft_url):
    """Served requests disarm theirs: nothing is left to fire, the sweeping timer stops."""
    app = create_app(make_settings(hubsoft_connection(hubsoft_url)))
    client = await aiohttp_client(app)
    for _ in range(3):
        assert (await client.get(QUERY, headers=AUTH)).status == 200
    assert len(app[BACKSTOPS]) == 0
    await asyncio.sleep(3 * BACKSTOP_TICK_S)
    assert app[BACKSTOPS]._timer is None


async def test_backstops_fire_only_when_due():
    """Each backstop fires at its own time (within two ticks), not its neighbours'."""
    backstops = Backstops(tick_s=0.02)

    async def wait(seconds: float) -> str:
        backstop = backstops.arm(seconds)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            assert backstop.expired
            return f"cut after {seconds}"
        return "not cut"

    async def disarmed() -> str:
        backstops.arm(0.05).disarm()
        await asyncio.sleep(0.3)
        return "ran on"

    started = time.monotonic()
    early, late, free = await asyncio.gather(wait(0.05), wait(0.2), disarmed())
    assert (early, late, free) == ("cut after 0.05", "cut after 0.2", "ran on")
    assert time.monotonic() - started < 1
    assert len(backstops) == 0


async def test_access_line_as_structlog_renders_it(
    aiohttp_client, hubsoft_url, json_logs, monkeypatch
):
    """The inline access line has the chain's keys, order and values (time aside)."""
    stream = json_logs()
    through_structlog: list[str] = []
    get_logger = structlog.get_logger

    def spy(*args: str) -> object:
        through_structlog.extend(args)
        return get_logger(*args)

    monkeypatch.setattr(structlog, "get_logger", spy)
    client = await aiohttp_client(
        create_app(make_settings(hubsoft_connection(hubsoft_url)))
    )
    resp = await client.get(QUERY, headers={**AUTH, "X-Request-ID": "req-42"})
    assert resp.status == 200
    assert "access" not in through_structlog  # rendered inline, not by the chain
    (line,) = log_lines(stream, "request")
    fields = {
        "method": "GET",
        "route": "/v1/invoices",
        "status": 200,
        "duration_ms": line["duration_ms"],
        "caller": "tests",
        "sources": ["acme-isp:ok"],
    }
    structlog.contextvars.bind_contextvars(request_id="req-42")
    try:
        structlog.get_logger("access").info("request", **fields)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    inline, chain = log_lines(stream, "request")
    assert inline == line
    assert list(line) == list(chain)
    assert {**line, "timestamp": None} == {**chain, "timestamp": None}
    assert isinstance(line["duration_ms"], float)
    assert str(line["timestamp"]).endswith("Z")


async def test_access_line_redacts_a_secret_named_context(
    aiohttp_client, hubsoft_url, json_logs
):
    """Whatever the request bound to the log context, a credential-named key is blanked."""
    stream = json_logs()
    app = create_app(make_settings(hubsoft_connection(hubsoft_url)))

    async def careless(_request: web.Request) -> web.Response:
        structlog.contextvars.bind_contextvars(api_token="SECRET-4711", step="done")
        return web.Response()

    app.router.add_get("/v1/careless", careless)
    client = await aiohttp_client(app)
    assert (await client.get("/v1/careless", headers=AUTH)).status == 200
    (line,) = log_lines(stream, "request")
    assert (line["api_token"], line["step"]) == ("[redacted]", "done")
    assert b"SECRET-4711" not in stream.getvalue()


async def test_access_line_follows_the_level_and_captures(
    aiohttp_client, hubsoft_url, json_logs
):
    """At `warning` no access line; under `capture_logs` it is captured like any event."""
    stream = json_logs("warning")
    client = await aiohttp_client(
        create_app(make_settings(hubsoft_connection(hubsoft_url)))
    )
    assert (await client.get(QUERY, headers=AUTH)).status == 200
    assert log_lines(stream, "request") == []
    json_logs("info")
    with structlog.testing.capture_logs() as captured:
        assert (await client.get(QUERY, headers=AUTH)).status == 200
    assert [e["status"] for e in captured if e["event"] == "request"] == [200]
    assert log_lines(stream, "request") == []

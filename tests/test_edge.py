"""Errors aiohttp answers before any route runs, and the last-resort guard, as problems."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import structlog
from aiohttp import web

from gateway.api.edge import (
    MAX_HEADER_FIELD,
    MAX_HEADERS,
    MAX_REQUEST_LINE,
    SERVER_NAME,
)
from gateway.app import create_app
from tests.conftest import GatewayTestServer
from tests.contract import validator
from tests.support import AUTH, NOW, hubsoft_connection, make_settings

SECRET = "tok_live_7f3a9c"


async def raw_exchange(client, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read until the server closes: (status, headers, body)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(data)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def assert_problem(status: int, headers: dict[str, str], body: bytes, expect: int):
    """A problem+json of the expected status, valid against the document."""
    assert status == expect, body
    assert headers["content-type"].startswith("application/problem+json")
    problem = orjson.loads(body)
    assert problem["status"] == expect
    assert not list(validator("#/components/schemas/Problem").iter_errors(problem))
    return problem


async def test_an_oversized_request_line_is_a_414_stating_the_limit(gateway):
    """A 10 KB URL: 414 problem naming the limit, without a byte of the URL."""
    target = "/v1/invoices?customer_document=" + "A" * 10_000
    status, headers, body = await raw_exchange(
        gateway, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    )
    problem = assert_problem(status, headers, body, 414)
    assert str(MAX_REQUEST_LINE) in problem["detail"]
    assert b"AAAA" not in body


async def test_an_oversized_header_is_a_431_that_echoes_nothing(gateway):
    """A 9 KB header: 431 problem naming the limit; the header's bytes are not echoed."""
    status, headers, body = await raw_exchange(
        gateway,
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"\xab" * 9000 + b"\r\n\r\n",
    )
    problem = assert_problem(status, headers, body, 431)
    assert str(MAX_HEADER_FIELD) in problem["detail"]
    assert b"\\xab" not in body
    assert b"\xab" not in body


async def test_too_many_headers_is_a_431(gateway):
    """More headers than allowed: 431 problem stating how many."""
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(MAX_HEADERS + 5))
    status, headers, body = await raw_exchange(
        gateway, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n"
    )
    problem = assert_problem(status, headers, body, 431)
    assert str(MAX_HEADERS) in problem["detail"]


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40,  # a TLS hello
        b"GET / HTTP/9.9\r\n\r\n",
        b"G\x00T /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: v\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"POST /v1/sale-accounts HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        (
            b"POST /v1/sale-accounts HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        (
            b"POST /v1/sale-accounts HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"
        ),
    ],
)
async def test_malformed_http_is_a_400_problem_without_a_repr(gateway, data):
    """Bytes that are not HTTP: a 400 problem, never text/plain quoting the bytes."""
    status, headers, body = await raw_exchange(gateway, data)
    problem = assert_problem(status, headers, body, 400)
    assert "\\x" not in problem["detail"]
    assert "b'" not in problem["detail"]


@pytest.fixture
async def buggy(aiohttp_client):
    """A gateway with one extra route whose handler fails as a bug would.

    Built outside `gateway_factory` on purpose: that fixture fails any test that sees
    a 500, and the 500 is what this test is about.
    """
    app = create_app(
        make_settings(hubsoft_connection("http://127.0.0.1:9")), now=lambda: NOW
    )

    async def broken(_request: web.Request) -> web.Response:
        raise RuntimeError(f"boom while holding {SECRET}")

    app.router.add_get("/v1/broken", broken)
    return await aiohttp_client(GatewayTestServer(app))


async def test_an_unexpected_exception_is_a_500_problem_with_the_request_id(buggy):
    """The last resort: a 500 problem carrying the request id; one log line, no secret."""
    with structlog.testing.capture_logs() as logs:
        resp = await buggy.get("/v1/broken", headers={**AUTH, "X-Request-ID": "req-42"})
    problem = await resp.json()
    assert resp.status == 500
    assert resp.content_type == "application/problem+json"
    assert problem["request_id"] == "req-42"
    assert resp.headers["X-Request-ID"] == "req-42"
    assert SECRET not in str(problem)
    failures = [e for e in logs if e["event"] == "unhandled_error"]
    assert len(failures) == 1
    assert failures[0]["error_type"] == "RuntimeError"
    assert SECRET not in repr(logs)
    assert "exc_info" not in failures[0]


async def test_no_answer_names_the_framework_or_its_version(gateway):
    """`Server` is the gateway's name on every answer, edge errors included."""
    for path in ("/healthz", "/v1/nope", "/v1/invoices?customer_document=12345678909"):
        resp = await gateway.get(path, headers=AUTH)
        assert resp.headers["Server"] == SERVER_NAME, path
    _, headers, _ = await raw_exchange(gateway, b"NOT HTTP AT ALL\r\n\r\n")
    assert headers["server"] == SERVER_NAME

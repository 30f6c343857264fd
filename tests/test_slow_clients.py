"""Slow clients are bounded: a connection cap with a clear 503, head and body timeouts."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import orjson
import pytest

from gateway.api.serverlimits import ClientLimits
from gateway.app import create_app
from gateway.cli.serving import start_guarded
from tests.support import API_KEY, NOW, hubsoft_connection, make_settings

HEAD = b"POST /v1/sale-accounts HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
async def served(hubsoft_url):
    """The gateway behind its client limits on a real port: (url, guard)."""
    settings = make_settings(hubsoft_connection(hubsoft_url), body_timeout_s=0.5)
    limits = ClientLimits(max_connections=20, header_timeout_s=0.5, body_timeout_s=0.5)
    runner, server, guard = await start_guarded(
        create_app(settings, now=lambda: NOW), "127.0.0.1", 0, limits
    )
    port = server.sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", guard, port
    server.close()
    await runner.cleanup()


async def _connect(port: int):
    return await asyncio.open_connection("127.0.0.1", port)


async def _close(*writers) -> None:
    for writer in writers:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_past_the_connection_cap_a_clear_503(served):
    """The connection over the cap is answered 503 problem+json, then closed."""
    _, guard, port = served
    slow = [await _connect(port) for _ in range(20)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # a head that never ends
    await asyncio.sleep(0.1)
    reader, writer = await _connect(port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 5)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503")
    assert orjson.loads(body)["status"] == 503
    assert guard.refused >= 1
    await _close(writer, *(w for _, w in slow))


async def test_a_head_that_never_ends_is_cut_and_others_are_served(served):
    """Trickled heads are closed at the header timeout; normal requests keep working."""
    url, guard, port = served
    slow = [await _connect(port) for _ in range(10)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
    async with aiohttp.ClientSession() as http:
        for _ in range(5):
            async with http.get(f"{url}/healthz") as resp:
                assert resp.status == 200
    for reader, _ in slow:  # each one is closed by the server, not left hanging
        assert await asyncio.wait_for(reader.read(), 5) == b""
    assert guard.timed_out >= 10
    await _close(*(w for _, w in slow))


async def test_a_body_that_never_arrives_is_a_408(served):
    """A trickled body gets 408 problem+json within the body timeout."""
    _, _, port = served
    reader, writer = await _connect(port)
    writer.write(
        HEAD
        + f"Authorization: Bearer {API_KEY}\r\n".encode()
        + b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 408")
    assert b"application/problem+json" in head
    assert await asyncio.wait_for(reader.read(), 5)  # the body, then the server closes
    await _close(writer)

"""Nothing secret in any message: aiohttp's own error logs go through redaction."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest
import structlog
import structlog.testing

from gateway.api.serverlimits import ClientLimits
from gateway.app import create_app
from gateway.cli.serving import start_guarded
from gateway.telemetry.stdlog import RedactingHandler, route_library_logs, scrub
from tests.support import FakeClock, hubsoft_connection, make_settings

SECRET = "SECRET-TOKEN-4711"
BAD_REQUESTS = [
    b"GET /healthz HTTP/1.1\r\nAuthorization: Bearer "
    + SECRET.encode()
    + b"A" * 9000
    + b"\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nAuthorization: Bearer "
    + SECRET.encode()
    + b"\x00\r\n\r\n",
    b"GET /he\x00lthz?token=" + SECRET.encode() + b" HTTP/1.1\r\n\r\n",
]


@pytest.fixture
def library_logs():
    """Library records routed as in production; yields the structlog events they became."""
    route_library_logs()
    with structlog.testing.capture_logs() as events:
        yield events
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    logging.captureWarnings(capture=False)


async def test_malformed_requests_log_no_header_bytes(library_logs, hubsoft_url):
    """Oversized or broken requests carrying a token: logged as a type, never the bytes."""
    app = create_app(make_settings(hubsoft_connection(hubsoft_url)))
    runner, server, _ = await start_guarded(app, "127.0.0.1", 0, ClientLimits())
    port = server.sockets[0].getsockname()[1]
    for payload in BAD_REQUESTS:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.")
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    server.close()
    await runner.cleanup()
    logged = repr(library_logs)
    # Each was logged (by the edge-error hook, or aiohttp's own logger through ours)...
    seen = [
        e
        for e in library_logs
        if e["event"] == "edge_error" or "aiohttp.server" in repr(e)
    ]
    assert len(seen) >= len(BAD_REQUESTS)
    assert SECRET not in logged  # ...without the secret
    assert all("exc_info" not in event for event in library_logs)


def test_scrub_blanks_bytes_credentials_and_queries():
    """Byte literals, auth values, key=value secrets and query strings are blanked."""
    text = (
        "bad line b'Authorization: Bearer abc' from GET /x?sig=s3 "
        "Authorization: Basic dXNlcg== password=hunter2\nsecond line"
    )
    cleaned = scrub(text)
    for leaked in ("abc", "s3", "dXNlcg==", "hunter2", "second line"):
        assert leaked not in cleaned


def test_repeated_library_errors_are_rate_limited(library_logs):
    """A flood of one error kind logs a few lines, then says how many it dropped."""
    clock = FakeClock(0.0)
    handler = RedactingHandler(burst=3, window_s=60.0, clock=clock)
    logger = logging.getLogger("asyncio.test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for _ in range(1000):
            logger.error("socket.accept() out of system resource")
        clock.now = 61.0
        logger.error("socket.accept() out of system resource")
    finally:
        logger.removeHandler(handler)
    assert len(library_logs) == 4
    assert library_logs[-1]["suppressed"] == 997

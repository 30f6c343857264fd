"""One serving process: settings from the environment, logging, the app on a port.

Its own module (not `__main__`) so `serve --workers N` can start it in spawned children,
which import it by name. The app runs through `GatewayRunner`, so errors aiohttp answers
before any route (oversized request line or headers, malformed HTTP) are problems too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from aiohttp import web

import adapters
from gateway.api.edge import GatewayRunner
from gateway.app import create_app
from gateway.config import load_settings
from gateway.logs import configure_logging


def serve_one(host: str, port: int, *, reuse_port: bool) -> None:
    """Load settings, configure logging, serve until SIGINT/SIGTERM."""
    settings = load_settings(os.environ, adapters.known_providers())
    configure_logging(settings.log_format, settings.log_level)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve(create_app(settings), host, port, reuse_port=reuse_port))
    except OSError as err:  # the port was taken after the start-up check: one line
        sys.stderr.write(
            f"invoice-gateway: cannot listen on {host}:{port}: {err.strerror or err}\n"
        )
        raise SystemExit(1) from None


async def _serve(
    app: web.Application, host: str, port: int, *, reuse_port: bool
) -> None:
    """`web.run_app` cannot take a runner: the same steps, through `GatewayRunner`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port).start()
        await stop.wait()
    finally:
        await runner.cleanup()

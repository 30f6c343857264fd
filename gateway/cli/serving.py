"""One serving process: settings from the environment, logging, the app on a port.

Its own module (not `__main__`) so `serve --workers N` can start it in spawned children,
which import it by name. The listening socket's protocol factory is wrapped by the
client limits (`gateway.api.serverlimits`): a connection cap with a clear 503 past it, and a
timeout for request heads (aiohttp's keep-alive timeout takes the same value). The app
runs through `GatewayRunner`, so errors aiohttp answers before any route (oversized
request line or headers, malformed HTTP) are problems too.
"""

from __future__ import annotations

import asyncio
import os
import sys

from aiohttp import web

import adapters
from gateway.api.edge import GatewayRunner
from gateway.api.serverlimits import (
    ClientLimits,
    ConnectionGuard,
    connection_cap,
    raise_open_files_limit,
)
from gateway.app import create_app
from gateway.config.load import load_settings
from gateway.config.settings import Settings
from gateway.telemetry.logs import configure_logging

SHUTDOWN_TIMEOUT_S = 10.0
# After answering early (a 408, a refused body), aiohttp reads what the client still
# sends for this long before closing; short, or a trickling client keeps its socket.
LINGERING_S = 1.0
BACKLOG = 1024  # a burst of connections waits in the kernel instead of being refused


def client_limits(settings: Settings) -> ClientLimits:
    """The process's client limits, the connection cap kept under the open-files limit."""
    return ClientLimits(
        max_connections=connection_cap(
            settings.max_connections, raise_open_files_limit()
        ),
        header_timeout_s=settings.header_timeout_s,
        body_timeout_s=settings.body_timeout_s,
    )


async def start_guarded(
    app: web.Application,
    host: str,
    port: int,
    limits: ClientLimits,
    *,
    reuse_port: bool = False,
    handle_signals: bool = False,
) -> tuple[web.AppRunner, asyncio.Server, ConnectionGuard]:
    """Serve `app` on host:port behind the client limits; stop with `runner.cleanup()`."""
    runner = GatewayRunner(
        app,
        access_log=None,
        handle_signals=handle_signals,
        keepalive_timeout=limits.header_timeout_s,
        lingering_time=LINGERING_S,
        shutdown_timeout=SHUTDOWN_TIMEOUT_S,
    )
    await runner.setup()
    guard = ConnectionGuard(runner.server, limits)  # type: ignore[arg-type]
    try:
        server = await asyncio.get_running_loop().create_server(
            guard,
            host,
            port,
            reuse_port=reuse_port or None,
            reuse_address=True,
            backlog=BACKLOG,
        )
    except OSError:
        await runner.cleanup()
        raise
    return runner, server, guard


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop to serve on: uvloop where installed (a Linux dependency), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional: not built for every platform
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve_one(host: str, port: int, *, reuse_port: bool) -> None:
    """Load settings, configure logging, serve until SIGINT/SIGTERM."""
    settings = load_settings(os.environ, adapters.known_providers())
    configure_logging(settings.log_format, settings.log_level)
    limits = client_limits(settings)
    loop = new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings)
    try:
        runner, server, _ = loop.run_until_complete(
            start_guarded(
                app, host, port, limits, reuse_port=reuse_port, handle_signals=True
            )
        )
    except OSError as err:  # the port was taken after the start-up check: one line
        sys.stderr.write(
            f"invoice-gateway: cannot listen on {host}:{port}: {err.strerror or err}\n"
        )
        raise SystemExit(1) from None
    try:
        loop.run_forever()  # the runner turns SIGINT/SIGTERM into GracefulExit
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        server.close()
        loop.run_until_complete(runner.cleanup())
        loop.run_until_complete(server.wait_closed())
        loop.close()

"""One serving process: settings from the environment, logging, the app on a port.

Its own module (not `__main__`) so `serve --workers N` can start it in spawned children,
which import it by name.
"""

from __future__ import annotations

import os
import sys

from aiohttp import web

import adapters
from gateway.app import create_app
from gateway.config import load_settings
from gateway.logs import configure_logging


def serve_one(host: str, port: int, *, reuse_port: bool) -> None:
    """Load settings, configure logging, serve until SIGINT/SIGTERM."""
    settings = load_settings(os.environ, adapters.known_providers())
    configure_logging(settings.log_format, settings.log_level)
    try:
        web.run_app(
            create_app(settings),
            host=host,
            port=port,
            reuse_port=reuse_port,
            access_log=None,
            print=None,
        )
    except OSError as err:  # the port was taken after the start-up check: one line
        sys.stderr.write(
            f"invoice-gateway: cannot listen on {host}:{port}: {err.strerror or err}\n"
        )
        raise SystemExit(1) from None

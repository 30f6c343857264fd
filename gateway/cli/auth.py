"""`invoice-gateway auth PROVIDER --connection ID`: one-time consent (OAuth code flow)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from datetime import UTC, datetime

import aiohttp

import adapters
from gateway.app import token_store
from gateway.config.load import load_settings
from gateway.config.settings import Settings
from gateway.errors import ConfigError
from gateway.state.tokens import LocalTokenProvider
from gateway.telemetry.logs import configure_logging
from gateway.upstream.http import UpstreamClient
from gateway.upstream.providers import ProviderContext


async def _authorize(settings: Settings, provider: str, connection: str) -> None:
    conn = next((c for c in settings.connections if c.id == connection), None)
    if conn is None or conn.provider != provider:
        raise ConfigError(
            [f"--connection: no {provider} connection {connection!r} configured"]
        )
    run = adapters.load_authorizer(provider)
    async with token_store(settings) as store, aiohttp.ClientSession() as session:
        http = UpstreamClient(session, conn.id, conn.base_url, conn.timeout_s)
        ctx = ProviderContext(
            conn, http, LocalTokenProvider(), now=lambda: datetime.now(UTC)
        )
        await run(ctx, store, lambda text: print(text, flush=True))


def cmd_auth(args: argparse.Namespace) -> int:
    """One-time interactive consent for providers that need a human (OAuth code flow)."""
    configure_logging("console" if sys.stderr.isatty() else "json", "warning")
    asyncio.run(
        _authorize(
            load_settings(os.environ, adapters.known_providers()),
            args.provider,
            args.connection,
        )
    )
    return 0

"""Everything `serve` would refuse, found before it starts; and the line it starts with.

`check-config` and `serve` share this: the settings, then every valid connection's adapter
(which judges its own options), all problems reported together.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

import aiohttp

import adapters
from gateway.app import build_connections
from gateway.config.load import read_settings
from gateway.config.settings import Settings
from gateway.errors import ConfigError
from gateway.state.tokens import LocalTokenProvider


def gateway_version() -> str:
    """The installed distribution's version."""
    try:
        return version("invoice-gateway")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def check(env: Mapping[str, str]) -> Settings:
    """The settings, or one ConfigError listing every problem, the adapters' included."""
    settings, problems = read_settings(env, adapters.known_providers())
    problems += asyncio.run(_adapter_problems(settings))
    if problems:
        raise ConfigError(problems)
    return settings


async def _adapter_problems(settings: Settings) -> list[str]:
    async with aiohttp.ClientSession() as session:
        try:
            build_connections(
                settings, session, LocalTokenProvider(), now=lambda: datetime.now(UTC)
            )
        except ConfigError as err:
            return err.problems
    return []


def backends(settings: Settings) -> tuple[str, str]:
    """Where the cache lives, and where shared state (tokens, idempotency, rates) lives."""
    if settings.redis_url is not None:
        kind = "redis-cluster" if settings.redis_cluster else "redis"
        return kind, kind
    return (
        f"memory (max {settings.cache_max_entries} entries)",
        f"this process (tokens also in {settings.state_dir})",
    )


def startup_fields(
    settings: Settings, host: str, port: int, workers: int
) -> dict[str, object]:
    """What the start-up log line says: address, workers, backends, connections."""
    cache, state = backends(settings)
    shown_host = f"[{host}]" if ":" in host else host
    return {
        "version": gateway_version(),
        "address": f"http://{shown_host}:{port}",
        "workers": workers,
        "cache": cache,
        "state": state,
        "connections": [f"{c.id} ({c.provider})" for c in settings.connections],
        "events": events_summary(settings),
    }


def events_summary(settings: Settings) -> str:
    """Which connections are watched for changes, where events live, which webhooks."""
    watched = [c.id for c in settings.connections if c.sync_interval_s > 0]
    if not watched and not settings.webhooks:
        return "off"
    log = "redis" if settings.redis_url else "memory (not durable)"
    hooks = ", ".join(h.name for h in settings.webhooks) or "none"
    return f"watching {', '.join(watched) or 'none'}; log {log}; webhooks {hooks}"


def port_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (taken, forbidden, no such address), or None.

    Bound without SO_REUSEPORT, so a port another server shares that way counts as taken.
    """
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as err:
        # create_server re-raises name-resolution errors as OSError with a negative errno
        if err.errno is not None and err.errno < 0:
            reason = "no such host"
        else:
            reason = os.strerror(err.errno) if err.errno else str(err)
        return f"cannot listen on {host}:{port}: {reason}"


def health_url(env: Mapping[str, str]) -> str:
    """This host's `/healthz` on the configured port (loopback when bound to all)."""
    host = env.get("GATEWAY_HOST") or "127.0.0.1"
    if host in {"0.0.0.0", "::", ""}:  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{env.get('GATEWAY_PORT') or 8080}/healthz"

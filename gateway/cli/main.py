"""Command line: `invoice-gateway serve | demo | check-config | auth | hash-key`.

`serve` reads `GATEWAY_*` and the connections file and serves. `demo` starts every
registered provider's simulator on loopback, writes a connections file pointing at them,
and serves the gateway with the memory cache, a fresh demo API key and an end-user token
for the demo customer (signed by a throwaway demo issuer), printing curl commands and the
invoice page's URL. `check-config` validates everything `serve` would and lists every problem.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import secrets
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path

import aiohttp
import jwt
import structlog
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

import adapters
from gateway.api.edge import GatewayRunner
from gateway.app import create_app, token_store
from gateway.cli import preflight
from gateway.cli.faultspec import HELP as FAULT_HELP
from gateway.cli.faultspec import Fault, parse_faults
from gateway.cli.hashkey import cmd_hash_key
from gateway.cli.serving import serve_one
from gateway.cli.supervisor import supervise
from gateway.config.load import load_settings
from gateway.config.settings import Settings
from gateway.errors import ConfigError, UpstreamError
from gateway.events.demo import (
    SECRET_VAR,
    demo_events_toml,
    demo_secret,
    receiver_app,
)
from gateway.state.tokens import LocalTokenProvider
from gateway.telemetry.logs import configure_logging
from gateway.upstream.http import UpstreamClient
from gateway.upstream.providers import DemoUpstream, ProviderContext

HEALTHCHECK_TIMEOUT_S = 3
DEMO_ISSUER = "https://demo-portal.invalid/"
DEMO_AUDIENCE = "invoice-gateway"
DEMO_CUSTOMER = "12345678909"  # Maria: billed by every simulator
DEMO_SYNC_S = 5  # the demo watches every connection this often


def _settings(env: Mapping[str, str]) -> Settings:
    return load_settings(env, adapters.known_providers())


def cmd_check_config(_args: argparse.Namespace) -> int:
    """Validate settings and adapters; print every problem."""
    settings = preflight.check(os.environ)
    print(
        f"ok: {len(settings.connections)} connection(s), {len(settings.api_keys)} API key(s), "
        f"{len(settings.jwt_issuers)} token issuer(s)"
    )
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve with the configured connections, in one process or `--workers` of them."""
    settings = preflight.check(os.environ)  # fail here, once, on a bad configuration
    host, port = args.host or settings.host, args.port or settings.port
    if args.workers > 1 and settings.redis_url is None:
        # Workers without Redis share nothing: not the idempotency keys that keep a
        # retried create single, nor a rotating refresh token. Refused, not warned about.
        raise ConfigError(
            [
                (
                    f"--workers {args.workers}: needs REDIS_URL (workers share "
                    "idempotency keys, tokens, cache and rate budgets only through "
                    "Redis); run one worker without it"
                )
            ]
        )
    if (problem := preflight.port_problem(host, port)) is not None:
        print(f"invoice-gateway: {problem}", file=sys.stderr)
        return 1
    configure_logging(settings.log_format, settings.log_level)
    structlog.get_logger().info(
        "starting", **preflight.startup_fields(settings, host, port, args.workers)
    )
    if args.workers <= 1:
        serve_one(host, port, reuse_port=False)
        return 0
    # N processes on one port (SO_REUSEPORT: the kernel spreads connections). They share
    # state only through Redis (required above). A supervisor restarts dead ones.
    return supervise(serve_one, (host, port), {"reuse_port": True}, args.workers)


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
    asyncio.run(_authorize(_settings(os.environ), args.provider, args.connection))
    return 0


def cmd_healthcheck(_args: argparse.Namespace) -> int:
    """Exit 0 when this host's gateway answers /healthz on the configured port."""
    url = preflight.health_url(os.environ)
    try:
        with urllib.request.urlopen(url, timeout=HEALTHCHECK_TIMEOUT_S) as resp:  # noqa: S310 - our own http URL
            ok = resp.status == HTTPStatus.OK
    except OSError as err:
        print(f"unhealthy: {url}: {err}", file=sys.stderr)
        return 1
    return 0 if ok else 1


async def _start(
    app: web.Application,
    host: str,
    port: int,
    runner_class: type[web.AppRunner] = web.AppRunner,
) -> tuple[web.AppRunner, int]:
    runner = runner_class(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
    except OSError:
        if port == 0:
            raise
        site = web.TCPSite(runner, host, 0)  # the wanted port is taken: any free one
        await site.start()
    server = site._server  # noqa: SLF001 - aiohttp exposes the bound port nowhere else
    assert server is not None  # noqa: S101
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    return runner, int(bound)


def demo_config(
    upstreams: list[tuple[DemoUpstream, str]],
    key_hash: str,
    jwks_file: Path | None = None,
) -> tuple[str, dict[str, str]]:
    """The connections TOML for the demo, and the env vars its secrets name."""
    env: dict[str, str] = {}
    parts = [
        (
            f'[[api_keys]]\nname = "demo"\nsha256 = "{key_hash}"\n'
            'scopes = ["invoices:read", "sale_accounts:write"]\n'
        )
    ]
    if jwks_file is not None:
        parts.append(
            "[[jwt_issuers]]\n"
            f'name = "demo"\nissuer = "{DEMO_ISSUER}"\naudience = "{DEMO_AUDIENCE}"\n'
            f'algorithms = ["EdDSA"]\njwks_file = {json.dumps(str(jwks_file))}\n'
            'customer_claim = "customer_documents"\n'
            "rate_limit = { requests = 600, window_s = 60 }\n"
        )
    for up, base_url in upstreams:
        cid = up.connection_id
        parts.append(
            f'[connections.{cid}]\nprovider = "{up.provider}"\nbase_url = "{base_url}"\n'
            f"cache_fresh_s = 30\nsync_interval_s = {DEMO_SYNC_S}"
        )
        if up.currency:
            parts.append(f'currency = "{up.currency}"')
        if up.rate_limit:
            parts.append(f"rate_limit_requests = {up.rate_limit[0]}")
            parts.append(f"rate_limit_window_s = {up.rate_limit[1]}")
        parts.append(f"[connections.{cid}.secrets]")
        for name, value in up.secrets.items():
            var = f"DEMO_{cid}_{name}".upper().replace("-", "_")
            env[var] = value
            parts.append(f'{name} = "{var}"')
        if up.options:
            parts.append(f"[connections.{cid}.options]")
            parts.extend(f"{k} = {_toml(v, base_url)}" for k, v in up.options.items())
        parts.append("")
    return "\n".join(parts), env


def _toml(value: object, base_url: str) -> str:
    """A TOML value for the demo file: strings, numbers, lists, inline tables."""
    if isinstance(value, str):
        return json.dumps(value.replace("{base_url}", base_url))
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v, base_url) for v in value) + "]"
    if isinstance(value, dict):
        pairs = (
            f"{json.dumps(str(k))} = {_toml(v, base_url)}" for k, v in value.items()
        )
        return "{ " + ", ".join(pairs) + " }"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _simulators(faults: dict[str, list[Fault]]) -> list[DemoUpstream]:
    """Every provider's simulator with its faults on; every refused fault raised together."""
    sims: list[DemoUpstream] = []
    problems = []
    for provider in adapters.known_providers():
        up: DemoUpstream = adapters.load_simulator(provider)()
        for fault, value, share in faults.get(provider, []):
            if up.set_fault is None:
                problems.append(f"--fault: the {provider} simulator takes no faults")
                continue
            try:
                up.set_fault(fault, value, None, ratio=share)
            except ValueError as err:
                problems.append(f"--fault {provider}={fault}: {err}")
        sims.append(up)
    if problems:
        raise ConfigError(problems)
    return sims


async def _demo(host: str, port: int, sims: list[DemoUpstream]) -> None:
    upstreams = []
    runners = []
    for up in sims:
        runner, sim_port = await _start(up.app, "127.0.0.1", 0)
        runners.append(runner)
        upstreams.append((up, f"http://127.0.0.1:{sim_port}"))
    key = "demo-" + secrets.token_urlsafe(12)
    hook_secret = demo_secret()
    runner, hook_port = await _start(receiver_app(hook_secret), "127.0.0.1", 0)
    runners.append(runner)
    with tempfile.TemporaryDirectory() as tmp:
        signer = demo_signer(Path(tmp) / "jwks.json")
        toml, env = demo_config(
            upstreams, hashlib.sha256(key.encode()).hexdigest(), Path(tmp) / "jwks.json"
        )
        toml += "\n" + demo_events_toml(hook_port)
        env[SECRET_VAR] = hook_secret
        path = Path(tmp) / "connections.toml"
        path.write_text(toml, encoding="utf-8")
        env |= {
            "GATEWAY_CONFIG": str(path),
            "GATEWAY_CURSOR_SECRET": secrets.token_hex(32),
            "GATEWAY_STATE_DIR": str(
                Path(tmp) / "state"
            ),  # demo tokens die with the demo
        }
        settings = _settings({**os.environ, **env})
        runner, bound = await _start(create_app(settings), host, port, GatewayRunner)
        runners.append(runner)
        _print_demo(host, bound, key, upstreams, demo_token(signer, DEMO_CUSTOMER))
        try:
            await asyncio.Event().wait()
        finally:
            for r in reversed(runners):
                await r.cleanup()


def demo_signer(jwks_path: Path) -> Ed25519PrivateKey:
    """A fresh Ed25519 key for the demo's identity provider; its JWKS written out."""
    private = Ed25519PrivateKey.generate()
    jwk = json.loads(OKPAlgorithm.to_jwk(private.public_key()))
    jwk |= {"kid": "demo-1", "alg": "EdDSA", "use": "sig"}
    jwks_path.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")
    return private


def demo_token(signer: Ed25519PrivateKey, document: str) -> str:
    """A 12-hour end-user token for `document`, as a customer portal would issue."""
    now = int(time.time())
    claims = {
        "iss": DEMO_ISSUER,
        "aud": DEMO_AUDIENCE,
        "sub": f"demo-customer-{document}",
        "iat": now,
        "exp": now + 12 * 3600,
        "customer_documents": [document],
    }
    return jwt.encode(claims, signer, algorithm="EdDSA", headers={"kid": "demo-1"})


def _print_demo(
    host: str,
    port: int,
    key: str,
    upstreams: list[tuple[DemoUpstream, str]],
    token: str,
) -> None:
    base = f"http://{host}:{port}"
    lines = [
        "",
        f"invoice-gateway demo is up at {base}  (Ctrl+C to stop)",
        "simulated upstreams: "
        + ", ".join(f"{u.provider} at {url}" for u, url in upstreams),
        f"demo API key: {key}",
        f"demo customer token ({DEMO_CUSTOMER}, 12 h): {token}",
        f"invoice page: {base}/app/  (sign in with the customer token)",
        "",
        "Try:",
        f"  curl -s {base}/healthz",
        f"  curl -s -H 'Authorization: Bearer {key}' {base}/v1/connections",
    ]
    lines += [
        "  # the customer's own invoices, as the customer's browser would ask",
        f"  curl -s -H 'Authorization: Bearer {token}' {base}/v1/invoices",
    ]
    for up, _url in upstreams:
        for text, path in up.examples:
            lines += [
                f"  # {text}",
                f"  curl -s -H 'Authorization: Bearer {key}' '{base}{path}'",
            ]
    lines += [
        "  # Invoice change events, followed live (Server-Sent Events)",
        f"  curl -sN -H 'Authorization: Bearer {key}' {base}/v1/events/stream",
    ]
    for up, url in upstreams:
        if up.mark_paid_path:
            lines += [
                (
                    f"  # Mark a {up.provider} invoice paid: within {DEMO_SYNC_S} s the"
                    " demo's webhook receiver prints invoice.paid here"
                ),
                f"  curl -s -X POST {url}{up.mark_paid_path}",
            ]
    print("\n".join(lines), flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    """Simulators + gateway on loopback, memory cache, demo key."""
    # Every refused fault is reported before anything is set up or starts.
    sims = _simulators(parse_faults(args.fault, adapters.known_providers()))
    configure_logging("console" if sys.stderr.isatty() else "json", "info")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_demo(args.host or "127.0.0.1", args.port or 8080, sims))
    return 0


def _positive_int(raw: str) -> int:
    """An argparse type: a whole number of at least 1."""
    if not raw.isdigit() or int(raw) < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of at least 1")
    return int(raw)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `invoice-gateway` console script."""
    parser = argparse.ArgumentParser(prog="invoice-gateway")
    parser.add_argument(
        "--version",
        action="version",
        version=f"invoice-gateway {preflight.gateway_version()}",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, helptext in (
        ("serve", cmd_serve, "serve the configured connections"),
        ("demo", cmd_demo, "serve the built-in simulators on loopback"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--host")
        p.add_argument("--port", type=int)
        p.set_defaults(func=func)
        if name == "serve":
            p.add_argument(
                "--workers",
                type=_positive_int,
                default=1,
                help="processes sharing the port, one per core; more than one needs "
                "REDIS_URL (refused without it)",
            )
        if name == "demo":
            p.add_argument(
                "--fault",
                action="append",
                default=[],
                metavar="PROVIDER=FAULT[:VALUE][@RATIO]",
                help=FAULT_HELP,
            )
    sub.add_parser("check-config", help="validate settings and exit").set_defaults(
        func=cmd_check_config
    )
    sub.add_parser(
        "healthcheck",
        help="exit 0 if the gateway on GATEWAY_HOST:GATEWAY_PORT answers /healthz "
        "(for container health checks)",
    ).set_defaults(func=cmd_healthcheck)
    auth = sub.add_parser(
        "auth", help="one-time consent for a connection (OAuth code flow)"
    )
    auth.add_argument("provider")
    auth.add_argument("--connection", required=True)
    auth.set_defaults(func=cmd_auth)
    hk = sub.add_parser(
        "hash-key",
        help="print the SHA-256 of an API key for the config; the key is read from "
        "stdin or a prompt, never from the command line",
    )
    hk.add_argument(
        "--generate",
        action="store_true",
        help="make a new random key and print it with its SHA-256",
    )
    hk.set_defaults(func=cmd_hash_key)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    except UpstreamError as err:
        print(f"upstream error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

"""`invoice-gateway demo`: every registered simulator on loopback, and the gateway over them.

Writes a connections file pointing at the simulators and serves the gateway with the
memory cache, a fresh demo API key and an end-user token for the demo customer (signed by
a throwaway demo issuer), printing curl commands and the invoice page's URL. A local
webhook receiver prints every event it gets, its signature checked.
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
from pathlib import Path

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jwt.algorithms import OKPAlgorithm

import adapters
from gateway.api.edge import GatewayRunner
from gateway.app import create_app
from gateway.cli.faultspec import Fault, parse_faults
from gateway.config.load import load_settings
from gateway.errors import ConfigError
from gateway.events.demo import (
    SECRET_VAR,
    demo_events_toml,
    demo_secret,
    receiver_app,
)
from gateway.telemetry.logs import configure_logging
from gateway.upstream.providers import DemoUpstream

DEMO_ISSUER = "https://demo-portal.invalid/"
DEMO_AUDIENCE = "invoice-gateway"
DEMO_CUSTOMER = "12345678909"  # Maria: billed by every simulator
DEMO_SYNC_S = 5  # the demo watches every connection this often


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
        parts.append(
            connection_toml(
                up,
                base_url,
                f"cache_fresh_s = 30\nsync_interval_s = {DEMO_SYNC_S}",
                env,
            )
        )
    return "\n".join(parts), env


def connection_toml(
    up: DemoUpstream,
    base_url: str,
    settings: str,
    env: dict[str, str],
    env_prefix: str = "DEMO",
) -> str:
    """A simulator's connection in a connections file, its own `settings` lines added.

    Its secrets go into `env`, under names the file refers to, as a deployment's would.
    """
    cid = up.connection_id
    parts = [
        f'[connections.{cid}]\nprovider = "{up.provider}"\nbase_url = "{base_url}"\n'
        + settings
    ]
    if up.currency:
        parts.append(f'currency = "{up.currency}"')
    if up.rate_limit:
        parts.append(f"rate_limit_requests = {up.rate_limit[0]}")
        parts.append(f"rate_limit_window_s = {up.rate_limit[1]}")
    parts.append(f"[connections.{cid}.secrets]")
    for name, value in up.secrets.items():
        var = f"{env_prefix}_{cid}_{name}".upper().replace("-", "_")
        env[var] = value
        parts.append(f'{name} = "{var}"')
    if up.options:
        parts.append(f"[connections.{cid}.options]")
        parts.extend(f"{k} = {_toml(v, base_url)}" for k, v in up.options.items())
    parts.append("")
    return "\n".join(parts)


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
        settings = load_settings({**os.environ, **env}, adapters.known_providers())
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

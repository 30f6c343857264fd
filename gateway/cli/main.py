"""Command line: `invoice-gateway serve | demo | check-config | auth | hash-key | healthcheck`.

`serve` reads `GATEWAY_*` and the connections file and serves (one process, or a
supervisor of `--workers`). `check-config` validates everything `serve` would and lists
every problem. `demo` (gateway.cli.demo), `auth` (gateway.cli.auth) and `hash-key`
(gateway.cli.hashkey) live in their own modules.
"""

from __future__ import annotations

import argparse
import os
import sys
import urllib.request
from http import HTTPStatus

import structlog

from gateway.cli import preflight
from gateway.cli.auth import cmd_auth
from gateway.cli.demo import cmd_demo
from gateway.cli.faultspec import HELP as FAULT_HELP
from gateway.cli.hashkey import cmd_hash_key
from gateway.cli.serving import serve_one
from gateway.cli.supervisor import supervise
from gateway.errors import ConfigError, UpstreamError
from gateway.telemetry.logs import configure_logging

HEALTHCHECK_TIMEOUT_S = 3


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

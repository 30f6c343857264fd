"""Settings from the environment plus a TOML connections file, validated all at once.

Secrets never sit in the file: a connection's `[secrets]` table maps a secret's name to the
*name* of an environment variable, and API keys are stored as SHA-256 hashes. Every problem
found is collected and raised together as one `ConfigError`, so a bad deploy lists all of
them at the first start instead of one per restart. A name the loader does not know (a
file key, a `GATEWAY_*` variable) is one of those problems, with the nearest known name; and
a problem is reported once, where it is, not again by what depends on it.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from gateway.config.apikeys import parse_api_keys
from gateway.config.frontend import parse_cors, parse_jwt_issuers
from gateway.config.keycheck import ReadRecorder, unknown_names
from gateway.config.secretcheck import is_placeholder, own_secret_problem
from gateway.config.settings import (
    DEFAULT_TIMEZONE,
    ApiKey,
    ConnectionSettings,
    CorsSettings,
    JwtIssuer,
    Secret,
    Settings,
)
from gateway.errors import ConfigError
from gateway.events.config import parse_events, parse_webhooks
from gateway.upstream.origin import LinkRefusedError, Origin, base_url

CONNECTION_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_LIKE_RE = re.compile(r"pass|secret|token|api_?key|credential", re.IGNORECASE)
MIN_CURSOR_SECRET = 32
MAX_COUNT = 100
ENV_PREFIX = "GATEWAY_"
FILE_SECTIONS = frozenset(
    {"api_keys", "connections", "jwt_issuers", "cors", "events", "webhooks"}
)
# A connection table's keys are ConnectionSettings' fields (its id is the table's name).
CONNECTION_KEYS = frozenset(
    f.name for f in dataclasses.fields(ConnectionSettings) if f.name != "id"
)
# (key, default, largest allowed) of a connection's whole-number options.
INTEGER_OPTIONS = (
    ("retry_attempts", 2, MAX_COUNT),
    ("retry_budget_min", 10, 10_000),
    ("breaker_failures", 10, MAX_COUNT),
    ("breaker_window", 50, 10_000),
    ("breaker_min_calls", 20, 10_000),
    ("breaker_probes", 3, MAX_COUNT),
    ("max_pages", 200, 100_000),
)

_N = TypeVar("_N", int, float)


def default_state_dir(env: Mapping[str, str]) -> Path:
    """`$XDG_STATE_HOME/invoice-gateway`, else `~/.local/state/invoice-gateway`."""
    base = env.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "invoice-gateway"


def load_settings(env: Mapping[str, str], known_providers: Collection[str]) -> Settings:
    """Read `GATEWAY_*` variables and the connections file; raise every problem at once."""
    settings, problems = read_settings(env, known_providers)
    if problems:
        raise ConfigError(problems)
    return settings


def read_settings(
    env: Mapping[str, str], known_providers: Collection[str]
) -> tuple[Settings, list[str]]:
    """The settings (with only the connections that are valid) and every problem found.

    For callers that check more (the adapters) before reporting everything at once.
    """
    problems: list[str] = []
    env = ReadRecorder(env)
    path = env.get("GATEWAY_CONFIG")
    doc: dict[str, Any] | None = None  # None: no file to judge (that problem is listed)
    if not path:
        problems.append("GATEWAY_CONFIG: not set (path to the connections TOML file)")
    else:
        doc = _read_toml(Path(path), problems)
    secret = env.get("GATEWAY_CURSOR_SECRET", "")
    if (why := own_secret_problem(secret, MIN_CURSOR_SECRET)) is not None:
        problems.append(
            f"GATEWAY_CURSOR_SECRET: {why} (signs paging cursors; share it across replicas)"
        )
    connections: tuple[ConnectionSettings, ...] = ()
    api_keys: tuple[ApiKey, ...] = ()
    jwt_issuers: tuple[JwtIssuer, ...] = ()
    cors: CorsSettings | None = None
    if doc is not None:
        problems.extend(unknown_names("", doc, FILE_SECTIONS, "section"))
        raw_connections = doc.get("connections", {})
        connections = parse_connections(raw_connections, env, known_providers, problems)
        # Every connection the file names, valid or not: a connection's own problem is
        # reported once, not again as "unknown connection" by each key using it.
        known_ids = raw_connections if isinstance(raw_connections, dict) else None
        api_keys = parse_api_keys(doc.get("api_keys", []), known_ids, problems)
        jwt_issuers = parse_jwt_issuers(
            doc.get("jwt_issuers", []), env, known_ids, problems
        )
        cors = parse_cors(doc.get("cors"), problems)
    settings = Settings(
        connections=connections,
        api_keys=api_keys,
        jwt_issuers=jwt_issuers,
        cors=cors,
        cursor_secret=Secret(secret),
        host=env.get("GATEWAY_HOST", "127.0.0.1"),
        port=_env_number(env, "GATEWAY_PORT", 8080, int, problems),
        request_timeout_s=_env_number(
            env, "GATEWAY_REQUEST_TIMEOUT_S", 8.0, float, problems
        ),
        log_format=_env_choice(
            env, "GATEWAY_LOG_FORMAT", "auto", {"auto", "json", "console"}, problems
        ),
        log_level=_env_choice(
            env,
            "GATEWAY_LOG_LEVEL",
            "info",
            {"debug", "info", "warning", "error"},
            problems,
        ),
        cache_max_entries=_env_number(
            env, "GATEWAY_CACHE_MAX_ENTRIES", 10_000, int, problems
        ),
        cache_max_bytes=_env_number(
            env, "GATEWAY_CACHE_MAX_BYTES", 256 * 1024 * 1024, int, problems
        ),
        max_connections=_env_number(
            env, "GATEWAY_MAX_CONNECTIONS", 4096, int, problems
        ),
        header_timeout_s=_env_number(
            env, "GATEWAY_HEADER_TIMEOUT_S", 10.0, float, problems
        ),
        body_timeout_s=_env_number(
            env, "GATEWAY_BODY_TIMEOUT_S", 10.0, float, problems
        ),
        max_upstream_body_bytes=_env_number(
            env, "GATEWAY_MAX_UPSTREAM_BODY_BYTES", 16 * 1024 * 1024, int, problems
        ),
        state_dir=Path(env.get("GATEWAY_STATE_DIR") or default_state_dir(env)),
        redis_url=_redis_url(env, problems),
        redis_cluster=env.get("REDIS_CLUSTER", "").lower() in {"1", "true", "yes"},
        metrics_port=_metrics_port(env, problems),
    )
    if doc is not None:
        events = parse_events(doc.get("events", {}), problems)
        named = doc.get("connections", {})  # valid or not: each problem said once
        webhooks = parse_webhooks(
            doc.get("webhooks", []),
            env,
            set(named) if isinstance(named, dict) else set(),
            events,
            problems,
        )
        settings = dataclasses.replace(settings, events=events, webhooks=webhooks)
    problems.extend(_unknown_variables(env))
    return settings, problems


def _unknown_variables(env: ReadRecorder) -> list[str]:
    """`GATEWAY_*` variables set but never read: typos, or settings that do not exist."""
    ours = sorted(name for name in env if name.startswith(ENV_PREFIX))
    known = {name for name in env.asked if name.startswith(ENV_PREFIX)}
    return unknown_names("", ours, known, "variable")


def _metrics_port(env: Mapping[str, str], problems: list[str]) -> int | None:
    if not env.get("GATEWAY_METRICS_PORT"):
        return None
    port = _env_number(env, "GATEWAY_METRICS_PORT", 0, int, problems)
    if port == _env_number(env, "GATEWAY_PORT", 8080, int, []):
        problems.append("GATEWAY_METRICS_PORT: must differ from GATEWAY_PORT")
    return port


def _redis_url(env: Mapping[str, str], problems: list[str]) -> Secret | None:
    raw = env.get("REDIS_URL")
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        problems.append("REDIS_URL: must start with redis://, rediss:// or unix://")
        return None
    try:
        password = urlsplit(raw).password
    except ValueError:
        problems.append("REDIS_URL: not a valid URL")
        return None
    if password is not None and is_placeholder(password):
        problems.append("REDIS_URL: its password is a placeholder from an example")
    return Secret(raw)


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any] | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        problems.append(f"GATEWAY_CONFIG: cannot read {path}: {err.strerror}")
    except tomllib.TOMLDecodeError as err:
        problems.append(f"GATEWAY_CONFIG: {path} is not valid TOML: {err}")
    return None


def _env_number(
    env: Mapping[str, str], name: str, default: _N, kind: type[_N], problems: list[str]
) -> _N:
    raw = env.get(name)
    if raw is None:
        return default
    try:
        value = kind(raw)
    except ValueError:
        problems.append(f"{name}: {raw!r} is not a number")
        return default
    if value <= 0:
        problems.append(f"{name}: must be positive")
    return value


def _env_choice(
    env: Mapping[str, str],
    name: str,
    default: str,
    allowed: set[str],
    problems: list[str],
) -> str:
    value = env.get(name, default).lower()
    if value not in allowed:
        problems.append(f"{name}: {value!r} is not one of {', '.join(sorted(allowed))}")
    return value


def parse_connections(
    raw: Any,
    env: Mapping[str, str],
    known_providers: Collection[str],
    problems: list[str],
) -> tuple[ConnectionSettings, ...]:
    """Validate the `[connections.<id>]` tables."""
    if not isinstance(raw, dict):
        problems.append("connections: must be a table of connection tables")
        return ()
    if not raw:
        problems.append("connections: none configured")
    return tuple(
        conn
        for cid, table in raw.items()
        if (conn := _parse_connection(cid, table, env, known_providers, problems))
        is not None
    )


def _parse_connection(
    cid: str,
    table: Any,
    env: Mapping[str, str],
    known_providers: Collection[str],
    problems: list[str],
) -> ConnectionSettings | None:
    where = f"connections.{cid}"
    before = len(problems)
    if not CONNECTION_ID_RE.match(cid):
        problems.append(f"{where}: id must match {CONNECTION_ID_RE.pattern}")
    if not isinstance(table, dict):
        problems.append(f"{where}: must be a table")
        return None
    problems.extend(unknown_names(f"{where}.", table, CONNECTION_KEYS))
    provider = table.get("provider")
    if provider not in known_providers:
        problems.append(
            f"{where}.provider: {provider!r} is unknown; "
            f"known: {', '.join(sorted(known_providers))}"
        )
    base_url = table.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(
        ("http://", "https://")
    ):
        problems.append(f"{where}.base_url: must be an http(s) URL")
    elif not _is_base_url(base_url):
        problems.append(
            f"{where}.base_url: must be an http(s) URL without user info, query "
            "or fragment"
        )
    secrets = _parse_secrets(where, table.get("secrets", {}), env, problems)
    options = table.get("options", {})
    if not isinstance(options, dict):
        problems.append(f"{where}.options: must be a table")
        options = {}
    problems.extend(
        f"{where}.options.{key}: looks like a secret; name its env var under [secrets]"
        for key in options
        if SECRET_LIKE_RE.search(key)
    )
    tz = _parse_timezone(where, table.get("timezone", DEFAULT_TIMEZONE), problems)
    currency = table.get("currency")
    if currency is not None and not (
        isinstance(currency, str) and re.fullmatch(r"[A-Z]{3}", currency)
    ):
        problems.append(f"{where}.currency: must be an ISO 4217 code such as BRL")
    numbers = _parse_numbers(where, table, problems)
    origins = _parse_document_origins(
        where, table.get("document_origins", []), problems
    )
    if len(problems) > before or tz is None:
        return None
    return ConnectionSettings(
        id=cid,
        provider=str(provider),
        base_url=str(base_url).rstrip("/"),
        secrets=secrets,
        options=options,
        timezone=tz,
        currency=currency,
        document_origins=origins,
        **numbers,
    )


def _is_base_url(text: str) -> bool:
    if "?" in text or "#" in text:
        return False
    try:
        base_url(text)
    except (LinkRefusedError, ValueError):
        return False
    return True


def _parse_document_origins(
    where: str, raw: Any, problems: list[str]
) -> tuple[str, ...]:
    """`document_origins`: a list of `scheme://host[:port]` with nothing after."""
    if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
        problems.append(f"{where}.document_origins: must be a list of origins")
        return ()
    for text in raw:
        try:
            Origin.parse(text)
        except (LinkRefusedError, ValueError):
            problems.append(
                f"{where}.document_origins: {text[:100]!r} is not an http(s) origin "
                "(scheme://host[:port], no path, no user info)"
            )
    return tuple(raw)


def _parse_numbers(
    where: str, table: dict[str, Any], problems: list[str]
) -> dict[str, Any]:
    """Timeouts, cache lifetimes and the upstream rate limit of one connection."""
    numbers: dict[str, Any] = {}
    for key, default in (
        ("timeout_s", 10.0),
        ("cache_fresh_s", 60.0),
        ("cache_stale_s", 3600.0),
        ("rate_limit_window_s", 60.0),
        ("breaker_cooldown_s", 30.0),
        ("sync_interval_s", 0.0),
        ("max_pause_s", 300.0),
        ("retry_budget_ratio", 0.6),
    ):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            problems.append(f"{where}.{key}: must be a non-negative number of seconds")
            value = default
        numbers[key] = float(value)
    limit = table.get("rate_limit_requests")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
    ):
        problems.append(
            f"{where}.rate_limit_requests: must be a positive integer (per window)"
        )
        limit = None
    numbers["rate_limit_requests"] = limit
    ratio = table.get("breaker_failure_ratio", 0.8)
    if (
        isinstance(ratio, bool)
        or not isinstance(ratio, int | float)
        or not 0 < ratio <= 1
    ):
        problems.append(f"{where}.breaker_failure_ratio: must be a share in (0, 1]")
        ratio = 0.8
    numbers["breaker_failure_ratio"] = float(ratio)
    for key, default, top in INTEGER_OPTIONS:
        value = table.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or not 1 <= value <= top
        ):
            problems.append(f"{where}.{key}: must be an integer from 1 to {top}")
            value = default
        numbers[key] = value
    return numbers


def _parse_secrets(
    where: str, raw: Any, env: Mapping[str, str], problems: list[str]
) -> dict[str, Secret]:
    if not isinstance(raw, dict):
        problems.append(f"{where}.secrets: must map secret names to env var names")
        return {}
    out: dict[str, Secret] = {}
    for name, var in raw.items():
        if not isinstance(var, str) or not ENV_NAME_RE.match(var):
            # Never echo the value: it may be a secret pasted inline by mistake.
            problems.append(
                f"{where}.secrets.{name}: must be an env var NAME, not a value"
            )
        elif not env.get(var):
            problems.append(f"{where}.secrets.{name}: env var {var} is not set")
        elif is_placeholder(env[var]):
            problems.append(
                f"{where}.secrets.{name}: env var {var} holds a placeholder, not the "
                "credential"
            )
        else:
            out[name] = Secret(env[var])
    return out


def _parse_timezone(where: str, raw: Any, problems: list[str]) -> ZoneInfo | None:
    try:
        return ZoneInfo(str(raw))
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"{where}.timezone: {raw!r} is not an IANA time zone")
        return None

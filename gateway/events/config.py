"""The `[events]` table and the `[[webhooks]]` array, validated with every problem listed.

A webhook's signing secret never sits in the file: `secret_env` names the environment
variable holding it (`whsec_` + base64, as the Standard Webhooks spec writes it). A
webhook may only target a `host:port` listed in `[events].allowed_hosts`, so a config
typo cannot send invoice data to an unknown machine.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection, Mapping
from typing import Any
from urllib.parse import urlsplit

from gateway.config.settings import EventSettings, Secret, WebhookSettings
from gateway.events.model import EVENT_TYPES

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's prefix, not a secret
MIN_SECRET_BYTES = 24
SECONDS = (
    "retention_s",
    "lease_s",
    "delivery_poll_s",
    "claim_idle_s",
    "retry_base_s",
    "retry_max_s",
    "max_delivery_age_s",
    "delivery_timeout_s",
)
DAYS = ("lookback_days", "lookahead_days", "followups")
MAX_DAYS = 366


def parse_events(raw: Any, problems: list[str]) -> EventSettings:
    """Validate `[events]`; unknown keys are refused."""
    if not isinstance(raw, dict):
        problems.append("events: must be a table")
        return EventSettings()
    values: dict[str, Any] = {}
    for key, value in raw.items():
        where = f"events.{key}"
        if key in SECONDS:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or value <= 0
            ):
                problems.append(f"{where}: must be a positive number of seconds")
            else:
                values[key] = float(value)
        elif key in DAYS:
            if (
                isinstance(value, bool)
                or not isinstance(value, int)
                or not 0 <= value <= MAX_DAYS
            ):
                problems.append(f"{where}: must be a whole number from 0 to {MAX_DAYS}")
            else:
                values[key] = value
        elif key == "allowed_hosts":
            if not isinstance(value, list) or not all(
                isinstance(h, str) and h for h in value
            ):
                problems.append(f"{where}: must be a list of host:port strings")
            else:
                values[key] = frozenset(h.lower() for h in value)
        else:
            problems.append(f"{where}: unknown key")
    return _consistent(EventSettings(**values), problems)


def _consistent(settings: EventSettings, problems: list[str]) -> EventSettings:
    """Settings that only make sense together."""
    if settings.retention_s < settings.max_delivery_age_s:
        problems.append(
            "events.retention_s: must be at least events.max_delivery_age_s "
            "(deliveries still being retried would be trimmed away)"
        )
    if settings.claim_idle_s <= settings.delivery_timeout_s:
        problems.append(
            "events.claim_idle_s: must exceed events.delivery_timeout_s "
            "(a delivery in flight would be taken over and sent twice)"
        )
    return settings


def parse_webhooks(
    raw: Any,
    env: Mapping[str, str],
    connections: Collection[str],
    events: EventSettings,
    problems: list[str],
) -> tuple[WebhookSettings, ...]:
    """Validate the `[[webhooks]]` array against the connections and allowed hosts."""
    if not isinstance(raw, list):
        problems.append("webhooks: must be an array of tables")
        return ()
    hooks: list[WebhookSettings] = []
    names: set[str] = set()
    for i, entry in enumerate(raw):
        hook = _parse_webhook(
            f"webhooks[{i}]", entry, env, connections, events, problems
        )
        if hook is not None:
            if hook.name in names:
                problems.append(f"webhooks[{i}].name: {hook.name!r} is used twice")
            names.add(hook.name)
            hooks.append(hook)
    return tuple(hooks)


def _parse_webhook(
    where: str,
    entry: Any,
    env: Mapping[str, str],
    connections: Collection[str],
    events: EventSettings,
    problems: list[str],
) -> WebhookSettings | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    problems.extend(
        f"{where}.{key}: unknown key"
        for key in entry
        if key not in {"name", "url", "types", "connections", "secret_env"}
    )
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append(f"{where}.name: required, matching {NAME_RE.pattern}")
    url = entry.get("url")
    if not isinstance(url, str) or host_of(url) is None:
        problems.append(f"{where}.url: must be an http(s) URL")
    elif host_of(url) not in events.allowed_hosts:
        problems.append(
            f"{where}.url: host {host_of(url)!r} is not in events.allowed_hosts"
        )
    types = entry.get("types", sorted(EVENT_TYPES))
    if not isinstance(types, list) or not types or not set(types) <= EVENT_TYPES:
        problems.append(f"{where}.types: allowed: {', '.join(sorted(EVENT_TYPES))}")
        types = []
    conns = entry.get("connections")
    if conns is not None and not (
        isinstance(conns, list) and all(c in connections for c in conns)
    ):
        problems.append(f"{where}.connections: must list configured connection ids")
        conns = None
    secret = _secret(where, entry.get("secret_env"), env, problems)
    if len(problems) > before or secret is None:
        return None
    return WebhookSettings(
        name=str(name),
        url=str(url),
        secret=secret,
        types=frozenset(types),
        connections=None if conns is None else frozenset(conns),
    )


def _secret(
    where: str, var: Any, env: Mapping[str, str], problems: list[str]
) -> Secret | None:
    if not isinstance(var, str) or not ENV_NAME_RE.match(var):
        problems.append(f"{where}.secret_env: must be an env var NAME, not a value")
        return None
    value = env.get(var, "")
    if not value:
        problems.append(f"{where}.secret_env: env var {var} is not set")
        return None
    try:
        raw = base64.b64decode(value.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if not value.startswith(SECRET_PREFIX) or len(raw) < MIN_SECRET_BYTES:
        problems.append(
            f"{where}.secret_env: {var} must hold whsec_ + base64 of at least "
            f"{MIN_SECRET_BYTES} random bytes"
        )
        return None
    return Secret(value)


def host_of(url: str) -> str | None:
    """`host:port` of an http(s) URL (default ports filled in), or None."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname or port is None:
        return None
    return f"{parts.hostname.lower()}:{port}"

"""What an adapter checks before it calls its upstream: its connection, a remote id.

A factory gathers every problem of its connection and raises one `ConfigError` with all
of them, so an operator fixes the configuration in one pass; the messages name the
setting (`secrets.client_id`), never a value. A remote id is matched whole against the
shape the upstream issues before it goes into a URL: anything else does not exist there.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gateway.config.settings import ConnectionSettings
from gateway.errors import ConfigError, NotFoundError


def missing_secrets(
    settings: ConnectionSettings, provider: str, required: Iterable[str]
) -> list[str]:
    """One problem per required `[secrets]` name the connection lacks."""
    return [
        f"secrets.{name}: required by {provider}"
        for name in required
        if name not in settings.secrets
    ]


def http_url(
    settings: ConnectionSettings, option: str, default: str
) -> tuple[str, list[str]]:
    """An `[options]` URL (http or https) with its default, and the problem if any."""
    value = settings.options.get(option, default)
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return value, []
    return default, [f"options.{option}: must be an http(s) URL"]


def raise_problems(problems: list[str]) -> None:
    """Raise the connection's problems as one `ConfigError`, if there are any."""
    if problems:
        raise ConfigError(problems)


def match_remote_id(pattern: re.Pattern[str], value: str, what: str) -> re.Match[str]:
    """`value` matched whole by `pattern`, else `NotFoundError` ("no <what> '<value>'")."""
    match = pattern.fullmatch(value)
    if match is None:
        raise NotFoundError(f"no {what} {value!r}")
    return match

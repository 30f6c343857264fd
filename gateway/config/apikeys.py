"""The `[[api_keys]]` entries of the connections file, validated all at once.

A key is known only by the SHA-256 of its value. Names must be unique (a key's name keys its
idempotency records and audit lines) and so must hashes (one caller, one entry).
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Collection
from typing import Any

from gateway.config.keycheck import unknown_names
from gateway.config.settings import ApiKey, CallerLimit

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
KNOWN_SCOPES = frozenset(
    {
        "admin",
        "audit:read",
        "invoices:read",
        "sale_accounts:read",
        "sale_accounts:write",
    }
)
API_KEY_KEYS = frozenset(f.name for f in dataclasses.fields(ApiKey))
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def parse_api_keys(
    raw: Any, connection_ids: Collection[str] | None, problems: list[str]
) -> tuple[ApiKey, ...]:
    """Validate the `[[api_keys]]` array against the connections the file names.

    `connection_ids` None: the connections section is itself broken (and reported), so
    the connections a key names are not judged.
    """
    if not isinstance(raw, list):
        problems.append("api_keys: must be an array of tables")
        return ()
    if not raw:
        problems.append("api_keys: none configured; every /v1 route needs a key")
    keys: list[ApiKey] = []
    for i, entry in enumerate(raw):
        key = _parse_key(f"api_keys[{i}]", entry, connection_ids, problems)
        if key is not None:
            keys.append(key)
    problems.extend(_duplicates(keys))
    return tuple(keys)


def _parse_key(
    where: str, entry: Any, connection_ids: Collection[str] | None, problems: list[str]
) -> ApiKey | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    problems.extend(unknown_names(f"{where}.", entry, API_KEY_KEYS))
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.name: required")
    digest = str(entry.get("sha256", "")).lower()
    if not SHA256_RE.match(digest):
        problems.append(
            f"{where}.sha256: must be the hex SHA-256 of the key, not the key"
        )
    elif digest == EMPTY_SHA256:
        problems.append(f"{where}.sha256: is the hash of an empty key")
    scopes = entry.get("scopes", ["invoices:read"])
    if not isinstance(scopes, list) or not set(scopes) <= KNOWN_SCOPES:
        problems.append(f"{where}.scopes: allowed: {', '.join(sorted(KNOWN_SCOPES))}")
        scopes = []
    conns = entry.get("connections")
    if conns is not None and not (
        isinstance(conns, list) and all(isinstance(c, str) for c in conns)
    ):
        problems.append(f"{where}.connections: must be a list of connection ids")
        conns = None
    problems.extend(
        f"{where}.connections: names unknown connection {cid!r}"
        for cid in sorted(conns or ())
        if connection_ids is not None and cid not in connection_ids
    )
    limit = parse_caller_limit(where, entry.get("rate_limit"), problems)
    if len(problems) > before:
        return None
    return ApiKey(
        str(name),
        digest,
        frozenset(scopes),
        None if conns is None else frozenset(conns),
        limit,
    )


def _duplicates(keys: list[ApiKey]) -> list[str]:
    problems = []
    seen_names: set[str] = set()
    seen_hashes: dict[str, str] = {}
    for key in keys:
        if key.name in seen_names:
            problems.append(
                f"api_keys: name {key.name!r} is used twice (names key idempotency "
                "records and audit lines: make them unique)"
            )
        seen_names.add(key.name)
        if key.sha256 in seen_hashes:
            problems.append(
                f"api_keys: {key.name!r} and {seen_hashes[key.sha256]!r} have the same "
                "sha256 (one key, two entries)"
            )
        seen_hashes.setdefault(key.sha256, key.name)
    return problems


def parse_caller_limit(where: str, raw: Any, problems: list[str]) -> CallerLimit | None:
    """`rate_limit = { requests = N, window_s = S }`: one caller's budget, or None."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"requests", "window_s"}:
        problems.append(f"{where}.rate_limit: must be {{ requests = N, window_s = S }}")
        return None
    requests, window = raw.get("requests"), raw.get("window_s", 60)
    if isinstance(requests, bool) or not isinstance(requests, int) or requests < 1:
        problems.append(f"{where}.rate_limit.requests: must be a positive integer")
        return None
    if isinstance(window, bool) or not isinstance(window, int | float) or window <= 0:
        problems.append(f"{where}.rate_limit.window_s: must be a positive number")
        return None
    return CallerLimit(requests, float(window))

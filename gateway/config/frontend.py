"""The connections file's settings for frontends: `[[jwt_issuers]]` and `[cors]`.

Validated like the rest of the file: every problem collected, unknown keys refused with the
nearest known one, a JWKS file read at load (a missing or empty one is a problem now, not a
401 for every user later), an HS256 secret only from a named environment variable and only
for an issuer that allows HS256 alone.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from gateway.api.jwks import JwksError, read_jwks_file
from gateway.config.apikeys import KNOWN_SCOPES, parse_caller_limit
from gateway.config.keycheck import unknown_names
from gateway.config.secretcheck import own_secret_problem
from gateway.config.settings import CallerLimit, CorsSettings, JwtIssuer, Secret

ENV_NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")
USER_SCOPES = KNOWN_SCOPES - {"audit:read"}  # an end user never reads the audit trail
JWT_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA", "HS256"})
ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")
CORS_KEYS = frozenset({"origins", "max_age_s", "allow_credentials"})
MIN_HS256_SECRET = 32
MAX_LEEWAY_S = 300.0
DEFAULT_USER_LIMIT = CallerLimit(300, 60.0)  # per token subject, unless configured


def parse_cors(raw: Any, problems: list[str]) -> CorsSettings | None:
    """The `[cors]` table: exact origins (never `*`), max-age, credentials."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("cors: must be a table")
        return None
    unknown = unknown_names("cors.", raw, CORS_KEYS)
    problems.extend(unknown)
    origins = raw.get("origins")
    if not isinstance(origins, list) or not origins:
        problems.append("cors.origins: must be a non-empty list of origins")
        return None
    bad = [o for o in origins if not isinstance(o, str) or not ORIGIN_RE.match(o)]
    if bad:
        problems.append(
            "cors.origins: each must be an exact origin such as "
            "https://portal.example.com (no '*', path or trailing slash)"
        )
    max_age = raw.get("max_age_s", 600)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        problems.append("cors.max_age_s: must be a non-negative integer")
    credentials = raw.get("allow_credentials", False)
    if not isinstance(credentials, bool):
        problems.append("cors.allow_credentials: must be true or false")
    if (
        bad
        or unknown
        or isinstance(max_age, bool)
        or not isinstance(max_age, int)
        or max_age < 0
        or not isinstance(credentials, bool)
    ):
        return None
    return CorsSettings(frozenset(origins), max_age, credentials)


def parse_jwt_issuers(
    raw: Any,
    env: Mapping[str, str],
    connection_ids: Collection[str] | None,
    problems: list[str],
) -> tuple[JwtIssuer, ...]:
    """Validate the `[[jwt_issuers]]` array (trusted issuers of end-user tokens).

    `connection_ids` None: the connections section is itself broken (and reported), so
    the connections an issuer names are not judged.
    """
    if not isinstance(raw, list):
        problems.append("jwt_issuers: must be an array of tables")
        return ()
    out = []
    for i, entry in enumerate(raw):
        where = f"jwt_issuers[{i}]"
        issuer = _parse_issuer(where, entry, env, problems)
        if issuer is None:
            continue
        unknown = [
            f"{where}.connections: names unknown connection {cid!r}"
            for cid in sorted(issuer.connections or ())
            if connection_ids is not None and cid not in connection_ids
        ]
        problems.extend(unknown)
        if not unknown:
            out.append(issuer)
    if len({iss.issuer for iss in out}) != len(out):
        problems.append("jwt_issuers: two entries have the same issuer")
    if len({iss.name for iss in out}) != len(out):
        problems.append(
            "jwt_issuers: two entries have the same name (names key audit lines)"
        )
    return tuple(out)


ISSUER_KEYS = frozenset(
    {
        "name",
        "issuer",
        "audience",
        "algorithms",
        "jwks_url",
        "jwks_file",
        "hs256_secret_env",
        "customer_claim",
        "scopes_claim",
        "required_claims",
        "leeway_s",
        "default_scopes",
        "allowed_scopes",
        "connections",
        "jwks_cache_s",
        "jwks_min_refetch_s",
        "jwks_keep_s",
        "rate_limit",
    }
)


def _parse_issuer(
    where: str, entry: Any, env: Mapping[str, str], problems: list[str]
) -> JwtIssuer | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    problems.extend(unknown_names(f"{where}.", entry, ISSUER_KEYS))
    strings = {}
    for key in ("name", "issuer", "audience"):
        value = entry.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{where}.{key}: required (a string)")
        strings[key] = str(value)
    url, path, secret, algorithms = _issuer_keys(where, entry, env, problems)
    default_scopes = _user_scopes(where, entry, "default_scopes", problems)
    allowed_scopes = _user_scopes(where, entry, "allowed_scopes", problems)
    names = {}
    for key, default in (
        ("customer_claim", "customer_documents"),
        ("scopes_claim", "scope"),
    ):
        value = entry.get(key, default)
        if not isinstance(value, str) or not value:
            problems.append(f"{where}.{key}: must be a claim name")
        names[key] = str(value)
    required = entry.get("required_claims", ["exp", "iat", "sub"])
    if not isinstance(required, list) or not all(isinstance(c, str) for c in required):
        problems.append(f"{where}.required_claims: must be a list of claim names")
        required = []
    if "exp" not in required:
        required = ["exp", *required]  # a token that never expires is never accepted
    numbers = _issuer_numbers(where, entry, problems)
    conns = entry.get("connections")
    if conns is not None and not (
        isinstance(conns, list) and all(isinstance(c, str) for c in conns)
    ):
        problems.append(f"{where}.connections: must be a list of connection ids")
    # End users are untrusted callers: they always have a budget, by default this one.
    limit = parse_caller_limit(where, entry.get("rate_limit"), problems)
    if len(problems) > before:
        return None
    return JwtIssuer(
        name=strings["name"],
        issuer=strings["issuer"],
        audience=strings["audience"],
        algorithms=tuple(algorithms),
        jwks_url=url,
        jwks_file=None if path is None else Path(str(path)),
        hs256_secret=secret,
        customer_claim=names["customer_claim"],
        scopes_claim=names["scopes_claim"],
        required_claims=tuple(required),
        connections=None if conns is None else frozenset(conns),
        rate_limit=limit or DEFAULT_USER_LIMIT,
        default_scopes=default_scopes,
        allowed_scopes=allowed_scopes,
        leeway_s=numbers["leeway_s"],
        jwks_cache_s=numbers["jwks_cache_s"],
        jwks_min_refetch_s=numbers["jwks_min_refetch_s"],
        jwks_keep_s=numbers["jwks_keep_s"],
    )


def _issuer_keys(
    where: str, entry: dict[str, Any], env: Mapping[str, str], problems: list[str]
) -> tuple[str | None, Path | None, Secret | None, list[str]]:
    """Where an issuer's keys come from, and the algorithms they may sign with."""
    algorithms = entry.get("algorithms", ["RS256"])
    if (
        not isinstance(algorithms, list)
        or not algorithms
        or not set(algorithms) <= JWT_ALGORITHMS
    ):
        problems.append(
            f"{where}.algorithms: a list from {', '.join(sorted(JWT_ALGORITHMS))}"
        )
        algorithms = []
    sources = [k for k in ("jwks_url", "jwks_file", "hs256_secret_env") if k in entry]
    if len(sources) != 1:
        problems.append(
            f"{where}: set exactly one of jwks_url, jwks_file or hs256_secret_env"
        )
    url = entry.get("jwks_url")
    if url is not None and not (
        isinstance(url, str) and url.startswith(("https://", "http://"))
    ):
        problems.append(f"{where}.jwks_url: must be an http(s) URL")
    path = None if entry.get("jwks_file") is None else Path(str(entry["jwks_file"]))
    if path is not None:
        try:
            read_jwks_file(path)
        except JwksError as err:
            problems.append(f"{where}.jwks_file: {err}")
    var = entry.get("hs256_secret_env")
    secret = None if var is None else _hs_secret(where, var, env, problems)
    if "HS256" in algorithms and var is None:
        problems.append(f"{where}.algorithms: HS256 needs hs256_secret_env")
    if var is not None and set(algorithms) != {"HS256"}:
        problems.append(f"{where}.algorithms: an HS256 secret issuer allows HS256 only")
    return url, path, secret, algorithms


def _hs_secret(
    where: str, var: Any, env: Mapping[str, str], problems: list[str]
) -> Secret | None:
    """An HS256 issuer's shared secret, from the env var the file names."""
    if not isinstance(var, str) or not ENV_NAME_RE.match(var):
        problems.append(f"{where}.hs256_secret_env: must be an env var NAME")
        return None
    why = own_secret_problem(env.get(var, ""), MIN_HS256_SECRET)
    if why is not None:
        problems.append(f"{where}.hs256_secret_env: env var {var} {why}")
        return None
    return Secret(env[var])


def _user_scopes(
    where: str, entry: dict[str, Any], key: str, problems: list[str]
) -> frozenset[str]:
    value = entry.get(key, ["invoices:read"])
    if not isinstance(value, list) or not set(value) <= USER_SCOPES:
        problems.append(f"{where}.{key}: allowed: {', '.join(sorted(USER_SCOPES))}")
        return frozenset()
    return frozenset(value)


def _issuer_numbers(
    where: str, entry: dict[str, Any], problems: list[str]
) -> dict[str, float]:
    numbers = {}
    for key, default in (
        ("leeway_s", 30.0),
        ("jwks_cache_s", 300.0),
        ("jwks_min_refetch_s", 30.0),
        ("jwks_keep_s", 86400.0),
    ):
        value = entry.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            problems.append(f"{where}.{key}: must be a non-negative number of seconds")
            value = default
        numbers[key] = float(value)
    if numbers["leeway_s"] > MAX_LEEWAY_S:
        problems.append(f"{where}.leeway_s: at most {MAX_LEEWAY_S:g} seconds")
    return numbers

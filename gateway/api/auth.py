"""Who is calling: an internal service's API key, or an end user's JWT.

Both arrive as `Authorization: Bearer <credential>`. An API key is known by its SHA-256
hash; anything else that looks like a JWS is verified against the configured issuers:
the issuer is chosen by the exact `iss`, the algorithm must be one the issuer allows
(never `none`; HS256 only with a secret from the environment, never a JWKS key), the key
by `kid` from the issuer's JWKS, then signature, `exp`/`nbf`/`iat` (with a small leeway),
`aud`, `iss` and the required claims. The token must name its customer's document(s);
the caller then sees only those customers' invoices.

A bad token is a 401 with `WWW-Authenticate: Bearer error="invalid_token"` and says only
"expired" or "invalid": what exactly failed is logged, never told to a possible forger.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import jwt
import structlog
from jwt.exceptions import ExpiredSignatureError, InvalidTokenError

from gateway import jsoncodec
from gateway.api.jwks import JwksKeys
from gateway.api.params import document_digits
from gateway.config.settings import ApiKey, JwtIssuer
from gateway.errors import AuthenticationError
from gateway.invoices.principal import Principal

log = structlog.get_logger("auth")
JWS_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
MAX_TOKEN_LEN = 8192
# Any credential: visible ASCII, bounded (twice a token's limit, so that one is judged).
CREDENTIAL_RE = re.compile(r"[\x21-\x7e]{1,%d}" % (2 * MAX_TOKEN_LEN))  # noqa: UP031
MAX_DOCUMENTS = 20
MAX_SUBJECT_LEN = 255  # a subject names the caller in logs, audit and its budget
USER_CACHE_S = 60.0  # a verified token is taken on trust this long at most
MAX_CACHED_USERS = 10_000  # verified tokens remembered (about 200 bytes each)
KEY_TYPES = {  # the JWK key type each asymmetric algorithm needs
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "EdDSA": "OKP",
}
CHALLENGE = 'Bearer realm="invoice-gateway", error="invalid_token"'


def _invalid(detail: str = "invalid token") -> AuthenticationError:
    return AuthenticationError(
        detail, challenge=f'{CHALLENGE}, error_description="{detail}"'
    )


class Authenticator:
    """Turns a bearer credential into a `Principal`, or raises `AuthenticationError`."""

    def __init__(
        self,
        api_keys: tuple[ApiKey, ...],
        issuers: tuple[JwtIssuer, ...],
        session: Callable[[], aiohttp.ClientSession] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Index the keys by hash and the issuers by `iss`; read any JWKS files."""
        # Each key's caller, built once: a key's principal never changes.
        self._keys = {
            key.sha256: Principal(
                key.name, key.scopes, key.connections, limit=key.rate_limit
            )
            for key in api_keys
        }
        self._issuers: Mapping[str, tuple[JwtIssuer, JwksKeys | None]] = {
            iss.issuer: (
                iss,
                None
                if iss.jwks_url is None and iss.jwks_file is None
                else JwksKeys(iss, session),
            )
            for iss in issuers
        }
        # Tokens verified lately, by their SHA-256: (their caller, valid until, epoch).
        self._users: dict[str, tuple[Principal, float]] = {}
        self._clock = clock

    def api_key(self, authorization: str) -> Principal | str:
        """The caller of an API key or of a token verified lately, at once.

        Else the bearer credential, for `verify` (a JWT needs its issuer's keys, which
        may have to be fetched). Raises `AuthenticationError` when the header holds no
        usable bearer credential.
        """
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        # Visible ASCII only, bounded: undecodable header bytes arrive as surrogates,
        # which `.encode()` would refuse with an exception (a 500).
        if scheme.lower() != "bearer" or not CREDENTIAL_RE.fullmatch(credential):
            raise AuthenticationError(
                "send an API key or token as 'Authorization: Bearer <credential>'"
            )
        digest = hashlib.sha256(credential.encode()).hexdigest()
        found: Principal | str = credential
        for known, principal in self._keys.items():  # every one: constant time
            if hmac.compare_digest(known, digest):
                found = principal
        if found is credential and self._users:
            user = self._users.get(digest)
            if user is not None and self._clock() < user[1]:
                return user[0]
        return found

    async def authenticate(self, authorization: str) -> Principal:
        """The caller behind an `Authorization` header value."""
        found = self.api_key(authorization)
        return found if isinstance(found, Principal) else await self.verify(found)

    async def verify(self, credential: str) -> Principal:
        """The end user behind a credential that is no API key (`api_key`'s answer)."""
        if self._issuers and JWS_RE.fullmatch(credential):
            return await self._user(credential)
        raise AuthenticationError("unknown API key")

    def _remember(self, token: str, principal: Principal, until: float) -> None:
        """Keep a verified token's caller until `until` (at most `USER_CACHE_S` on)."""
        users = self._users
        now = self._clock()
        digest = hashlib.sha256(token.encode()).hexdigest()
        users.pop(digest, None)  # (re-inserted last: the order is the age)
        # Oldest first, O(1) each: the expired at the front, then any past the bound.
        while users:
            oldest = next(iter(users))
            if users[oldest][1] > now and len(users) < MAX_CACHED_USERS:
                break
            del users[oldest]
        users[digest] = (principal, min(until, now + USER_CACHE_S))

    async def _user(self, token: str) -> Principal:
        """Verify an end-user token; every failure is the same 401 (expired or invalid).

        A verified token's caller is remembered until the token would be refused as
        expired (`exp` plus the issuer's leeway), `USER_CACHE_S` at most: a page hit
        for an end user costs no signature check, and a key withdrawn from the
        issuer's JWKS stops being honoured within that time.
        """
        try:
            issuer, claims = await self._verified(token)
        except ExpiredSignatureError as err:
            log.info("token_refused", reason="expired")
            raise _invalid("token expired") from err
        except InvalidTokenError as err:
            log.info("token_refused", reason=type(err).__name__, detail=str(err))
            raise _invalid() from err
        documents = _documents(claims.get(issuer.customer_claim))
        if not documents:
            log.info("token_refused", reason="no usable customer claim")
            raise _invalid()
        subject = claims.get("sub", "-")
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_LEN:
            log.info("token_refused", reason="unusable sub")
            raise _invalid()
        name = f"{issuer.name}:{subject}"
        principal = Principal(
            name,
            _scopes(issuer, claims),
            issuer.connections,
            documents=documents,
            kind="user",
            limit=issuer.rate_limit,
        )
        try:  # PyJWT refuses a token `leeway` after `int(exp)` (a string's too)
            until = int(claims["exp"]) + issuer.leeway_s
        except (KeyError, ValueError, TypeError, OverflowError):  # no `exp`: no end
            until = math.inf
        self._remember(token, principal, until)
        return principal

    async def _verified(self, token: str) -> tuple[JwtIssuer, dict[str, Any]]:
        if len(token) > MAX_TOKEN_LEN:
            raise InvalidTokenError("token too long")
        header, iss = _peek(token)
        found = self._issuers.get(iss) if isinstance(iss, str) else None
        if found is None:
            raise InvalidTokenError("unknown issuer")
        issuer, keys = found
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            shown = str(alg)[:16]
            raise InvalidTokenError(f"algorithm {shown!r} not allowed for this issuer")
        key: Any
        if alg == "HS256":
            if issuer.hs256_secret is None:
                raise InvalidTokenError("HS256 without a configured secret")
            key = issuer.hs256_secret.reveal()
        else:
            kid = header.get("kid")
            jwk = (
                await keys.key(kid)
                if keys is not None and isinstance(kid, str)
                else None
            )
            if jwk is None:
                raise InvalidTokenError("unknown kid")
            if getattr(jwk, "key_type", None) != KEY_TYPES.get(alg):
                raise InvalidTokenError("key type does not match the algorithm")
            key = jwk.key
        claims = jwt.decode(
            token,
            key=key,
            algorithms=[alg],
            audience=issuer.audience,
            issuer=issuer.issuer,
            leeway=issuer.leeway_s,
            options={"require": list(issuer.required_claims), "strict_aud": False},
        )
        return issuer, claims


def _peek(token: str) -> tuple[dict[str, Any], Any]:
    """The header and the claimed `iss`, unverified: only to pick the issuer and key.

    Everything is verified again by `jwt.decode`; this read costs a fraction of PyJWT's
    unverified decode, which would validate claims that are about to be validated anyway.
    """
    try:
        head, payload, _ = token.split(".")
        header = jsoncodec.loads(_b64decode(head))
        claims = jsoncodec.loads(_b64decode(payload))
    except ValueError as err:  # bad base64, bad JSON, wrong number of parts
        raise InvalidTokenError("malformed token") from err
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidTokenError("malformed token")
    return header, claims.get("iss")


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _documents(raw: Any) -> frozenset[str]:
    """The customer documents a claim names (a string or a list); empty if any is bad."""
    values = [raw] if isinstance(raw, str) else raw
    if not isinstance(values, list) or not 0 < len(values) <= MAX_DOCUMENTS:
        return frozenset()
    out = set()
    for value in values:
        digits = document_digits(value) if isinstance(value, str) else None
        if digits is None:
            return frozenset()
        out.add(digits)
    return frozenset(out)


def _scopes(issuer: JwtIssuer, claims: dict[str, Any]) -> frozenset[str]:
    """The token's scopes (space-separated string or list), capped by the issuer's."""
    raw = claims.get(issuer.scopes_claim) if issuer.scopes_claim else None
    if raw is None:
        return issuer.default_scopes & issuer.allowed_scopes
    values = raw.split() if isinstance(raw, str) else raw
    if not isinstance(values, list):
        return frozenset()
    return frozenset(v for v in values if isinstance(v, str)) & issuer.allowed_scopes

"""An issuer's signing keys: a JWKS URL cached and refetched with care, or a JWKS file.

A URL's keys are cached for `jwks_cache_s`; a token naming an unknown `kid` triggers a
refetch (key rotation), at most once per `jwks_min_refetch_s` so a flood of forged kids
cannot turn the gateway into a cannon against the issuer. When the endpoint fails, the
last good keys keep serving for `jwks_keep_s`. Only asymmetric keys are accepted from a
JWKS: a symmetric (`oct`) key there is ignored, so no public document can hand out an
HMAC secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog
from jwt import PyJWK, PyJWKSet
from jwt.exceptions import PyJWKError, PyJWKSetError

from gateway.config.settings import JwtIssuer

log = structlog.get_logger("auth")
ASYMMETRIC_KTY = frozenset({"RSA", "EC", "OKP"})
FETCH_TIMEOUT_S = 5.0
MAX_JWKS_BYTES = 256 * 1024


class JwksError(Exception):
    """A JWKS document could not be read or holds no usable key."""


def parse_jwks(raw: bytes | str) -> dict[str, PyJWK]:
    """The asymmetric keys of a JWKS document, by `kid`."""
    try:
        doc = json.loads(raw)
        keys = doc["keys"] if isinstance(doc, dict) else None
        if not isinstance(keys, list):
            raise JwksError("not a JWKS document (no 'keys' array)")
        usable = [
            k
            for k in keys
            if isinstance(k, dict)
            and k.get("kty") in ASYMMETRIC_KTY
            and isinstance(k.get("kid"), str)
            and k.get("use", "sig") == "sig"
        ]
        if not usable:
            raise JwksError("the JWKS holds no asymmetric signing key with a kid")
        found = PyJWKSet(usable)
    except (ValueError, KeyError, PyJWKError, PyJWKSetError) as err:
        raise JwksError(f"unreadable JWKS: {type(err).__name__}") from err
    return {str(k.key_id): k for k in found.keys}


def read_jwks_file(path: Path) -> dict[str, PyJWK]:
    """The keys of a JWKS file (read once at start-up)."""
    try:
        return parse_jwks(path.read_bytes())
    except OSError as err:
        raise JwksError(f"cannot read {path}: {err.strerror}") from err


class JwksKeys:
    """Keys by `kid` for one issuer, from its URL (cached) or its file (fixed)."""

    def __init__(
        self,
        issuer: JwtIssuer,
        session: Callable[[], aiohttp.ClientSession] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Prepare; a file's keys are read now, a URL's on first use."""
        self._issuer = issuer
        self._session = session
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()
        if issuer.jwks_file is not None:
            self._keys = read_jwks_file(issuer.jwks_file)

    async def key(self, kid: str) -> PyJWK | None:
        """The key named `kid`, refetching the URL when needed and allowed; else None."""
        if self._issuer.jwks_url is None:
            return self._keys.get(kid)
        if self._wanted(kid):
            # Through the lock even when no fetch is allowed now: a fetch in progress
            # (the first requests after start-up, a rotation) is waited for, not raced.
            async with self._lock:
                if self._wanted(kid) and self._may_fetch(self._clock()):
                    await self._fetch()
        if (
            self._fetched_at is not None
            and self._clock() - self._fetched_at > self._issuer.jwks_keep_s
        ):
            return None  # the endpoint has failed for too long: trust nothing old
        return self._keys.get(kid)

    def _wanted(self, kid: str) -> bool:
        """Whether the keys are missing, expired, or lack `kid`."""
        return (
            self._fetched_at is None
            or self._clock() - self._fetched_at >= self._issuer.jwks_cache_s
            or kid not in self._keys
        )

    def _may_fetch(self, now: float) -> bool:
        return (
            self._tried_at is None
            or now - self._tried_at >= self._issuer.jwks_min_refetch_s
        )

    async def _fetch(self) -> None:
        assert self._issuer.jwks_url is not None  # noqa: S101 - checked by the caller
        self._tried_at = self._clock()
        try:
            keys = parse_jwks(await self._download(self._issuer.jwks_url))
        except (aiohttp.ClientError, TimeoutError, JwksError) as err:
            log.warning(
                "jwks_fetch_failed",
                issuer=self._issuer.name,
                reason=str(err) or type(err).__name__,
                keeping=len(self._keys),
            )
            return
        self._keys = keys
        self._fetched_at = self._clock()
        log.info("jwks_fetched", issuer=self._issuer.name, keys=len(keys))

    async def _download(self, url: str) -> bytes:
        assert self._session is not None  # noqa: S101 - a URL issuer always has one
        async with self._session().get(
            url,
            timeout=aiohttp.ClientTimeout(total=FETCH_TIMEOUT_S),
            allow_redirects=False,
        ) as resp:
            if resp.status != 200:  # noqa: PLR2004
                raise JwksError(f"HTTP {resp.status}")
            body = await resp.content.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise JwksError("JWKS larger than allowed")
        return body


def jwks_document(keys: list[dict[str, Any]]) -> bytes:
    """A JWKS document holding `keys` (for the demo and tests)."""
    return json.dumps({"keys": keys}).encode()

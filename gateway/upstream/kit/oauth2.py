"""OAuth 2.0 grants (RFC 6749) against one token endpoint: password, refresh, code.

`OAuth2Grants` posts a grant with the client's credentials (form-encoded, or JSON for an
upstream that wants it), reads the answer the same way for every provider
(`token_from_response`: `access_token` and a positive `expires_in`; a returned
`refresh_token` replaces the one presented, else that one is kept) and turns a refused
grant (400/401) into an `UpstreamAuthError` carrying the provider's advice. Grant calls
are POSTs: the funnel never retries them, so a one-time (rotating) refresh token is never
presented twice by a retry; the token provider (`gateway.state`) makes sure no two
callers present it either, and persists the new one before anyone uses it.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Literal

from gateway.config.settings import Secret
from gateway.errors import UpstreamAuthError, UpstreamProtocolError
from gateway.state.tokens import Token
from gateway.upstream.http import UpstreamClient, UpstreamResponse

REFUSED = frozenset({400, 401})
Encoding = Literal["form", "json"]


@dataclass(frozen=True, slots=True)
class OAuthClient:
    """The OAuth client registration: its id and secret."""

    client_id: str
    client_secret: Secret


def token_from_response(
    http: UpstreamClient,
    path: str,
    response: UpstreamResponse,
    *,
    issued: float,
    keep_refresh: Secret | None = None,
) -> Token:
    """The token in a successful grant response, or a protocol error naming what is off."""
    payload = http.decode_json("POST", path, response)
    access = payload.get("access_token") if isinstance(payload, dict) else None
    lifetime = payload.get("expires_in") if isinstance(payload, dict) else None
    if (
        not isinstance(access, str)
        or not access
        or isinstance(lifetime, bool)
        or not isinstance(lifetime, int | float)
        or not lifetime > 0
    ):
        raise UpstreamProtocolError(
            http.connection,
            "POST",
            path,
            "token response lacks access_token/expires_in",
        )
    rotated = payload.get("refresh_token")
    refresh = Secret(rotated) if isinstance(rotated, str) and rotated else keep_refresh
    return Token(Secret(access), issued, issued + float(lifetime), refresh)


class OAuth2Grants:
    """Grants of one OAuth client at one token endpoint (the identity host's funnel)."""

    def __init__(
        self,
        http: UpstreamClient,
        token_path: str,
        client: OAuthClient,
        *,
        encoding: Encoding = "form",
        advice: str = "check the connection's OAuth client credentials",
    ) -> None:
        """`advice` ends the message of a refused grant: what an operator should do."""
        self.http = http
        self.token_path = token_path
        self._client = client
        self._encoding = encoding
        self._advice = advice

    async def password(self, username: str, password: Secret) -> Token:
        """Resource-owner password grant (a login with the user's credentials)."""
        fields = {"grant_type": "password", "username": username}
        return await self._grant(fields, {"password": password}, keep=None)

    async def refresh(self, refresh: Secret) -> Token:
        """Refresh-token grant; the answer's refresh token replaces this one if given."""
        fields = {"grant_type": "refresh_token"}
        return await self._grant(fields, {"refresh_token": refresh}, keep=refresh)

    async def authorization_code(self, code: str, redirect_uri: str) -> Token:
        """Authorization-code grant: the code a human's consent sent to `redirect_uri`."""
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        return await self._grant(fields, {}, keep=None)

    async def refresh_newest(
        self, previous: Token | None, configured: Secret | None
    ) -> Token:
        """Refresh with the newest refresh token known, each presented at most once.

        The stored (rotated) one goes first; if it is refused and the configuration holds
        a different one, that is a newer consent an operator put there: it is tried once.
        Neither: an `UpstreamAuthError` with the advice (a human must consent again).
        """
        stored = previous.refresh if previous is not None else None
        candidates = [t for t in (stored, configured) if t is not None]
        if stored is not None and stored == configured:
            candidates = [stored]
        if not candidates:
            raise self._refused(f"no refresh token: {self._advice}")
        for refresh in candidates[:-1]:
            with contextlib.suppress(UpstreamAuthError):
                return await self.refresh(refresh)
        return await self.refresh(candidates[-1])

    async def _grant(
        self, fields: dict[str, str], secrets: dict[str, Secret], keep: Secret | None
    ) -> Token:
        body = {
            **fields,
            "client_id": self._client.client_id,
            "client_secret": self._client.client_secret.reveal(),
            **{name: value.reveal() for name, value in secrets.items()},
        }
        issued = time.time()
        as_json, as_form = (body, None) if self._encoding == "json" else (None, body)
        response = await self.http.request(
            "POST", self.token_path, json=as_json, form=as_form, pass_statuses=REFUSED
        )
        if response.status in REFUSED:
            grant = fields["grant_type"].replace("_", " ")
            raise self._refused(
                f"{grant} grant refused (HTTP {response.status}): {self._advice}",
                status=response.status,
            )
        return token_from_response(
            self.http, self.token_path, response, issued=issued, keep_refresh=keep
        )

    def _refused(self, reason: str, status: int = 0) -> UpstreamAuthError:
        return UpstreamAuthError(
            self.http.connection, "POST", self.token_path, reason, status=status
        )

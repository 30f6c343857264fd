"""Xarios HTTP + auth only: OAuth2 refresh-token grant with rotation, four billing routes.

Access tokens are short-lived; refresh tokens rotate, so the refresh token used once is
dead and the one returned must be kept — the client says so (`rotating=True`), and the
gateway's token provider then refreshes only under its shared lock and persists every new
token before handing it out. The identity server lives on its own host (`auth_url`); the
billing API on the connection's regional `base_url`. A refused refresh means a human must
consent again (`invoice-gateway auth xarios --connection ID`), and the error says so.
"""

from __future__ import annotations

import contextlib
import time
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from aiohttp import hdrs

from gateway.config.settings import Secret
from gateway.errors import UpstreamAuthError, UpstreamProtocolError
from gateway.state.tokens import Token, TokenProvider
from gateway.upstream.http import UpstreamClient, UpstreamResponse
from gateway.upstream.httpstream import UpstreamStream
from gateway.upstream.oauth import token_from_response

TOKEN_PATH = "/connect/token"  # noqa: S105 - a URL path, not a password
AUTHORIZE_PATH = "/connect/authorize"
BILLING = "/api/v1.0/billingdata"
SCOPE = "openid offline_access onboarding"


@dataclass(frozen=True, slots=True)
class XariosCredentials:
    """The OAuth client and, optionally, a refresh token from an earlier consent."""

    client_id: str
    client_secret: Secret
    initial_refresh: Secret | None


class XariosAuth:
    """Bearer token from the shared token provider; a rejected token is dropped."""

    def __init__(self, client: XariosClient) -> None:
        """Bind to the client that knows how to refresh."""
        self._client = client

    async def apply(self, headers: dict[str, str]) -> object:
        """Set `Authorization` and return the token used."""
        token = await self._client.tokens.get(
            self._client.connection, self._client.refresh, rotating=True
        )
        headers[hdrs.AUTHORIZATION] = f"Bearer {token.access.reveal()}"
        return token

    async def rejected(self, handle: object) -> bool:
        """A 401 mid-life: forget the access token (its refresh token stays)."""
        if isinstance(handle, Token):
            await self._client.tokens.invalidate(self._client.connection, handle)
        return True


class XariosClient:
    """Typed calls to one Xarios connection."""

    def __init__(
        self,
        api: UpstreamClient,
        identity: UpstreamClient,
        tokens: TokenProvider,
        credentials: XariosCredentials,
    ) -> None:
        """`api` is the regional billing host, `identity` the login host."""
        self.api = api
        self.identity = identity
        self.tokens = tokens
        self.connection = api.connection
        self._credentials = credentials
        self._auth = XariosAuth(self)

    def reconsent_hint(self) -> str:
        """What an operator must run when the refresh token is gone."""
        return f"run `invoice-gateway auth xarios --connection {self.connection}`"

    async def refresh(self, previous: Token | None) -> Token:
        """Refresh-token grant with the newest refresh token known.

        The stored (rotated) token goes first; if it is refused and the configuration
        holds a different one, that is a newer consent an operator put there: try it once.
        """
        stored = previous.refresh if previous and previous.refresh else None
        configured = self._credentials.initial_refresh
        candidates = [t for t in (stored, configured) if t is not None]
        if stored is not None and stored == configured:
            candidates = [stored]
        if not candidates:
            raise UpstreamAuthError(
                self.connection,
                "POST",
                TOKEN_PATH,
                f"no refresh token: {self.reconsent_hint()}",
            )
        for refresh in candidates[:-1]:
            with contextlib.suppress(UpstreamAuthError):
                return await self._grant_refresh(refresh)
        return await self._grant_refresh(candidates[-1])

    async def _grant_refresh(self, refresh: Secret) -> Token:
        form = {"grant_type": "refresh_token", "refresh_token": refresh.reveal()}
        return await self._grant(form, keep=refresh)

    async def exchange_code(self, code: str, redirect_uri: str) -> Token:
        """Authorization-code grant (the one-time consent)."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
        }
        return await self._grant(form, keep=None)

    async def _grant(self, form: dict[str, str], keep: Secret | None) -> Token:
        creds = self._credentials
        form |= {
            "client_id": creds.client_id,
            "client_secret": creds.client_secret.reveal(),
        }
        issued = time.time()
        response = await self.identity.request(
            "POST", TOKEN_PATH, form=form, pass_statuses=frozenset({400, 401})
        )
        if response.status != 200:  # noqa: PLR2004
            raise UpstreamAuthError(
                self.connection,
                "POST",
                TOKEN_PATH,
                f"grant refused (HTTP {response.status}): {self.reconsent_hint()}",
                status=response.status,
            )
        return token_from_response(
            self.identity, TOKEN_PATH, response, issued=issued, keep_refresh=keep
        )

    async def list_invoices(self) -> list[Any]:
        """`GET /billingdata`: every invoice of the account (no paging documented)."""
        data = await self._data(BILLING)
        if not isinstance(data, list):
            raise UpstreamProtocolError(
                self.connection, "GET", BILLING, "data is not a list"
            )
        return data

    async def invoice(self, invoice_id: str) -> dict[str, Any]:
        """`GET /billingdata/{id}`; 404 becomes `UpstreamNotFoundError`."""
        data = await self._data(f"{BILLING}/{invoice_id}")
        if not isinstance(data, dict):
            raise UpstreamProtocolError(
                self.connection, "GET", BILLING, "data is not an object"
            )
        return data

    async def detail_zip(self, invoice_id: str) -> bytes:
        """`GET /billingdata/{id}/detail`: a ZIP (JSON + CSV), as bytes."""
        path = f"{BILLING}/{invoice_id}/detail"
        response = await self.api.request("GET", path, auth=self._auth)
        return response.body

    def summary(self, invoice_id: str) -> AbstractAsyncContextManager[UpstreamStream]:
        """`GET /billingdata/{id}/summary`: the PDF, streamed."""
        return self.api.stream(
            "GET", f"{BILLING}/{invoice_id}/summary", auth=self._auth
        )

    async def _data(self, path: str) -> Any:
        def parse(response: UpstreamResponse) -> Any:
            payload = self.api.decode_json("GET", path, response)
            if not isinstance(payload, dict) or payload.get("status") != "success":
                raise UpstreamProtocolError(
                    self.connection, "GET", path, "unexpected envelope"
                )
            return payload.get("data")

        return await self.api.call("GET", path, parse, auth=self._auth)

"""Xarios HTTP + auth only: OAuth2 refresh-token grant with rotation, four billing routes.

Access tokens are short-lived; refresh tokens rotate, so the refresh token used once is
dead and the one returned must be kept — the client says so (`rotating=True`), and the
gateway's token provider then refreshes only under its shared lock and persists every new
token before handing it out. The identity server lives on its own host (`auth_url`); the
billing API on the connection's regional `base_url`. A refused refresh means a human must
consent again (`invoice-gateway auth xarios --connection ID`), and the error says so.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from gateway.config.settings import Secret
from gateway.errors import UpstreamProtocolError
from gateway.state.tokens import Token, TokenProvider
from gateway.upstream.http import UpstreamClient, UpstreamResponse
from gateway.upstream.httpstream import UpstreamStream
from gateway.upstream.kit.bearer import BearerAuth
from gateway.upstream.kit.oauth2 import OAuth2Grants, OAuthClient

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
        self.connection = api.connection
        self._initial_refresh = credentials.initial_refresh
        self.grants = OAuth2Grants(
            identity,
            TOKEN_PATH,
            OAuthClient(credentials.client_id, credentials.client_secret),
            advice=f"run `invoice-gateway auth xarios --connection {self.connection}`",
        )
        # Refresh tokens are one-time: the provider refreshes only under its shared lock.
        self._auth = BearerAuth(tokens, self.connection, self.refresh, rotating=True)

    async def refresh(self, previous: Token | None) -> Token:
        """Refresh-token grant with the newest refresh token known (stored, configured)."""
        return await self.grants.refresh_newest(previous, self._initial_refresh)

    async def list_invoices(self) -> list[object]:
        """`GET /billingdata`: every invoice of the account (no paging documented)."""
        data = await self._data(BILLING)
        if not isinstance(data, list):
            raise UpstreamProtocolError(
                self.connection, "GET", BILLING, "data is not a list"
            )
        return data

    async def invoice(self, invoice_id: str) -> dict[str, object]:
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

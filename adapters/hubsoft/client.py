"""Hubsoft HTTP + auth only: the password grant, the envelope check, two invoice routes.

The access token comes from `POST /oauth/token` (password grant) and is reused through
the gateway's token provider until shortly before `expires_in`; a 401 drops it and the
funnel logs in once more and retries once. Every `/api/v1/integracao` answer is an
envelope whose `status` may say `error` inside an HTTP 200, and whose success is spelled
`success` or `suscess` depending on the route: both are checked here, before anyone
reads a row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.config.settings import Secret
from gateway.errors import UpstreamProtocolError, UpstreamRejectedError
from gateway.state.tokens import Token, TokenProvider
from gateway.upstream.http import UpstreamClient, UpstreamResponse
from gateway.upstream.kit.bearer import BearerAuth
from gateway.upstream.kit.oauth2 import OAuth2Grants, OAuthClient

CUSTOMER_INVOICES = "/api/v1/integracao/cliente/financeiro"
TENANT_INVOICES = "/api/v1/integracao/financeiro/fatura"
TOKEN_PATH = "/oauth/token"  # noqa: S105 - a URL path, not a password
ROW_CAP = 50  # /cliente/financeiro returns at most 50 rows and has no paging
SUCCESS_WORDS = frozenset({"success", "suscess"})
MAX_MSG = 200


@dataclass(frozen=True, slots=True)
class HubsoftCredentials:
    """The five fields of the password grant (all issued by the ISP's admin)."""

    client_id: str
    client_secret: Secret
    username: str
    password: Secret


@dataclass(frozen=True, slots=True)
class TenantPage:
    """One page of `/financeiro/fatura` and the last page index (0-based, inclusive)."""

    rows: list[object]
    last_page: int


class HubsoftClient:
    """Typed calls to one Hubsoft tenant."""

    def __init__(
        self,
        http: UpstreamClient,
        tokens: TokenProvider,
        credentials: HubsoftCredentials,
    ) -> None:
        """Compose the shared funnel, token provider and this tenant's credentials."""
        self.http = http
        self._credentials = credentials
        # Hubsoft's token endpoint takes a JSON body, not the usual form.
        self._grants = OAuth2Grants(
            http,
            TOKEN_PATH,
            OAuthClient(credentials.client_id, credentials.client_secret),
            encoding="json",
            advice="check client_id, client_secret, username and password",
        )
        self._auth = BearerAuth(tokens, http.connection, self.login)

    async def login(self, _previous: Token | None) -> Token:
        """Run the password grant: a 401 means the token was revoked, so log in anew."""
        creds = self._credentials
        return await self._grants.password(creds.username, creds.password)

    async def customer_invoices(
        self,
        busca: str,
        termo: str,
        *,
        pending_only: bool,
        start: date | None = None,
        end: date | None = None,
    ) -> list[object]:
        """`/cliente/financeiro`, oldest due date first, at most `ROW_CAP` rows."""
        params = {
            "busca": busca,
            "termo_busca": termo,
            "limit": str(ROW_CAP),
            # The upstream default is `sim`: without this, paid invoices never come back.
            "apenas_pendente": "sim" if pending_only else "nao",
            "order_by": "data_vencimento",
            "order_type": "asc",
        }
        params.update(_window(start, end))
        return await self._rows(CUSTOMER_INVOICES, params, "faturas")

    async def tenant_invoices(
        self, page: int, start: date, end: date, *, pending_only: bool
    ) -> TenantPage:
        """One page of `/financeiro/fatura` over a due-date window."""
        params = {
            "pagina": str(page),
            "itens_por_pagina": "500",
            "tipo_resultado": "detalhado",
            "exibir_pix_copia_cola": "sim",
            "apenas_em_aberto": "sim" if pending_only else "nao",
            **_window(start, end),
        }
        payload = await self._envelope(TENANT_INVOICES, params)
        paging = payload.get("paginacao")
        last = paging.get("ultima_pagina") if isinstance(paging, dict) else None
        if not isinstance(last, int):
            raise self._protocol(TENANT_INVOICES, "paginacao.ultima_pagina missing")
        return TenantPage(self._rows_of(TENANT_INVOICES, payload, "faturas"), last)

    async def _rows(self, path: str, params: dict[str, str], key: str) -> list[object]:
        return self._rows_of(path, await self._envelope(path, params), key)

    def _rows_of(self, path: str, payload: dict[str, Any], key: str) -> list[object]:
        """The payload list; rows are checked one by one by the adapter."""
        rows = payload.get(key)
        if not isinstance(rows, list):
            raise self._protocol(path, f"{key} is not a list")
        return rows

    async def _envelope(self, path: str, params: dict[str, str]) -> dict[str, Any]:
        def parse(response: UpstreamResponse) -> dict[str, Any]:
            return self._checked(path, self.http.decode_json("GET", path, response))

        return await self.http.call("GET", path, parse, params=params, auth=self._auth)

    def _checked(self, path: str, payload: Any) -> dict[str, Any]:
        """The envelope, if its `status` says success in either spelling."""
        if not isinstance(payload, dict):
            raise self._protocol(path, "envelope is not an object")
        status = payload.get("status")
        if status == "error":
            msg = str(payload.get("msg") or "no message")[:MAX_MSG]
            raise UpstreamRejectedError(
                self.http.connection, "GET", path, f"envelope error: {msg}"
            )
        if status not in SUCCESS_WORDS:
            raise self._protocol(
                path, f"unexpected envelope status {str(status)[:40]!r}"
            )
        return payload

    def _protocol(self, path: str, reason: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(self.http.connection, "GET", path, reason)


def _window(start: date | None, end: date | None) -> dict[str, str]:
    params = {}
    if start is not None:
        params["data_inicio"] = start.isoformat()
    if end is not None:
        params["data_fim"] = end.isoformat()
    if params:
        params["tipo_data"] = "data_vencimento"
    return params

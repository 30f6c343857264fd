"""Bearer-token authentication for the upstream funnel, over the shared token provider.

`BearerAuth` is the `Authenticator` an OAuth-speaking adapter hands the funnel: it asks
the connection's `TokenProvider` for a usable token (refreshing through the adapter's
grant, single-flight, early, persisted) and sets `Authorization: Bearer ...`. On a 401 the
funnel calls `rejected`: only the token that was refused is dropped (a newer one that
another caller already fetched stays), and the funnel then sends once more with a fresh
token: one refresh and one retry, never a loop. With `rotating=True` the provider never
refreshes without holding the connection's shared lock (one-time refresh tokens).
"""

from __future__ import annotations

from aiohttp import hdrs

from gateway.state.tokens import Token, TokenFetcher, TokenProvider


class BearerAuth:
    """`Authorization: Bearer <access token>` from the token provider; 401 drops it."""

    def __init__(
        self,
        tokens: TokenProvider,
        connection: str,
        fetch: TokenFetcher,
        *,
        rotating: bool = False,
    ) -> None:
        """`fetch` obtains a new token (the grant); it skips the auth path itself."""
        self._tokens = tokens
        self._connection = connection
        self._fetch = fetch
        self._rotating = rotating

    async def token(self) -> Token:
        """A usable token for the connection (refreshed through `fetch` when needed)."""
        return await self._tokens.get(
            self._connection, self._fetch, rotating=self._rotating
        )

    async def apply(self, headers: dict[str, str]) -> object:
        """Set `Authorization` and return the token used (the handle of `rejected`)."""
        token = await self.token()
        headers[hdrs.AUTHORIZATION] = f"Bearer {token.access.reveal()}"
        return token

    async def rejected(self, handle: object) -> bool:
        """The upstream refused the token: forget it (its refresh token stays), retry."""
        if isinstance(handle, Token):
            await self._tokens.invalidate(self._connection, handle)
        return True

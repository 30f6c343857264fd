"""Upstream access tokens: reuse until shortly before expiry, one refresh at a time.

`TokenProvider` is the extension point (the Redis-shared store implements the same
Protocol). `LocalTokenProvider` keeps tokens in process and makes concurrent callers
share one refresh: the first caller refreshes under a per-connection lock, the others
wait on the lock and re-check before refreshing again. `invalidate` only drops the token
the caller saw rejected, so N callers hitting the same 401 cause one new login, not N.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.config.settings import Secret

MAX_SKEW_S = 60.0


@dataclass(frozen=True, slots=True)
class Token:
    """An access token (and the refresh token that came with it, if any)."""

    access: Secret
    issued_at: float
    expires_at: float
    refresh: Secret | None = None

    def to_dict(self) -> dict[str, object]:
        """Persisted form (it holds credentials: store it like one)."""
        return {
            "access": self.access.reveal(),
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "refresh": self.refresh.reveal() if self.refresh else None,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Token:
        """Inverse of `to_dict`."""
        refresh = raw.get("refresh")
        return cls(
            Secret(str(raw["access"])),
            float(raw["issued_at"]),
            float(raw["expires_at"]),
            Secret(refresh) if isinstance(refresh, str) else None,
        )

    def valid(self, now: float) -> bool:
        """True until the access token actually expires (no early-refresh margin)."""
        return now < self.expires_at

    def usable(self, now: float) -> bool:
        """True until shortly before expiry (a quarter of the lifetime, at most 60 s)."""
        skew = min(MAX_SKEW_S, (self.expires_at - self.issued_at) / 4)
        return now < self.expires_at - skew


TokenFetcher = Callable[[Token | None], Awaitable[Token]]
"""Obtains a new token; receives the previous one (its refresh token may be needed)."""


@dataclass(frozen=True, slots=True)
class TokenState:
    """What may be said about a connection's token in public: never the token."""

    present: bool
    expires_in_s: float | None
    refreshes: int


class TokenStore(Protocol):
    """Durable home of tokens, so a rotated refresh token survives a restart."""

    async def load(self, connection: str) -> Token | None:
        """The last saved token of a connection, if any."""
        ...

    async def save(self, connection: str, token: Token) -> None:
        """Persist durably before returning (the caller uses the token right after)."""
        ...


class TokenProvider(Protocol):
    """Where connections' tokens live and how refreshes are serialised."""

    async def get(
        self, connection: str, fetch: TokenFetcher, *, rotating: bool = False
    ) -> Token:
        """A usable token, refreshing through `fetch` (once, shared) when needed.

        `rotating`: the grant's refresh tokens are one-time (the upstream rotates them
        and revokes the consent when one is presented twice); the provider then never
        refreshes without being sure it is the only one doing so.
        """
        ...

    async def invalidate(self, connection: str, rejected: Token) -> None:
        """Mark `rejected` unusable, unless a newer token already replaced it."""
        ...

    def state(self, connection: str) -> TokenState:
        """Public facts about the connection's token."""
        ...

    async def close(self) -> None:
        """Stop background work (at shutdown)."""
        ...


class LocalTokenProvider:
    """In-process token store with single-flight refresh per connection."""

    def __init__(
        self, clock: Callable[[], float] = time.time, store: TokenStore | None = None
    ) -> None:
        """`clock` returns epoch seconds; `store` persists every new token."""
        self._clock = clock
        self._store = store
        self._loaded: set[str] = set()
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshes: dict[str, int] = {}

    async def get(
        self,
        connection: str,
        fetch: TokenFetcher,
        *,
        rotating: bool = False,  # noqa: ARG002 - one process: its lock is enough
    ) -> Token:
        """A usable token; concurrent callers share one refresh."""
        token = self._tokens.get(connection)
        if token is not None and token.usable(self._clock()):
            return token
        lock = self._locks.setdefault(connection, asyncio.Lock())
        async with lock:
            if self._store is not None and connection not in self._loaded:
                stored = await self._store.load(connection)
                self._loaded.add(connection)
                if stored is not None:
                    self._tokens[connection] = stored
            token = self._tokens.get(connection)  # someone may have refreshed meanwhile
            if token is not None and token.usable(self._clock()):
                return token
            fresh = await fetch(token)
            if self._store is not None:
                # Before anyone uses it: a rotated refresh token lost here is lost for good.
                await self._store.save(connection, fresh)
            self._tokens[connection] = fresh
            self._refreshes[connection] = self._refreshes.get(connection, 0) + 1
            return fresh

    def seed(self, connection: str, token: Token) -> None:
        """Adopt a token known from elsewhere, unless a newer one is held."""
        current = self._tokens.get(connection)
        if current is None or current.issued_at < token.issued_at:
            self._tokens[connection] = token
            self._loaded.add(connection)

    async def invalidate(self, connection: str, rejected: Token) -> None:
        """Expire the rejected token but keep its refresh token for the next fetch."""
        current = self._tokens.get(connection)
        if current is rejected:
            self._tokens[connection] = Token(
                rejected.access,
                rejected.issued_at,
                rejected.issued_at,
                rejected.refresh,
            )

    def newest(self, connection: str) -> Token | None:
        """The newest token held for the connection (usable or not)."""
        return self._tokens.get(connection)

    async def close(self) -> None:
        """Nothing runs in the background."""

    def state(self, connection: str) -> TokenState:
        """Presence and remaining lifetime, nothing secret."""
        token = self._tokens.get(connection)
        refreshes = self._refreshes.get(connection, 0)
        if token is None:
            return TokenState(present=False, expires_in_s=None, refreshes=refreshes)
        left = max(0.0, round(token.expires_at - self._clock(), 1))
        return TokenState(present=True, expires_in_s=left, refreshes=refreshes)

"""Upstream tokens shared by every replica through Redis; a rotating grant is never reused.

A connection's token lives in one hash (`ig:v1:token:{<connection>}`): the token, a
`version`, and the refresh lock (`holder`, `beat`). To refresh, a replica takes the lock
atomically on the version it read, calls the upstream while beating the lock, and commits
the result with a compare-and-set on that version — so a slow replica never overwrites a
newer token. Everyone else waits for the new version. A holder whose beat stops for
`LEASE_S` (watched by a live peer while Redis answers) is dead and its lock is taken over.

Grants whose refresh tokens rotate (`rotating=True`) get more care, because presenting one
twice makes the upstream revoke the whole consent:

- no refresh without the lock: when Redis is unreachable the process keeps using a still
  valid access token, and once that expires the source fails with "token store
  unavailable" instead of refreshing on its own;
- the newest token a process has seen is kept in memory and written back (compared by
  issue time) by a keeper task whenever Redis holds an older one or none — after a commit
  that failed, after Redis restarted empty;
- after Redis comes back empty, nobody refreshes until the settle window
  (`gateway.state.redis_epoch`) has let those write-backs land; only then does a missing record
  mean "no token was ever seen" and the configured refresh token get used.

Other grants (a password login) fall back to the in-process provider while Redis is away.
The token keys hold live credentials: give the gateway its own Redis ACL user, use
`rediss://` (TLS) off-host, and keep Redis off public networks.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import uuid
from collections.abc import Callable

import structlog

from gateway.errors import TokenStoreUnavailableError
from gateway.state.redis_cache import RedisHealth
from gateway.state.redis_calls import guarded
from gateway.state.redis_client import REDIS_FAILURES, RedisClient
from gateway.state.redis_epoch import SETTLE_S, settle_left
from gateway.state.redis_token_record import (
    ACQUIRE,
    BEAT,
    COMMIT,
    EXPIRE_IF_SAME,
    RELEASE,
    TAKE_OVER,
    WRITE_BACK,
    Stored,
    fields,
    key,
    read,
)
from gateway.state.tokens import LocalTokenProvider, Token, TokenFetcher, TokenState

log = structlog.get_logger("tokens")
LEASE_S = 3.0  # a lock holder silent this long is dead
BEAT_S = 0.5  # lock beats and write-backs
POLL_S = 0.05


class RedisTokenProvider:
    """`TokenProvider` shared through Redis; see the module docstring for the rules."""

    def __init__(
        self,
        client: RedisClient,
        health: RedisHealth,
        fallback: LocalTokenProvider,
        clock: Callable[[], float] = time.time,
        *,
        lease_s: float = LEASE_S,
        settle_s: float = SETTLE_S,
    ) -> None:
        """Share the gateway's Redis client and health; `fallback` serves while it is away."""
        self._r = guarded(client)
        self._health = health
        self._fallback = fallback
        self._clock = clock
        self._lease_s = lease_s
        self._settle_s = settle_s
        self._me = uuid.uuid4().hex  # this process, as a lock holder
        self._local: dict[str, tuple[Token, int]] = {}  # the newest seen, its version
        self._rotating: set[str] = set()
        self._locks: dict[str, asyncio.Lock] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._inflight: dict[str, asyncio.Task[Token]] = {}
        self.refreshes: dict[str, int] = {}

    async def get(
        self, connection: str, fetch: TokenFetcher, *, rotating: bool = False
    ) -> Token:
        """A usable token; at most one refresh at a time across all replicas."""
        cached = self._local.get(connection)
        if cached is not None and cached[0].usable(self._clock()):
            return cached[0]
        if rotating:
            self._rotating.add(connection)
            self._start_keeper()
        try:
            async with self._locks.setdefault(connection, asyncio.Lock()):
                running = self._inflight.get(connection)
                if running is not None:  # a refresh whose first caller gave up
                    return await asyncio.shield(running)
                held = self._local.get(connection)
                if held is not None and held[0].usable(self._clock()):
                    return held[0]  # refreshed while we queued for the lock
                return await self._shared_get(connection, fetch, rotating=rotating)
        except REDIS_FAILURES as err:
            self._health.down(err)
            if rotating:
                return self._without_store(connection)
            # Carry on alone, from the newest token this process has seen.
            newest = self._local.get(connection)
            if newest is not None:
                self._fallback.seed(connection, newest[0])
            return await self._fallback.get(connection, fetch)

    def _without_store(self, connection: str) -> Token:
        """Redis away: a still-valid access token, or the honest error. Never a refresh."""
        newest = self._local.get(connection)
        if newest is not None and newest[0].valid(self._clock()):
            return newest[0]
        raise TokenStoreUnavailableError(connection)

    async def _shared_get(
        self, connection: str, fetch: TokenFetcher, *, rotating: bool
    ) -> Token:
        watched: tuple[str, int, float] | None = None  # holder, beat, since when
        while True:
            stored = await self._read(connection)
            self._health.up()
            token = self._adopt(connection, stored)
            if token is not None and token.usable(self._clock()):
                return token
            if rotating and await self._unsettled(connection, stored):
                await asyncio.sleep(POLL_S)
                continue
            acquired, holder, beat, version = await ACQUIRE.run(
                self._r, [key(connection)], self._me, stored.version
            )
            if acquired:
                return await self._refresh(connection, fetch, stored)
            holder = holder.decode() if isinstance(holder, bytes) else str(holder)
            if not holder or int(version) != stored.version:
                continue  # the version moved under us: read again
            now = self._clock()
            if watched is None or watched[:2] != (holder, int(beat)):
                watched = (holder, int(beat), now)
            elif now - watched[2] >= self._lease_s and await TAKE_OVER.run(
                self._r, [key(connection)], self._me, holder, int(beat)
            ):
                log.warning("token_lock_taken_over", connection=connection)
                return await self._refresh(connection, fetch, stored)
            await asyncio.sleep(POLL_S)

    async def _unsettled(self, connection: str, stored: Stored) -> bool:
        """Write back what we hold if the store is behind; wait out the settle window."""
        newest = self._local.get(connection)
        if newest is not None and (
            stored.token is None or stored.token.issued_at < newest[0].issued_at
        ):
            await self._write_back(connection, *newest)
            return True
        return await settle_left(self._r, self._settle_s) > 0

    async def _refresh(
        self, connection: str, fetch: TokenFetcher, stored: Stored
    ) -> Token:
        """Run the refresh in its own task: a caller giving up must not cut it short.

        A refresh cancelled mid-flight could leave the upstream's new refresh token
        unread (the consent lost); so it runs to the end, outside the request's deadline,
        and later callers of this process join it instead of refreshing again.
        """
        task = asyncio.create_task(
            self._refresh_and_commit(connection, fetch, stored),
            context=contextvars.Context(),
        )
        self._inflight[connection] = task
        task.add_done_callback(lambda done: self._settled(connection, done))
        return await asyncio.shield(task)

    def _settled(self, connection: str, task: asyncio.Task[Token]) -> None:
        self._inflight.pop(connection, None)
        if not task.cancelled():
            task.exception()  # retrieved: its first caller may have given up

    async def _refresh_and_commit(
        self, connection: str, fetch: TokenFetcher, stored: Stored
    ) -> Token:
        """Holding the lock: call the upstream while beating, then commit on the version."""
        beating = asyncio.create_task(self._beat(connection))
        try:
            fresh = await fetch(stored.token)
        except BaseException:
            with contextlib.suppress(*REDIS_FAILURES):
                await RELEASE.run(self._r, [key(connection)], self._me)
            raise
        finally:
            beating.cancel()
        # Kept here first: if the commit fails, the keeper writes it back later.
        self._local[connection] = (fresh, stored.version + 1)
        self.refreshes[connection] = self.refreshes.get(connection, 0) + 1
        try:
            version = await COMMIT.run(
                self._r, [key(connection)], self._me, stored.version, *fields(fresh)
            )
        except REDIS_FAILURES as err:
            self._health.down(err)
            log.warning("token_commit_deferred", connection=connection)
            return fresh
        if not version:
            return await self._lost_commit(connection, fresh, stored.version + 1)
        self._local[connection] = (fresh, int(version))
        return fresh

    async def _lost_commit(self, connection: str, fresh: Token, version: int) -> Token:
        """The version moved under our refresh: keep a stored token, else store ours.

        Someone took our lock over (their token wins, never overwritten), or Redis lost
        its data (the empty record gets ours back).
        """
        log.warning("token_commit_lost_race", connection=connection)
        stored = await self._read(connection)
        if stored.token is not None:
            self._local[connection] = (stored.token, stored.version)
            return stored.token
        await self._write_back(connection, fresh, version)
        return fresh

    async def _beat(self, connection: str) -> None:
        """Show the lock's holder is alive while the upstream call runs."""
        while True:
            await asyncio.sleep(BEAT_S)
            with contextlib.suppress(*REDIS_FAILURES):
                await BEAT.run(self._r, [key(connection)], self._me)

    async def _write_back(self, connection: str, token: Token, version: int) -> None:
        """Store `token` unless Redis holds one issued at the same time or later."""
        written = await WRITE_BACK.run(
            self._r, [key(connection)], self._me, version, *fields(token)
        )
        if written:
            log.info("token_written_back", connection=connection)
            self._local[connection] = (token, int(written))

    def _start_keeper(self) -> None:
        if self._keeper is None or self._keeper.done():
            # Its own context: a request's deadline must not bound the keeper's calls.
            self._keeper = asyncio.create_task(
                self._keep(), context=contextvars.Context()
            )

    async def _keep(self) -> None:
        """Every `BEAT_S`: write back rotating tokens Redis lost or never got."""
        while True:
            await asyncio.sleep(BEAT_S)
            for connection in list(self._rotating):
                newest = self._local.get(connection)
                if newest is None:
                    continue
                try:
                    await self._write_back(connection, *newest)
                except REDIS_FAILURES as err:
                    self._health.down(err)

    def _adopt(self, connection: str, stored: Stored) -> Token | None:
        """The newer of the stored token and ours (by issue time), remembered."""
        newest = self._local.get(connection)
        if stored.token is None:
            return newest[0] if newest is not None else None
        if (
            newest is not None
            and newest[0].access == stored.token.access
            and newest[0].expires_at < stored.token.expires_at
        ):
            return newest[0]  # rejected here; the store may not have heard yet
        if newest is None or newest[0].issued_at <= stored.token.issued_at:
            self._local[connection] = (stored.token, stored.version)
            return stored.token
        return newest[0]

    async def _read(self, connection: str) -> Stored:
        return await read(self._r, connection)

    async def invalidate(self, connection: str, rejected: Token) -> None:
        """Expire the rejected token everywhere, unless a newer one replaced it.

        N calls rejected with the same token make one Redis call, not N: a burst of
        401s must not drain the connection pool.
        """
        cached = self._local.get(connection)
        if cached is not None and cached[0].access == rejected.access:
            if cached[0].expires_at <= cached[0].issued_at:
                return  # already spent here by another of those calls
            spent = Token(
                rejected.access,
                rejected.issued_at,
                rejected.issued_at,
                rejected.refresh,
            )
            self._local[connection] = (spent, cached[1])  # its refresh token stays
        try:
            await EXPIRE_IF_SAME.run(
                self._r, [key(connection)], rejected.access.reveal()
            )
        except REDIS_FAILURES as err:
            self._health.down(err)
        await self._fallback.invalidate(connection, rejected)

    def state(self, connection: str) -> TokenState:
        """What this process knows, never the token."""
        cached = self._local.get(connection)
        if cached is None:
            return self._fallback.state(connection)
        left = max(0.0, round(cached[0].expires_at - self._clock(), 1))
        return TokenState(
            present=True, expires_in_s=left, refreshes=self.refreshes.get(connection, 0)
        )

    async def close(self) -> None:
        """Stop the keeper (one last write-back is not attempted: Redis may be gone)."""
        if self._keeper is not None:
            self._keeper.cancel()
            await asyncio.gather(self._keeper, return_exceptions=True)

"""Sale-account reads and writes: caching, invalidation, and idempotent creation.

A create with an `Idempotency-Key` has exactly one upstream effect per key: the same key and
body replays the first answer; another body is a 422; a concurrent duplicate waits for the
first and replays it. When the upstream does not answer a create, the key is left
`uncertain` and the client is told to retry with it; that retry first looks for an account
created since the first attempt and only creates when there is none. Writes are never
retried blindly. Every write drops the cached list and item it changed and is noted in the
shared write journal, which reads lay over what the upstream or cache says: a deleted
account leaves the list at once (though the upstream deletes it only later), and a created
or changed one shows as written, for the writer and on every replica.

Keys, leases and recording the outcome of an accepted create (never "not attempted")
are `gateway.invoices.keyed_writes`' job; this module says what a create and its look-up are.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from gateway import jsoncodec
from gateway.errors import NotFoundError, UpstreamNotFoundError
from gateway.invoices.accounts import SaleAccount, SaleAccountDraft
from gateway.invoices.keyed_writes import KeyedWrites, WriteResult
from gateway.invoices.listing import Connection
from gateway.invoices.principal import Principal
from gateway.state.cache import CachedLoader
from gateway.state.idempotency import IdempotencyStore
from gateway.state.journal import Note, WriteJournal
from gateway.upstream.providers import SaleAccountProvider, adapter_boundary

LOOKBACK_S = 120.0  # clock skew allowance when looking for an uncertain create's effect


class SaleAccountService:
    """Sale accounts across the connections whose adapters keep them."""

    def __init__(
        self,
        connections: Mapping[str, Connection],
        loader: CachedLoader,
        store: IdempotencyStore,
        journal: WriteJournal,
        *,
        wait_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`wait_s` bounds how long a duplicate waits for the first request."""
        self._connections = connections
        self._loader = loader
        self._keyed = KeyedWrites(store, wait_s=wait_s)
        self._journal = journal
        self._clock = clock

    def capable(self, principal: Principal) -> list[str]:
        """Connection ids this caller may use for sale accounts."""
        return [
            cid
            for cid, conn in self._connections.items()
            if principal.may_use(cid) and isinstance(conn.adapter, SaleAccountProvider)
        ]

    def _provider(
        self, principal: Principal, connection: str
    ) -> tuple[Connection, SaleAccountProvider]:
        conn = self._connections.get(connection)
        if conn is None or connection not in self.capable(principal):
            raise NotFoundError(f"no sale-account connection {connection!r}")
        adapter = conn.adapter
        assert isinstance(adapter, SaleAccountProvider)  # noqa: S101 - checked by capable()
        return conn, adapter

    def resolve(self, principal: Principal, account_id: str) -> tuple[str, str]:
        """Split a canonical id into (connection, remote id), or 404."""
        provider, _, rest = account_id.partition(":")
        connection, _, remote_id = rest.partition(":")
        conn = self._connections.get(connection)
        if conn is None or conn.settings.provider != provider or not remote_id:
            raise NotFoundError(f"no sale account {account_id!r}")
        self._provider(principal, connection)
        return connection, remote_id

    async def list(
        self, principal: Principal, connection: str, *, force: bool = False
    ) -> list[SaleAccount]:
        """Every account of a connection (cached), with this gateway's writes laid over."""
        conn, adapter = self._provider(principal, connection)

        async def load() -> bytes:
            with adapter_boundary(connection, "sale_accounts"):
                accounts = await adapter.list_sale_accounts()
            return jsoncodec.dumps([a.to_dict() for a in accounts])

        lookup = await self._loader.load(
            f"{connection}:sale_accounts",
            load,
            fresh_s=conn.settings.cache_fresh_s,
            stale_s=conn.settings.cache_stale_s,
            force=force,
        )
        listed = {raw["id"]: raw for raw in jsoncodec.loads(lookup.value)}
        for remote_id, note in (await self._journal.notes(connection)).items():
            account_id = f"{conn.settings.provider}:{connection}:{remote_id}"
            if note.record is None:
                listed.pop(account_id, None)  # the upstream may delete it only later
            elif note.at > lookup.fetched_at:  # the list predates the write
                listed[account_id] = note.record
        return [SaleAccount.from_dict(raw) for raw in listed.values()]

    async def get(
        self, principal: Principal, account_id: str, *, force: bool = False
    ) -> SaleAccount:
        """One account (cached), as this gateway last wrote it if that is newer."""
        connection, remote_id = self.resolve(principal, account_id)
        conn, adapter = self._provider(principal, connection)
        note = (await self._journal.notes(connection)).get(remote_id)
        if note is not None and note.record is None:
            raise NotFoundError(f"no sale account {account_id!r}")

        async def load() -> bytes:
            with adapter_boundary(connection, "sale_account"):
                account = await adapter.get_sale_account(remote_id)
            return jsoncodec.dumps(account.to_dict())

        try:
            lookup = await self._loader.load(
                f"{connection}:sale_account:{remote_id}",
                load,
                fresh_s=conn.settings.cache_fresh_s,
                stale_s=conn.settings.cache_stale_s,
                force=force,
            )
        except UpstreamNotFoundError as err:
            raise NotFoundError(f"no sale account {account_id!r}") from err
        if note is not None and note.record is not None and note.at > lookup.fetched_at:
            return SaleAccount.from_dict(note.record)
        return SaleAccount.from_dict(jsoncodec.loads(lookup.value))

    async def update(
        self, principal: Principal, account_id: str, draft: SaleAccountDraft
    ) -> SaleAccount:
        """Change the given fields; caches of the account and the list are dropped."""
        connection, remote_id = self.resolve(principal, account_id)
        _, adapter = self._provider(principal, connection)
        try:
            with adapter_boundary(connection, "sale_account"):
                account = await adapter.update_sale_account(remote_id, draft)
        except UpstreamNotFoundError as err:
            raise NotFoundError(f"no sale account {account_id!r}") from err
        finally:
            await self._invalidate(connection, remote_id)
        await self._noted(connection, remote_id, account)
        return account

    async def delete(self, principal: Principal, account_id: str) -> None:
        """Delete (the upstream may only schedule it); caches dropped."""
        connection, remote_id = self.resolve(principal, account_id)
        _, adapter = self._provider(principal, connection)
        try:
            with adapter_boundary(connection, "sale_account"):
                await adapter.delete_sale_account(remote_id)
        except UpstreamNotFoundError as err:
            raise NotFoundError(f"no sale account {account_id!r}") from err
        finally:
            await self._invalidate(connection, remote_id)
        await self._noted(connection, remote_id, None)

    async def create(
        self,
        principal: Principal,
        connection: str,
        draft: SaleAccountDraft,
        idempotency_key: str | None,
    ) -> WriteResult:
        """Create once per key; see the module docstring for every case."""
        _, adapter = self._provider(principal, connection)
        if idempotency_key is None:
            return await self._create(connection, adapter, draft)
        key = f"{principal.name}:{connection}:{idempotency_key}"
        fingerprint = hashlib.sha256(
            jsoncodec.dumps({"c": connection, "d": draft.fingerprint_source()})
        ).hexdigest()
        return await self._keyed.run(
            key,
            fingerprint,
            connection,
            lambda started_at: self._find_or_create(
                connection, adapter, draft, started_at
            ),
        )

    async def _find_or_create(
        self,
        connection: str,
        adapter: SaleAccountProvider,
        draft: SaleAccountDraft,
        started_at: float | None,
    ) -> WriteResult:
        """Look first when an earlier attempt's outcome is unknown, then create."""
        if started_at is not None:
            found = await adapter.find_created(
                draft, datetime.fromtimestamp(started_at - LOOKBACK_S, UTC)
            )
            if found is not None:
                await self._invalidate(connection, found.remote_id)
                await self._noted(connection, found.remote_id, found)
                return WriteResult(201, jsoncodec.dumps(found.to_dict()))
        return await self._create(connection, adapter, draft)

    async def close(self) -> None:
        """Stop background work (the keyed writes' backlog)."""
        await self._keyed.close()

    async def _create(
        self, connection: str, adapter: SaleAccountProvider, draft: SaleAccountDraft
    ) -> WriteResult:
        account = await adapter.create_sale_account(draft)
        await self._invalidate(connection, account.remote_id)
        await self._noted(connection, account.remote_id, account)
        return WriteResult(201, jsoncodec.dumps(account.to_dict()))

    async def _noted(
        self, connection: str, remote_id: str, account: SaleAccount | None
    ) -> None:
        record = None if account is None else account.to_dict()
        await self._journal.note(connection, remote_id, Note(self._clock(), record))

    async def _invalidate(self, connection: str, remote_id: str) -> None:
        await self._loader.invalidate(f"{connection}:sale_accounts")
        await self._loader.invalidate(f"{connection}:sale_account:{remote_id}")

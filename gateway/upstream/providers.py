"""The adapter contract: what the core asks of a provider and what it hands one.

An adapter is any object satisfying `InvoiceProvider` (adapters do not inherit). The
core builds a `ProviderContext` per connection (its settings, the shared upstream
funnel, the token provider, a clock) and calls the adapter's factory with it. Nothing
vendor-specific belongs here.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol, runtime_checkable

import structlog
from aiohttp import web

from gateway.config.settings import ConnectionSettings
from gateway.errors import GatewayError, UpstreamProtocolError
from gateway.invoices.accounts import SaleAccount, SaleAccountDraft
from gateway.invoices.models import Invoice, InvoiceStatus
from gateway.state.tokens import TokenProvider, TokenStore
from gateway.telemetry.logs import where_it_failed
from gateway.upstream.http import UpstreamClient
from gateway.upstream.httpstream import UpstreamStream

_log = structlog.get_logger("adapter")
# What a cached result holds, for the adapter's `cache_ttl`: a list page or one invoice.
CacheKind = Literal["invoices", "invoice"]


@dataclass(frozen=True, slots=True)
class InvoiceQuery:
    """Normalised filters of one list request, as each source sees them.

    `customer_document` is digits only. `contract_id` is the customer's service or
    contract id at the upstream (an ISP's service line, say). The period bounds select
    invoices whose billing period overlaps `[period_from, period_to]`. Provider and connection
    selection, sorting and paging are the core's business and are not in here.
    """

    customer_document: str | None = None
    customer_id: str | None = None
    contract_id: str | None = None
    statuses: frozenset[InvoiceStatus] = frozenset()
    due_from: date | None = None
    due_to: date | None = None
    period_from: date | None = None
    period_to: date | None = None

    def cache_key(self) -> str:
        """A stable string of the filters, for cache keys and cursor fingerprints."""
        statuses = ",".join(sorted(s.value for s in self.statuses))
        return "|".join(
            [
                f"doc={self.customer_document or ''}",
                f"cid={self.customer_id or ''}",
                f"ctr={self.contract_id or ''}",
                f"st={statuses}",
                f"df={self.due_from or ''}",
                f"dt={self.due_to or ''}",
                f"pf={self.period_from or ''}",
                f"pt={self.period_to or ''}",
            ]
        )


@dataclass(frozen=True, slots=True)
class SourceResult:
    """What one connection returned for a query.

    `complete` is False when the adapter knows rows exist that it could not fetch; `note`
    then says why (shown to the caller in `sources[].error`).
    """

    invoices: tuple[Invoice, ...]
    complete: bool = True
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderContext:
    """Everything an adapter gets from the core for one connection."""

    settings: ConnectionSettings
    http: UpstreamClient
    tokens: TokenProvider
    now: Callable[[], datetime]
    log: structlog.typing.FilteringBoundLogger = field(
        default_factory=lambda: structlog.get_logger("adapter")
    )

    def http_for(self, base_url: str) -> UpstreamClient:
        """A funnel to another host of the same upstream (an identity server, say)."""
        return dataclasses.replace(
            self.http, base_url=base_url.rstrip("/"), health=self.http.health
        )

    def today(self) -> date:
        """Today's date in the connection's time zone (decides 'overdue')."""
        return self.now().astimezone(self.settings.timezone).date()


@dataclass(frozen=True, slots=True)
class Document:
    """A file about an invoice (PDF slip, summary), streamed from the upstream."""

    content_type: str
    length: int | None
    chunks: AsyncIterator[bytes]

    @classmethod
    def streamed(cls, body: UpstreamStream, default_type: str) -> Document:
        """The upstream's streamed body; `default_type` when it names no media type."""
        return cls(
            content_type=body.content_type or default_type,
            length=body.content_length,
            chunks=body.chunks(),
        )


class InvoiceProvider(Protocol):
    """What every adapter implements."""

    def unsupported(self, query: InvoiceQuery) -> str | None:
        """Say why this source cannot answer the query (it is then `skipped`), or None."""
        ...

    async def list_invoices(self, query: InvoiceQuery) -> SourceResult:
        """Every invoice matching the query, unsorted; never silently truncated."""
        ...

    async def get_invoice(self, remote_id: str) -> Invoice:
        """One invoice by remote id; raises `NotFoundError` if it does not exist."""
        ...

    def open_document(self, remote_id: str) -> AbstractAsyncContextManager[Document]:
        """The invoice's document, streamed; `NotFoundError` when it has none."""
        ...

    def cache_ttl(
        self, kind: CacheKind, result: SourceResult
    ) -> tuple[float, float] | None:
        """(fresh_s, stale_s) for this kind of data (a list or one invoice), or None.

        None keeps the connection's configured lifetimes. Lets data that cannot change
        (a paid invoice, an issued reseller bill) stay cached far longer than open ones.
        """
        ...


AdapterFactory = Callable[[ProviderContext], InvoiceProvider]


@dataclass(frozen=True, slots=True)
class ConnectionKeys:
    """The `[secrets]` and `[options]` names a provider reads, declared by its adapter.

    The configuration refuses any other name (with the nearest known one), so a misspelt
    option is an error instead of a silently applied default. An adapter that reads a new
    option declares it here.
    """

    secrets: frozenset[str]
    options: frozenset[str] = frozenset()


@contextlib.contextmanager
def adapter_boundary(connection: str, what: str) -> Iterator[None]:
    """Turn an adapter's unexpected exception into an `UpstreamProtocolError` (a 502).

    Adapters are meant to raise only `GatewayError`s; a bug or an upstream shape nobody
    foresaw must still cost one source or one item, never the request: it is logged once
    (type only, no payload) and answered as that connection's fault. Timeouts pass
    through unchanged so deadlines keep their meaning.
    """
    try:
        yield
    except (GatewayError, TimeoutError):
        raise
    except Exception as err:
        _log.error(
            "adapter_failed", connection=connection, what=what, **where_it_failed(err)
        )
        raise UpstreamProtocolError(
            connection, "GET", what, "internal error in this source's adapter"
        ) from err


@dataclass(frozen=True, slots=True)
class DemoUpstream:
    """A provider's simulator packaged for `invoice-gateway demo`.

    `secrets` maps the connection's secret names to the simulator's demo values; the demo
    puts them in environment variables, exactly as a real deployment would.
    """

    provider: str
    connection_id: str
    app: web.Application
    secrets: dict[str, str]
    examples: list[tuple[str, str]]
    # Option values may hold "{base_url}", filled in once the simulator has a port.
    options: dict[str, object] = field(default_factory=dict)
    currency: str | None = None
    # The connection's rate limit as (requests, window in seconds), like the upstream's.
    rate_limit: tuple[int, float] | None = None
    # The simulator's fault switch (name, value, times, *, path=..., ratio=...).
    set_fault: Callable[..., None] | None = None
    # A POST path on the simulator that marks one unpaid invoice paid (event demos).
    mark_paid_path: str | None = None


DemoBuilder = Callable[[], DemoUpstream]
"""A provider's simulator packaged for the demo (`simulator.demo_upstream`)."""


class Authorizer(Protocol):
    """A provider's one-time interactive consent (`invoice-gateway auth`)."""

    async def __call__(
        self,
        ctx: ProviderContext,
        store: TokenStore,
        say: Callable[[str], None],
        timeout_s: float = ...,
    ) -> None:
        """Run the consent for `ctx`'s connection and save the tokens in `store`."""
        ...


@runtime_checkable
class SaleAccountProvider(Protocol):
    """What an adapter implements when its upstream keeps sale accounts (read and write)."""

    async def list_sale_accounts(self) -> list[SaleAccount]:
        """Every sale account of the connection."""
        ...

    async def get_sale_account(self, remote_id: str) -> SaleAccount:
        """One account; `NotFoundError` if absent."""
        ...

    async def create_sale_account(self, draft: SaleAccountDraft) -> SaleAccount:
        """Create (never retried blindly); `UpstreamValidationError` for refused fields."""
        ...

    async def update_sale_account(
        self, remote_id: str, draft: SaleAccountDraft
    ) -> SaleAccount:
        """Change the given fields and return the account as it now is."""
        ...

    async def delete_sale_account(self, remote_id: str) -> None:
        """Delete (or schedule the deletion of) an account."""
        ...

    async def find_created(
        self, draft: SaleAccountDraft, created_after: datetime
    ) -> SaleAccount | None:
        """An account matching `draft` created after the instant, if one exists.

        Used when a create's outcome was unknown: the retry looks before creating again.
        """
        ...

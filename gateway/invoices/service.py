"""Invoice fan-out: ask every eligible connection at once, merge, sort, page.

Each connection's answer goes through the cache (keyed by connection + filters, never by
caller) and becomes a `SourceOutcome`; one source's failure never cancels the others.
The merged list is sorted by the requested key with the canonical id as tie-breaker, and
paged with a signed keyset cursor, so paging to the end yields every item exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import structlog

from gateway.errors import (
    FieldError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    NotYoursError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamProtocolError,
    UpstreamTimeoutError,
)
from gateway.invoices.cursor import CursorCodec, Position, fingerprint
from gateway.invoices.listing import (
    Connection,
    ListRequest,
    ListResult,
    SourceError,
    SourceOutcome,
    SourceStatus,
    encoded,
    list_key,
    result_of,
    sort_key,
)
from gateway.invoices.models import Invoice
from gateway.invoices.pages import PageCache
from gateway.invoices.principal import Principal
from gateway.state.cache import CachedLoader, Loaded, Lookup
from gateway.telemetry.logs import where_it_failed
from gateway.upstream.deadline import deadline_in, time_left
from gateway.upstream.providers import (
    Document,
    InvoiceQuery,
    SourceResult,
    adapter_boundary,
)

log = structlog.get_logger("service")
PDF_MAGIC = b"%PDF-"


class InvoiceService:
    """Answers invoice queries across connections."""

    DECODED_MEMO = 512
    # Decoded models cost several times their JSON: bound the memo by the JSON's size too.
    DECODED_MEMO_BYTES = 16 * 1024 * 1024

    def __init__(
        self,
        connections: Mapping[str, Connection],
        loader: CachedLoader,
        cursors: CursorCodec,
        *,
        deadline_s: float,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Wire the connections, the cache and the cursor signer."""
        self.connections = connections
        self._loader = loader
        self._cursors = cursors
        self._deadline_s = deadline_s
        self._now = now
        # Decoded results by (cache key, fetched_at): a cache hit skips JSON + model
        # decoding as long as the entry is the one already decoded here.
        self._memo: OrderedDict[tuple[str, float], tuple[SourceResult, int]] = (
            OrderedDict()
        )
        self._memo_bytes = 0
        self.pages = PageCache(loader)

    def today_of(self, connection: str) -> date:
        """Today in a connection's time zone (what 'overdue' is measured against)."""
        return (
            self._now()
            .astimezone(self.connections[connection].settings.timezone)
            .date()
        )

    def eligible(self, principal: Principal, request: ListRequest) -> list[Connection]:
        """Connections this caller may read that the request selects."""
        return [
            conn
            for conn in self.connections.values()
            if principal.may_use(conn.id)
            and (
                request.providers is None or conn.settings.provider in request.providers
            )
            and (request.connections is None or conn.id in request.connections)
        ]

    def bound(self, principal: Principal, request: ListRequest) -> ListRequest:
        """The request as this caller may make it: an end user's customer filter forced.

        An end user names at most its own documents; with one document the filter is
        put in for it, with several it must choose one.
        """
        if principal.documents is None:
            return request
        asked = request.query.customer_document
        if asked is None:
            if len(principal.documents) != 1:
                raise InvalidRequestError(
                    [
                        FieldError(
                            "customer_document",
                            "required: your token names several customers",
                        )
                    ]
                )
            (asked,) = principal.documents
        elif asked not in principal.documents:
            raise ForbiddenError("customer_document is not a customer of this token")
        query = dataclasses.replace(request.query, customer_document=asked)
        return dataclasses.replace(request, query=query)

    async def gather(
        self, principal: Principal, request: ListRequest
    ) -> tuple[list[Invoice], list[SourceOutcome]]:
        """Every matching invoice from every eligible source, merged and sorted."""
        request = self.bound(principal, request)
        query = request.query
        conns = self.eligible(principal, request)
        fetched = await asyncio.gather(*(self._fetch(c, query, request) for c in conns))
        merged = _merge(
            [inv for _, invs in fetched for inv in invs], query, request.sort
        )
        if principal.customer_bound:
            # The adapters and `_merge` already keep to the asked document; an end
            # user additionally never sees a row whose owner is not proven to be theirs.
            merged = [inv for inv in merged if principal.owns(inv.customer.document)]
        matching = Counter(inv.connection for inv in merged)
        # `count`: the source's invoices that match the whole query (over all pages).
        sources = [
            dataclasses.replace(outcome, count=matching[outcome.connection])
            for outcome, _ in fetched
        ]
        return merged, sources

    async def list(self, principal: Principal, request: ListRequest) -> ListResult:
        """One page of the merged, sorted invoice list with per-source outcomes."""
        request = self.bound(principal, request)
        query = request.query
        merged, sources = await self.gather(principal, request)
        fp = fingerprint(
            "|".join(
                [
                    query.cache_key(),
                    request.sort,
                    ",".join(sorted(s.connection for s in sources)),
                ]
            )
        )
        start = 0
        if request.cursor:
            pos = self._cursors.decode(request.cursor, fp)
            keys = [sort_key(inv, request.sort) for inv in merged]
            flag, group, value = pos.key
            start = bisect_right(keys, (flag, group, Decimal(value), pos.id))
        page = merged[start : start + request.limit]
        next_cursor = None
        if start + request.limit < len(merged):
            flag, group, value, ident = sort_key(page[-1], request.sort)
            next_cursor = self._cursors.encode(
                Position([flag, group, str(value)], ident), fp
            )
        return ListResult(page, next_cursor, sources)

    def _resolve(self, principal: Principal, invoice_id: str) -> tuple[Connection, str]:
        provider, _, rest = invoice_id.partition(":")
        conn_id, _, remote_id = rest.partition(":")
        conn = self.connections.get(conn_id)
        if (
            conn is None
            or not remote_id
            or conn.settings.provider != provider
            or not principal.may_use(conn_id)
        ):
            raise NotFoundError(f"no invoice {invoice_id!r}")
        return conn, remote_id

    @contextlib.asynccontextmanager
    async def open_document(
        self, principal: Principal, invoice_id: str
    ) -> AsyncIterator[Document]:
        """The invoice's PDF, streamed from its upstream (never cached).

        Whatever type the upstream claims (Xarios says `application/octet-stream`), the
        bytes decide: a PDF is served as `application/pdf`, anything else is a 502.
        """
        conn, remote_id = self._resolve(principal, invoice_id)
        if principal.customer_bound:
            # Whose document it is, is decided by the mapped invoice, never by the id.
            await self.get(principal, invoice_id)
        async with contextlib.AsyncExitStack() as stack:
            with adapter_boundary(conn.id, "document"):
                doc = await stack.enter_async_context(
                    conn.adapter.open_document(remote_id)
                )
                head = b""
                async for chunk in doc.chunks:
                    head += chunk
                    if len(head) >= len(PDF_MAGIC):
                        break
            if not head.startswith(PDF_MAGIC):
                raise UpstreamProtocolError(
                    conn.id, "GET", "document", "the upstream's document is not a PDF"
                )
            yield Document("application/pdf", doc.length, _after(head, doc.chunks))

    async def get(
        self,
        principal: Principal,
        invoice_id: str,
        *,
        force: bool = False,
        deadline_s: float | None = None,
    ) -> Invoice:
        """One invoice by canonical id; 404 for unknown, invisible or absent ones."""
        conn, remote_id = self._resolve(principal, invoice_id)
        key = f"{conn.id}:invoice:{remote_id}"
        deadline = self._deadline(deadline_s)
        try:
            async with asyncio.timeout(deadline):
                with deadline_in(deadline):
                    _, result = await self._load(
                        conn,
                        key,
                        lambda: self._encoded_one(conn, remote_id),
                        force=force,
                    )
        except UpstreamNotFoundError as err:
            raise NotFoundError(f"no invoice {invoice_id!r}") from err
        except TimeoutError as err:
            stale = await self._loader.peek(key)
            if stale is None:
                raise UpstreamTimeoutError(
                    conn.id,
                    "GET",
                    "invoice",
                    f"no answer within the {deadline:g}s deadline",
                ) from err
            result = self._decoded(key, stale)
        invoice = result.invoices[0]
        if not principal.owns(invoice.customer.document):
            raise NotYoursError(f"no invoice {invoice_id!r}")
        return invoice

    def _deadline(self, asked: float | None) -> float:
        """Seconds left: the configured deadline, the caller's, the request's (if set)."""
        left = time_left()
        return min(
            self._deadline_s,
            asked or self._deadline_s,
            self._deadline_s if left is None else max(0.0, left),
        )

    async def _encoded_one(self, conn: Connection, remote_id: str) -> Loaded:
        with adapter_boundary(conn.id, "invoice"):
            result = SourceResult((await conn.adapter.get_invoice(remote_id),))
        return encoded(result, conn.adapter.cache_ttl("invoice", result))

    async def _encoded_list(self, conn: Connection, query: InvoiceQuery) -> Loaded:
        result = await conn.adapter.list_invoices(query)
        return encoded(result, conn.adapter.cache_ttl("invoices", result))

    async def _load(
        self, conn: Connection, key: str, loader: Callable[[], Any], *, force: bool
    ) -> tuple[Lookup, SourceResult]:
        lookup = await self._loader.load(
            key,
            loader,
            fresh_s=conn.settings.cache_fresh_s,
            stale_s=conn.settings.cache_stale_s,
            force=force,
        )
        return lookup, self._decoded(key, lookup)

    def _decoded(self, key: str, lookup: Lookup) -> SourceResult:
        """Decode a cached value once per (key, fetched_at); later hits reuse it.

        A load that just ran hands back the result it encoded: nothing to decode.
        """
        memo_key = (key, lookup.fetched_at)
        held = self._memo.get(memo_key)
        if held is not None:
            self._memo.move_to_end(memo_key)
            return held[0]
        result, size = result_of(lookup), len(lookup.value)
        if size <= self.DECODED_MEMO_BYTES // 4:
            self._memo[memo_key] = (result, size)
            self._memo_bytes += size
        while self._memo and (
            len(self._memo) > self.DECODED_MEMO
            or self._memo_bytes > self.DECODED_MEMO_BYTES
        ):
            self._memo_bytes -= self._memo.popitem(last=False)[1][1]
        return result

    async def _fetch(
        self, conn: Connection, query: InvoiceQuery, request: ListRequest
    ) -> tuple[SourceOutcome, tuple[Invoice, ...]]:
        def base(status: SourceStatus, **extra: Any) -> SourceOutcome:
            return SourceOutcome(conn.id, conn.settings.provider, status, **extra)

        reason = conn.adapter.unsupported(query)
        if reason is not None:
            return base("skipped", note=reason), ()
        key = list_key(conn.id, query)
        deadline = self._deadline(request.deadline_s)
        started = time.monotonic()
        failure: SourceError | None
        try:
            async with asyncio.timeout(deadline):
                with deadline_in(deadline):
                    lookup, result = await self._load(
                        conn,
                        key,
                        lambda: self._encoded_list(conn, query),
                        force=request.force_refresh,
                    )
        except TimeoutError:
            elapsed = (time.monotonic() - started) * 1000
            msg = f"no answer within the {deadline:g}s deadline"
            stale = await self._loader.peek(key)
            late = SourceError("timeout", f"{conn.id}: {msg}")
            if stale is None:
                return base("timeout", latency_ms=elapsed, error=late), ()
            lookup, result = stale, self._decoded(key, stale)
            lookup = dataclasses.replace(lookup, error=None, stale=True)
            failure = late
        except UpstreamError as err:
            elapsed = (time.monotonic() - started) * 1000
            status: SourceStatus = "timeout" if err.error_type == "timeout" else "error"
            return base(status, latency_ms=elapsed, error=SourceError.of(err)), ()
        except Exception as err:  # noqa: BLE001 - one source's bug is that source's error
            log.error(  # noqa: TRY400 - a traceback could quote a secret
                "adapter_failed", connection=conn.id, **where_it_failed(err)
            )
            elapsed = (time.monotonic() - started) * 1000
            broken = SourceError(
                "protocol", f"{conn.id}: internal error in this source's adapter"
            )
            return base("error", latency_ms=elapsed, error=broken), ()
        else:
            failure = None if lookup.error is None else SourceError.of(lookup.error)
        elapsed = 0.0 if lookup.from_cache else (time.monotonic() - started) * 1000
        outcome = base(
            "stale" if lookup.stale else "ok",
            from_cache=lookup.from_cache,
            fetched_at=lookup.fetched_at,
            latency_ms=elapsed,
            count=len(result.invoices),
            error=failure,
            complete=result.complete,
            note=result.note,
            key=key,
            fresh_until=lookup.fresh_until,
        )
        return outcome, result.invoices


async def _after(head: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The bytes already read, then the rest of the stream."""
    yield head
    async for chunk in rest:
        yield chunk


def _merge(invoices: list[Invoice], query: InvoiceQuery, sort: str) -> list[Invoice]:
    """Apply the filters every source must honour, drop duplicates, sort."""
    unique: dict[str, Invoice] = {}
    for inv in invoices:
        if not _owned(inv, query):
            # Adapters already drop other people's rows; this is the last line.
            log.error("foreign_invoice_dropped", connection=inv.connection)
            continue
        if query.statuses and inv.status not in query.statuses:
            continue
        if query.due_from and (inv.due_date is None or inv.due_date < query.due_from):
            continue
        if query.due_to and (inv.due_date is None or inv.due_date > query.due_to):
            continue
        if not _period_overlaps(inv, query):
            continue
        unique.setdefault(inv.id, inv)
    return sorted(unique.values(), key=lambda inv: sort_key(inv, sort))


def _owned(invoice: Invoice, query: InvoiceQuery) -> bool:
    """The invoice does not name a customer other than the one asked for."""
    customer = invoice.customer
    return not (
        (
            query.customer_document
            and customer.document not in (None, query.customer_document)
        )
        or (query.customer_id and customer.remote_id not in (None, query.customer_id))
    )


def _period_overlaps(invoice: Invoice, query: InvoiceQuery) -> bool:
    if query.period_from is None and query.period_to is None:
        return True
    period = invoice.billing_period
    if period is None:
        return False
    if query.period_from and period.end < query.period_from:
        return False
    return not (query.period_to and period.start > query.period_to)

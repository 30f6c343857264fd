"""Hubsoft adapter: the `InvoiceProvider` over `HubsoftClient` + `mapping`.

A customer's invoices come from `/cliente/financeiro`, which returns at most 50 rows and
has no paging. So the adapter pages by due date itself: rows come oldest first, and each
next call starts at the last due date seen (rows of that day come again and are dropped
by id). Only when 50 invoices fall due on one single day can it not go on; the source is
then marked incomplete instead of being truncated silently. Without a customer, the
tenant-wide `/financeiro/fatura` is paged over due-date windows of at most 30 days.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from typing import cast

from adapters.hubsoft.client import ROW_CAP, HubsoftClient, HubsoftCredentials
from adapters.hubsoft.mapping import owned_by, parse_date, to_invoice
from adapters.hubsoft.payloads import InvoiceRow
from gateway.errors import NotFoundError
from gateway.invoices.models import Customer, Invoice, InvoiceStatus
from gateway.upstream.kit.checks import match_remote_id, missing_secrets, raise_problems
from gateway.upstream.kit.parse import MappingError
from gateway.upstream.kit.rows import map_one, map_rows, settled_ttl
from gateway.upstream.origin import Link
from gateway.upstream.paging import PageWalk
from gateway.upstream.providers import (
    AdapterFactory,
    ConnectionKeys,
    Document,
    InvoiceQuery,
    ProviderContext,
    SourceResult,
)

REQUIRED_SECRETS = ("client_id", "client_secret", "username", "password")
KEYS = ConnectionKeys(secrets=frozenset(REQUIRED_SECRETS))
MAX_CUSTOMER_PAGES = 40
TENANT_WINDOW_DAYS = 30
MAX_TENANT_SPAN_DAYS = 366
PENDING = frozenset({InvoiceStatus.OPEN, InvoiceStatus.OVERDUE})
REMOTE_ID_RE = re.compile(r"(doc|svc)?([0-9]{1,20})-([0-9]{1,20})")


class HubsoftAdapter:
    """Invoices of one Hubsoft tenant."""

    def __init__(self, ctx: ProviderContext, client: HubsoftClient) -> None:
        """Compose the context (clock, settings) and the client."""
        self._ctx = ctx
        self._client = client
        self._currency = ctx.settings.currency or "BRL"

    def unsupported(self, query: InvoiceQuery) -> str | None:
        """Hubsoft lists per customer, or tenant-wide over a bounded due-date window."""
        if query.period_from or query.period_to:
            return "Hubsoft invoices carry no billing period"
        if _scope(query) is not None:
            return None
        if query.due_from is None or query.due_to is None:
            return "needs a customer filter, or both due_from and due_to"
        if (query.due_to - query.due_from).days > MAX_TENANT_SPAN_DAYS:
            return (
                f"a tenant-wide due window may span at most {MAX_TENANT_SPAN_DAYS} days"
            )
        return None

    async def list_invoices(self, query: InvoiceQuery) -> SourceResult:
        """Every matching invoice, paging around the 50-row cap."""
        pending_only = bool(query.statuses) and query.statuses <= PENDING
        scope = _scope(query)
        if scope is None:
            assert query.due_from is not None  # noqa: S101 - guaranteed by unsupported()
            assert query.due_to is not None  # noqa: S101
            rows, note = await self._tenant_rows(
                query.due_from, query.due_to, pending_only
            )
            return self._map(rows, ("", ""), Customer(), note)
        rows, note = await self._customer_rows(
            scope, pending_only=pending_only, start=query.due_from, end=query.due_to
        )
        searched = Customer(
            remote_id=query.customer_id, document=query.customer_document, name=None
        )
        return self._map(
            rows,
            scope,
            searched,
            note,
            belongs=lambda row: owned_by(
                row,
                document=query.customer_document,
                code=query.customer_id,
                service=query.contract_id,
            ),
        )

    def cache_ttl(self, kind: str, result: SourceResult) -> tuple[float, float] | None:
        """Paid invoices rarely change: keep one such invoice long; lists as configured."""
        return settled_ttl(kind, result)

    async def get_invoice(self, remote_id: str) -> Invoice:
        """Find one invoice among its customer's (the id carries the customer)."""
        match = match_remote_id(REMOTE_ID_RE, remote_id, "Hubsoft invoice")
        prefix, termo, invoice_id = match.groups()
        busca = {"doc": "cpf_cnpj", "svc": "id_cliente_servico"}.get(
            prefix or "", "codigo_cliente"
        )
        searched = Customer(
            remote_id=None if prefix else termo,
            document=termo if prefix == "doc" else None,
        )
        rows, _ = await self._customer_rows((busca, termo), pending_only=False)
        asked = {"cpf_cnpj": "document", "codigo_cliente": "code"}.get(busca, "service")
        for row in rows:
            record = cast("InvoiceRow", row) if isinstance(row, dict) else None
            if (
                record is not None
                and str(record.get("id_fatura")) == invoice_id
                and owned_by(record, **{asked: termo})
            ):
                return map_one(
                    record,
                    self._mapper((busca, termo), searched),
                    self._ctx,
                    "/api/v1/integracao/cliente/financeiro",
                )
        raise NotFoundError(f"no Hubsoft invoice {remote_id!r}")

    @contextlib.asynccontextmanager
    async def open_document(self, remote_id: str) -> AsyncIterator[Document]:
        """The invoice's PDF from its `link` (the funnel decides whether it may be fetched).

        The link is upstream data: on the connection's origin it is fetched as usual, on a
        listed document origin without credentials, anywhere else not at all.
        """
        invoice = await self.get_invoice(remote_id)
        url = (
            invoice.payment.boleto.url
            if invoice.payment and invoice.payment.boleto
            else None
        )
        if not url:
            raise NotFoundError(f"Hubsoft invoice {remote_id!r} has no boleto document")
        async with self._ctx.http.stream(
            "GET", Link(url), label="/pdf/fatura/{token}"
        ) as body:
            yield Document.streamed(body, "application/pdf")

    async def _customer_rows(
        self,
        scope: tuple[str, str],
        *,
        pending_only: bool,
        start: date | None = None,
        end: date | None = None,
    ) -> tuple[list[object], str | None]:
        """Seek through the customer's invoices by due date, 50 rows at a time."""
        by_id: dict[str, object] = {}
        for _ in range(MAX_CUSTOMER_PAGES):
            rows = await self._client.customer_invoices(
                *scope, pending_only=pending_only, start=start, end=end
            )
            for row in rows:
                by_id.setdefault(
                    str(row.get("id_fatura")) if isinstance(row, dict) else repr(row),
                    row,
                )
            if len(rows) < ROW_CAP:
                return list(by_id.values()), None
            last_due = _last_due(rows)
            if last_due is None or (start is not None and last_due <= start):
                day = last_due.isoformat() if last_due else "one day"
                return list(by_id.values()), (
                    f"over {ROW_CAP} invoices fall due on {day}; Hubsoft cannot page further"
                )
            start = last_due
        return list(by_id.values()), f"stopped after {MAX_CUSTOMER_PAGES} pages"

    async def _tenant_rows(
        self, start: date, end: date, pending_only: bool
    ) -> tuple[list[object], str | None]:
        """Tenant-wide rows, window by window, page by page (bounded: `PageWalk`)."""
        rows: list[object] = []
        walk = PageWalk(self._ctx.settings.max_pages)
        window_start = start
        while window_start <= end and not walk.stopped:
            window_end = min(end, window_start + timedelta(days=TENANT_WINDOW_DAYS - 1))
            page, last = 0, 0
            while page <= last and walk.visit(f"{window_start}:{page}"):
                result = await self._client.tenant_invoices(
                    page, window_start, window_end, pending_only=pending_only
                )
                fresh = walk.fresh(result.rows)
                rows.extend(fresh)
                if result.rows and not fresh:
                    break  # a page of rows already read: the walk has stopped
                page, last = page + 1, result.last_page
            window_start = window_end + timedelta(days=1)
        return rows, walk.stopped

    def _map(
        self,
        rows: list[object],
        scope: tuple[str, str],
        searched: Customer,
        note: str | None,
        belongs: Callable[[InvoiceRow], bool] | None = None,
    ) -> SourceResult:
        return map_rows(
            rows, self._mapper(scope, searched), self._ctx, note, belongs=belongs
        )

    def _mapper(
        self, scope: tuple[str, str], searched: Customer
    ) -> Callable[[InvoiceRow], Invoice]:
        today = self._ctx.today()

        def one(row: InvoiceRow) -> Invoice:
            return to_invoice(
                row,
                connection=self._ctx.settings.id,
                today=today,
                searched=searched,
                scope=scope,
                currency=self._currency,
            )

        return one


def _scope(query: InvoiceQuery) -> tuple[str, str] | None:
    """Which `busca` to use: customer code, then service, then document."""
    if query.customer_id:
        return "codigo_cliente", query.customer_id
    if query.contract_id:
        return "id_cliente_servico", query.contract_id
    if query.customer_document:
        return "cpf_cnpj", query.customer_document
    return None


def _last_due(rows: list[object]) -> date | None:
    dues = []
    for row in rows:
        try:
            due = (
                parse_date(row.get("data_vencimento"), "data_vencimento")
                if isinstance(row, dict)
                else None
            )
        except MappingError:
            due = None
        if due is not None:
            dues.append(due)
    return max(dues, default=None)


def create(ctx: ProviderContext) -> HubsoftAdapter:
    """Factory named in the registry; refuses a connection missing a credential."""
    raise_problems(missing_secrets(ctx.settings, "hubsoft", REQUIRED_SECRETS))
    secrets = ctx.settings.secrets
    credentials = HubsoftCredentials(
        client_id=secrets["client_id"].reveal(),
        client_secret=secrets["client_secret"],
        username=secrets["username"].reveal(),
        password=secrets["password"],
    )
    return HubsoftAdapter(ctx, HubsoftClient(ctx.http, ctx.tokens, credentials))


_conforms: AdapterFactory = create  # mypy proves the factory has the core's type

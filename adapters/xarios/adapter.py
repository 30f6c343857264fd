"""Xarios adapter: the `InvoiceProvider` over `XariosClient` + `mapping`.

The billing API has no filters: the adapter reads the account's whole list and filters it
here. Xarios knows tenants, not people, so a customer document can only be answered when the
connection maps documents to tenant ids (`options.document_tenants`); due dates, statuses
other than `unknown` and contracts are unanswerable and the source is `skipped`. One invoice
(`get_invoice`) is enriched with its detail ZIP's line items; lists are not (one ZIP per
invoice would be one upstream call per row).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

from adapters.xarios.client import XariosClient, XariosCredentials
from adapters.xarios.mapping import parse_detail_zip, to_invoice
from adapters.xarios.payloads import BillingItem, Detail
from gateway.errors import UpstreamProtocolError
from gateway.invoices.models import Invoice, InvoiceStatus
from gateway.upstream.kit.checks import (
    http_url,
    match_remote_id,
    missing_secrets,
    raise_problems,
)
from gateway.upstream.kit.parse import MappingError
from gateway.upstream.kit.rows import map_one, map_rows
from gateway.upstream.providers import (
    AdapterFactory,
    ConnectionKeys,
    Document,
    InvoiceQuery,
    ProviderContext,
    SourceResult,
)

DEFAULT_AUTH_URL = "https://login.xarios.cloud"
# `redirect_uri` is read by the consent command (authorize.py), the others here.
KEYS = ConnectionKeys(
    secrets=frozenset({"client_id", "client_secret", "refresh_token"}),
    options=frozenset({"auth_url", "redirect_uri", "document_tenants"}),
)
REMOTE_ID_RE = re.compile(r"[A-Za-z0-9-]{1,64}")
ISSUED_BILL = (86400.0, 30 * 86400.0)


class XariosAdapter:
    """Invoices of one Xarios reseller account."""

    def __init__(
        self,
        ctx: ProviderContext,
        client: XariosClient,
        document_tenants: dict[str, set[str]],
    ) -> None:
        """Compose context, client and the document -> tenants map."""
        self._ctx = ctx
        self._client = client
        self._tenants_of = document_tenants
        self._document_of = {t: doc for doc, ts in document_tenants.items() for t in ts}

    def unsupported(self, query: InvoiceQuery) -> str | None:
        """Name the filter Xarios cannot answer, if any."""
        if query.due_from or query.due_to:
            return "Xarios invoices have no due date"
        if query.statuses and InvoiceStatus.UNKNOWN not in query.statuses:
            return "Xarios does not report payment status (only `unknown` matches)"
        if query.contract_id:
            return "Xarios has no contracts"
        if query.customer_document and query.customer_document not in self._tenants_of:
            return (
                "Xarios has no customer document; "
                "map documents to tenant ids in options.document_tenants"
            )
        return None

    async def list_invoices(self, query: InvoiceQuery) -> SourceResult:
        """The account's invoices, narrowed to the asked tenant(s) here."""
        rows = await self._client.list_invoices()
        tenants = None
        if query.customer_document:
            tenants = self._tenants_of[query.customer_document]
        if query.customer_id:
            tenants = (tenants or {query.customer_id}) & {query.customer_id}
        if tenants is not None:
            rows = [
                r for r in rows if isinstance(r, dict) and r.get("tenantId") in tenants
            ]
        document = query.customer_document

        def one(raw: BillingItem) -> Invoice:
            return self._map(raw, document=document)

        return map_rows(rows, one, self._ctx)

    def cache_ttl(self, kind: str, result: SourceResult) -> tuple[float, float] | None:
        """An issued reseller bill never changes: one is cached for a day (a month stale).

        Lists keep the connection's lifetimes: they grow when a billing period closes.
        """
        del result
        return ISSUED_BILL if kind == "invoice" else None

    async def get_invoice(self, remote_id: str) -> Invoice:
        """One invoice with its detail lines (the detail ZIP is read alongside)."""
        match_remote_id(REMOTE_ID_RE, remote_id, "Xarios invoice")
        raw, archive = await asyncio.gather(
            self._client.invoice(remote_id), self._client.detail_zip(remote_id)
        )
        try:
            detail = parse_detail_zip(archive)
        except MappingError as err:
            raise UpstreamProtocolError(
                self._ctx.settings.id,
                "GET",
                "/api/v1.0/billingdata/{id}/detail",
                str(err),
            ) from err

        def one(row: BillingItem) -> Invoice:
            return self._map(row, detail)

        return map_one(raw, one, self._ctx, "/api/v1.0/billingdata/{id}")

    @contextlib.asynccontextmanager
    async def open_document(self, remote_id: str) -> AsyncIterator[Document]:
        """The invoice summary PDF, streamed."""
        match_remote_id(REMOTE_ID_RE, remote_id, "Xarios invoice")
        async with self._client.summary(remote_id) as body:
            yield Document.streamed(body, "application/pdf")

    def _map(
        self,
        raw: BillingItem,
        detail: Detail | None = None,
        *,
        document: str | None = None,
    ) -> Invoice:
        """One row; `document` is the one asked for (a tenant may serve several)."""
        return to_invoice(
            raw,
            connection=self._ctx.settings.id,
            currency=self._ctx.settings.currency,
            document=document or self._document_of.get(str(raw.get("tenantId"))),
            detail=detail,
        )


def _document_tenants(raw: Any) -> tuple[dict[str, set[str]], list[str]]:
    """`{"<cpf/cnpj digits>" = "<tenant id>" | ["<tenant id>", ...]}` from the options."""
    if raw is None:
        return {}, []
    if not isinstance(raw, dict):
        return {}, [
            "options.document_tenants: must be a table of document = tenant id(s)"
        ]
    out: dict[str, set[str]] = {}
    problems = []
    for doc, tenants in raw.items():
        ids = [tenants] if isinstance(tenants, str) else tenants
        if not re.fullmatch(r"\d{11}|\d{14}", doc) or not (
            isinstance(ids, list) and ids and all(isinstance(t, str) for t in ids)
        ):
            problems.append(f"options.document_tenants.{doc}: digits -> tenant id(s)")
            continue
        out[doc] = set(ids)
    return out, problems


def create(ctx: ProviderContext) -> XariosAdapter:
    """Factory named in the registry."""
    secrets, options = ctx.settings.secrets, ctx.settings.options
    problems = missing_secrets(ctx.settings, "xarios", ("client_id", "client_secret"))
    tenants, more = _document_tenants(options.get("document_tenants"))
    auth_url, wrong = http_url(ctx.settings, "auth_url", DEFAULT_AUTH_URL)
    raise_problems(problems + more + wrong)
    credentials = XariosCredentials(
        client_id=secrets["client_id"].reveal(),
        client_secret=secrets["client_secret"],
        initial_refresh=secrets.get("refresh_token"),
    )
    client = XariosClient(ctx.http, ctx.http_for(auth_url), ctx.tokens, credentials)
    return XariosAdapter(ctx, client, tenants)


_conforms: AdapterFactory = create  # mypy proves the factory has the core's type

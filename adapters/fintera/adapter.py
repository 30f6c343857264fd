"""Fintera adapter: receivable accounts as invoices, sale accounts read and write.

Receivables live under entities (`options.entity_ids`, else every entity the token sees).
A customer document is first found among `/people` (Fintera keeps it formatted), then
receivables are asked for by `person_id`; due-date bounds go upstream as Fintera's
`search[due_date_gte|lte]` (dd/mm/yyyy). Without a customer, a due window is required.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, datetime

from adapters.fintera import mapping
from adapters.fintera.client import FinteraClient
from adapters.fintera.payloads import Person, Receivable
from gateway.errors import NotFoundError, UpstreamNotFoundError, UpstreamProtocolError
from gateway.invoices.accounts import SaleAccount, SaleAccountDraft
from gateway.invoices.models import Invoice, JSONDict
from gateway.upstream.kit.checks import match_remote_id, missing_secrets, raise_problems
from gateway.upstream.kit.parse import MappingError, required_text
from gateway.upstream.kit.rows import map_one, map_rows, settled_ttl
from gateway.upstream.providers import (
    AdapterFactory,
    ConnectionKeys,
    Document,
    InvoiceQuery,
    ProviderContext,
    SourceResult,
)

REMOTE_ID_RE = re.compile(r"([0-9]{1,18})-([0-9]{1,18})")
SALE_ID_RE = re.compile(r"[0-9]{1,18}")
PERSON_ID_RE = SALE_ID_RE
MAX_TENANT_SPAN_DAYS = 366
KEYS = ConnectionKeys(
    secrets=frozenset({"api_token"}), options=frozenset({"account_id", "entity_ids"})
)


class FinteraAdapter:
    """Receivables and sale accounts of one Fintera account."""

    def __init__(
        self, ctx: ProviderContext, client: FinteraClient, entities: list[int]
    ) -> None:
        """Compose context, client and the configured entities (empty: discover)."""
        self._ctx = ctx
        self._client = client
        self._entities = entities

    def unsupported(self, query: InvoiceQuery) -> str | None:
        """Fintera lists by person, or entity-wide over a bounded due window."""
        if query.contract_id:
            return "Fintera receivables have no contract id"
        if query.customer_document or query.customer_id:
            return None
        if query.due_from is None or query.due_to is None:
            return "needs a customer filter, or both due_from and due_to"
        if (query.due_to - query.due_from).days > MAX_TENANT_SPAN_DAYS:
            return f"an entity-wide due window may span at most {MAX_TENANT_SPAN_DAYS} days"
        return None

    async def list_invoices(self, query: InvoiceQuery) -> SourceResult:
        """Receivables of the person(s) asked for, in every entity."""
        people: dict[str, Person] = {}
        left_out: str | None = None
        if query.customer_document:
            found = await self._client.get_all(
                "/people",
                {
                    "search[federation_subscription_number_equals]": mapping.format_document(
                        query.customer_document
                    )
                },
            )
            people, others = _people_with(
                query.customer_document, [mapping.person_of(r) for r in found.rows]
            )
            if others:
                # The search is the upstream's filter, never trusted: a person whose
                # record does not state the asked document lends no receivable.
                self._ctx.log.warning(
                    "people_of_others", connection=self._ctx.settings.id, count=others
                )
                left_out = f"{others} person(s) of other customers left out"
            if query.customer_id:
                people = {k: v for k, v in people.items() if k == query.customer_id}
            if not people:
                return SourceResult((), complete=not others, note=left_out)
        search = _due_search(query.due_from, query.due_to)
        person_ids: list[str | None] = list(people) or [query.customer_id]
        pages = await asyncio.gather(
            *(
                self._client.get_all(
                    f"/entities/{entity}/receivable_accounts",
                    {**search, **({"search[person_id_equals]": pid} if pid else {})},
                )
                for entity in await self._entity_ids()
                for pid in person_ids
            )
        )
        rows = [mapping.receivable(r) for page in pages for r in page.rows]
        stopped = next((p.stopped for p in pages if p.stopped), None)
        note = "; ".join(filter(None, (stopped, left_out))) or None
        asked = {pid for pid in person_ids if pid is not None}

        def belongs(raw: Receivable) -> bool:
            return not asked or str(raw.get("person_id")) in asked

        one = self._mapper(lambda raw: people.get(str(raw.get("person_id"))))
        return map_rows(rows, one, self._ctx, note, belongs=belongs)

    def cache_ttl(self, kind: str, result: SourceResult) -> tuple[float, float] | None:
        """Received receivables rarely change: keep one such long; lists as configured."""
        return settled_ttl(kind, result)

    async def get_invoice(self, remote_id: str) -> Invoice:
        """One receivable by `<entity>-<id>`, with its person looked up."""
        match = match_remote_id(REMOTE_ID_RE, remote_id, "Fintera receivable")
        entity, ident = match.groups()
        path = f"/entities/{entity}/receivable_accounts/{ident}"
        wrapped = await self._client.get(path)
        person = None
        person_id = (
            wrapped.get("receivable_account", {}).get("person_id")
            if isinstance(wrapped, dict)
            and isinstance(wrapped.get("receivable_account"), dict)
            else None
        )
        if PERSON_ID_RE.fullmatch(str(person_id)) and not isinstance(person_id, bool):
            with contextlib.suppress(UpstreamNotFoundError, MappingError):
                person = mapping.person_of(
                    await self._client.get(f"/people/{person_id}")
                )
        one = self._mapper(lambda _raw: person)

        def unwrapped(item: JSONDict) -> Invoice:
            return one(mapping.receivable(item))

        return map_one(
            wrapped, unwrapped, self._ctx, "/entities/{id}/receivable_accounts/{id}"
        )

    def _mapper(
        self, person: Callable[[Receivable], Person | None]
    ) -> Callable[[Receivable], Invoice]:
        today, conn = self._ctx.today(), self._ctx.settings

        def one(raw: Receivable) -> Invoice:
            return mapping.to_invoice(
                raw,
                connection=conn.id,
                today=today,
                person=person(raw),
                currency=conn.currency or "BRL",
            )

        return one

    def open_document(self, remote_id: str) -> AbstractAsyncContextManager[Document]:
        """Fintera receivables carry no document."""
        raise NotFoundError(f"Fintera receivable {remote_id!r} has no document")

    # --- sale accounts -------------------------------------------------------------------
    async def list_sale_accounts(self) -> list[SaleAccount]:
        """Every sale account (all pages)."""
        page = await self._client.get_all("/sale_accounts")
        return [self._account(r) for r in page.rows]

    async def get_sale_account(self, remote_id: str) -> SaleAccount:
        """One sale account."""
        raw = await self._client.get(f"/sale_accounts/{_sale_id(remote_id)}")
        return self._account(raw)

    async def create_sale_account(self, draft: SaleAccountDraft) -> SaleAccount:
        """POST once; the 201 body is the account."""
        raw = await self._client.send(
            "POST", "/sale_accounts", mapping.to_upstream(draft)
        )
        return self._account(raw)

    async def update_sale_account(
        self, remote_id: str, draft: SaleAccountDraft
    ) -> SaleAccount:
        """PUT the given fields: the account from the 200 body, else read back.

        Fintera's docs promise an empty 200; recorded exchanges carry the account.
        """
        ident = _sale_id(remote_id)
        answer = await self._client.send(
            "PUT", f"/sale_accounts/{ident}", mapping.to_upstream(draft)
        )
        if isinstance(answer, dict) and isinstance(answer.get("sale_account"), dict):
            return self._account(answer)
        return await self.get_sale_account(ident)

    async def delete_sale_account(self, remote_id: str) -> None:
        """DELETE only schedules the destruction upstream."""
        await self._client.send("DELETE", f"/sale_accounts/{_sale_id(remote_id)}")

    async def find_created(
        self, draft: SaleAccountDraft, created_after: datetime
    ) -> SaleAccount | None:
        """The newest account matching the draft created after the instant."""
        found = [
            a
            for a in await self.list_sale_accounts()
            if mapping.matches(a, draft)
            and a.created_at is not None
            and a.created_at >= created_after
        ]
        return max(found, key=lambda a: a.created_at or created_after, default=None)

    def _account(self, raw: object) -> SaleAccount:
        """One `{"sale_account": {...}}` item; an unreadable one is a protocol error."""
        try:
            return mapping.to_sale_account(raw, connection=self._ctx.settings.id)
        except (ValueError, KeyError, TypeError) as err:
            raise UpstreamProtocolError(
                self._ctx.settings.id,
                "GET",
                "/sale_accounts",
                "unreadable sale account",
            ) from err

    async def _entity_ids(self) -> list[int]:
        if not self._entities:
            page = await self._client.get_all("/entities")
            self._entities = [int(mapping.unwrap(r, "entity")["id"]) for r in page.rows]
        return self._entities


def _people_with(document: str, found: list[Person]) -> tuple[dict[str, Person], int]:
    """The found people (by id) whose record states `document`; how many did not."""
    theirs = [p for p in found if mapping.person_document(p) == document]
    people = {required_text(p.get("id"), "person.id"): p for p in theirs}
    return people, len(found) - len(theirs)


def _sale_id(remote_id: str) -> str:
    return match_remote_id(SALE_ID_RE, remote_id, "Fintera sale account").group()


def _due_search(start: date | None, end: date | None) -> dict[str, str]:
    """Fintera's Ransack filters take dd/mm/yyyy (as its production clients send)."""
    out = {}
    if start:
        out["search[due_date_gte]"] = f"{start:%d/%m/%Y}"
    if end:
        out["search[due_date_lte]"] = f"{end:%d/%m/%Y}"
    return out


def create(ctx: ProviderContext) -> FinteraAdapter:
    """Factory named in the registry."""
    problems = missing_secrets(ctx.settings, "fintera", ("api_token",))
    entities = ctx.settings.options.get("entity_ids", [])
    if not isinstance(entities, list) or not all(
        isinstance(e, int) and e > 0 for e in entities
    ):
        problems.append("options.entity_ids: must be a list of entity ids (integers)")
        entities = []
    account = ctx.settings.options.get("account_id")
    if account is not None and not (
        isinstance(account, int | str) and str(account).isdigit()
    ):
        problems.append("options.account_id: must be the numeric ACCOUNT_ID")
    raise_problems(problems)
    client = FinteraClient(
        ctx.http,
        ctx.settings.secrets["api_token"],
        None if account is None else str(account),
        ctx.settings.max_pages,
    )
    return FinteraAdapter(ctx, client, list(entities))


_conforms: AdapterFactory = create  # mypy proves the factory has the core's type

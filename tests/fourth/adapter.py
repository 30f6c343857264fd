"""The fourth provider's adapter: only its vendor's knowledge, the rest from the core's kit.

Kit grants and bearer auth, a bounded page walk, kit parsers and status rule, and the
core's row path (`map_rows`/`map_one`: a bad row dropped and counted, a bad item a 502).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date
from typing import Any

from gateway.errors import NotFoundError, UpstreamProtocolError
from gateway.invoices.models import Customer, Invoice, InvoiceStatus, settle_amounts
from gateway.upstream import providers as p
from gateway.upstream.kit import checks, parse, rules
from gateway.upstream.kit.bearer import BearerAuth
from gateway.upstream.kit.oauth2 import OAuth2Grants, OAuthClient
from gateway.upstream.kit.rows import map_one, map_rows, settled_ttl
from gateway.upstream.paging import PageWalk

SECRETS = ("client_id", "client_secret", "username", "password")
KEYS = p.ConnectionKeys(secrets=frozenset(SECRETS))
KNOWN = (InvoiceStatus.OPEN, InvoiceStatus.PAID, InvoiceStatus.CANCELLED)
STATUS_MAP = {status.value: status for status in KNOWN}  # the upstream's words are ours
INVOICES = "/api/v2/invoices"
REMOTE_ID = re.compile(r"[A-Z0-9]{1,20}")


def to_invoice(row: dict[str, Any], connection: str, today: date) -> Invoice:
    """One upstream row as a canonical invoice (pure)."""
    due = parse.day(row.get("due"), "due")
    word = parse.text(row.get("state"), "state")
    status = rules.status_word(word, STATUS_MAP, due, today)
    amount = parse.money(row.get("total"), "total")
    paid, owed = settle_amounts(status, amount, None)
    return Invoice(
        provider="fourth",
        connection=connection,
        remote_id=parse.required_text(row.get("id"), "id"),
        status=status,
        remote_status=word,
        customer=Customer(
            parse.text(row.get("customer_id"), "customer_id"),
            parse.digits(row.get("document"), "document"),
            parse.text(row.get("name"), "name"),
        ),
        currency="BRL",
        amount=amount,
        amount_paid=paid,
        amount_due=owed,
        number=parse.text(row.get("number"), "number"),
        due_date=due,
        remote=row,
    )


class FourthAdapter:
    """Invoices of one fourth-provider account."""

    cache_ttl = staticmethod(settled_ttl)  # the shared policy: settled ones kept long

    def __init__(self, ctx: p.ProviderContext) -> None:
        """Password grant and bearer auth; a connection missing a credential is refused."""
        checks.raise_problems(checks.missing_secrets(ctx.settings, "fourth", SECRETS))
        self._ctx = ctx
        secrets = ctx.settings.secrets
        client = OAuthClient(secrets["client_id"].reveal(), secrets["client_secret"])
        grants = OAuth2Grants(ctx.http, "/oauth/token", client)
        user, password = secrets["username"].reveal(), secrets["password"]
        login = lambda _previous: grants.password(user, password)  # noqa: E731
        self._auth = BearerAuth(ctx.tokens, ctx.settings.id, login)

    def unsupported(self, query: p.InvoiceQuery) -> str | None:
        """Lists are per customer document only."""
        return None if query.customer_document else "needs a customer document"

    async def list_invoices(self, query: p.InvoiceQuery) -> p.SourceResult:
        """Every page of the customer's invoices; each row re-checked to be theirs."""
        asked = str(query.customer_document)
        records: list[object] = []
        walk, page = PageWalk(self._ctx.settings.max_pages), 1
        while walk.visit(str(page)):
            body = await self._get(INVOICES, INVOICES, document=asked, page=str(page))
            if not isinstance(found := body.get("invoices"), list):
                raise self._protocol(INVOICES, "invoices is not a list")
            records += walk.fresh(found)
            if not isinstance(following := body.get("next_page"), int):
                break
            page = following
        theirs = lambda row: row.get("document") == asked  # noqa: E731
        return map_rows(
            records, self._mapper(), self._ctx, walk.stopped, belongs=theirs
        )

    async def get_invoice(self, remote_id: str) -> Invoice:
        """One invoice by id; a 404 upstream is `NotFoundError`."""
        checks.match_remote_id(REMOTE_ID, remote_id, "invoice")
        label = INVOICES + "/{id}"
        body = await self._get(f"{INVOICES}/{remote_id}", label)
        return map_one(body.get("invoice"), self._mapper(), self._ctx, label)

    def open_document(self, remote_id: str) -> AbstractAsyncContextManager[p.Document]:
        """This upstream keeps no documents."""
        raise NotFoundError(f"invoice {remote_id!r} has no document")

    def _mapper(self) -> Callable[[dict[str, Any]], Invoice]:
        today, connection = self._ctx.today(), self._ctx.settings.id
        return lambda row: to_invoice(row, connection, today)

    async def _get(self, path: str, label: str, **q: str) -> dict[str, Any]:
        http = self._ctx.http
        answer = await http.request("GET", path, params=q, auth=self._auth, label=label)
        if isinstance(body := http.decode_json("GET", label, answer), dict):
            return body
        raise self._protocol(label, "the answer is not an object")

    def _protocol(self, path: str, reason: str) -> UpstreamProtocolError:
        return UpstreamProtocolError(self._ctx.settings.id, "GET", path, reason)


create = FourthAdapter  # the factory named in the registry line
_conforms: p.AdapterFactory = create  # mypy proves the adapter satisfies the Protocol

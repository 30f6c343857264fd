"""The comparison point: a gateway as commonly first written, FastAPI + httpx + Redis.

Not part of the product: `hot_path_bench` serves it with uvicorn (its defaults) and
measures its cache hit next to ours. Needs the `bench` extra (`pip install -e '.[bench]'`).
It does the gateway's job for `GET /v1/invoices?customer_document=...&limit=N` over the
same three upstreams the bench gives the gateway (the Hubsoft, Xarios and Fintera
simulators, one connection each, named as the gateway's are): every source's invoices of
that customer, mapped to one canonical invoice, merged, sorted by due date (none last)
then id, the first `limit` kept, answered with `data`, `next_cursor` (always null: it
does not page), `complete` and a `sources` list (connection, status, from_cache).

What makes it naive is ordinary: it caches each upstream's raw rows for the customer in
Redis (one key per source, an hour) and, on every hit, parses them, validates them into
pydantic models, maps, merges, sorts and pages them, and lets FastAPI serialize the
response model. Precisely, a cache hit here is: FastAPI's routing and parameter parsing,
a string compare of the bearer key, three GETs (one per source) on a pooled
`redis.asyncio` client, awaited together with `asyncio.gather`, `json.loads` of each
source's cached rows (every row of the customer, 46 for the bench's customer, not the
page), per row one vendor pydantic model (`HubsoftRow`, `XariosRow`, `FinteraRow`) and
one canonical `Invoice` built from it, one sort, the first `limit` kept, FastAPI's
validation and JSON encoding of the `Page` response model. uvicorn with its defaults, one
worker, access log off, on uvloop and httptools (the `bench` extra installs httptools,
as FastAPI's documented `fastapi[standard]` install does).

On a miss (a source's key absent) it asks that upstream with one pooled `httpx.AsyncClient`
and its own auth: Hubsoft's OAuth password grant (the token kept until it expires),
Fintera's static API token (HTTP Basic, `ACCOUNT_ID` header, people search then each
entity's receivables, following `Link: rel="next"`), Xarios's refresh-token grant, whose
refresh token rotates and is one-time: the rotated one is stored in Redis at once (so a
later miss, or a restart, presents the live one) and grants are serialized by a lock, as
presenting one twice revokes the consent. A source that fails is reported `error` and the
answer is `complete: false`; the others still answer. Its limits, as written: one worker
(the token lock is per process), no single-flight for concurrent misses, Hubsoft's first
50 rows only (more marks the source incomplete), no stale serving.

What it deliberately does NOT do, because a first gateway written with care would not
either: open an `httpx.AsyncClient` or a Redis connection per request (both are created
once, at startup), use a blocking client, or log per request. The issue's own naive figure
(334 req/s) came from a version not kept in the repository; the ratio against this one is
measured, not engineered.

Configured by environment: NAIVE_HUBSOFT, NAIVE_XARIOS, NAIVE_FINTERA (the simulators'
base URLs), NAIVE_XARIOS_REFRESH (the Xarios consent's first refresh token),
NAIVE_XARIOS_TENANTS (JSON: customer document -> Xarios tenant id), NAIVE_REDIS (Redis
URL), NAIVE_KEY (the API key callers send as a Bearer token). Client ids, secrets and the
Fintera account are the simulators' demo values.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import httpx
import redis.asyncio as redis
from fastapi import FastAPI, Header, HTTPException, Query
from pydantic import BaseModel, Field, field_validator

from adapters.fintera.simulator import ACCOUNTS, API_TOKEN, ENTITIES
from adapters.hubsoft import simulator as hubsoft_sim
from adapters.xarios import simulator as xarios_sim

HUBSOFT = os.environ.get("NAIVE_HUBSOFT", "http://127.0.0.1:1")
XARIOS = os.environ.get("NAIVE_XARIOS", "http://127.0.0.1:1")
FINTERA = os.environ.get("NAIVE_FINTERA", "http://127.0.0.1:1")
XARIOS_TENANTS: dict[str, str] = json.loads(
    os.environ.get("NAIVE_XARIOS_TENANTS", "{}")
)
KEY = os.environ.get("NAIVE_KEY", "")
CACHE_S = 3600
BRAZIL = ZoneInfo("America/Sao_Paulo")
HUBSOFT_CAP = 50  # Hubsoft's most rows per call


class Customer(BaseModel):
    """The invoice's customer."""

    id: str | None
    document: str | None
    name: str | None


class Invoice(BaseModel):
    """One invoice as this gateway shows it, whichever vendor it came from."""

    id: str
    number: str | None
    amount: Decimal
    currency: str | None
    due_date: date | None
    paid_on: date | None
    status: Literal["open", "overdue", "paid", "cancelled", "unknown"]
    customer: Customer


class Source(BaseModel):
    """How one upstream answered."""

    connection: str
    status: Literal["ok", "error"]
    from_cache: bool


class Page(BaseModel):
    """The answer."""

    data: list[Invoice]
    next_cursor: str | None
    complete: bool
    sources: list[Source]


def _open_or_overdue(due: date | None, today: date) -> str:
    return "overdue" if due is not None and due < today else "open"


# --- one pydantic model per vendor row, each mapped to the canonical Invoice -----------
class HubsoftCustomer(BaseModel):
    """The `cliente` block of a Hubsoft row."""

    codigo_cliente: int | str
    nome_razaosocial: str | None = None
    cpf_cnpj: str | None = None


class HubsoftRow(BaseModel):
    """A row of Hubsoft's `/cliente/financeiro` (dates `dd/mm/yyyy`, `valor` a number)."""

    id_fatura: int | str
    nosso_numero: str | None = None
    valor: Decimal
    data_vencimento: date | None = None
    data_pagamento: date | None = None
    status: str | None = None
    cliente: HubsoftCustomer

    @field_validator("data_vencimento", "data_pagamento", mode="before")
    @classmethod
    def _brazilian_day(cls, value: object) -> object:
        if isinstance(value, str) and value:
            return datetime.strptime(value, "%d/%m/%Y").date()  # noqa: DTZ007 - a date
        return value or None

    def invoice(self, connection: str, today: date) -> Invoice:
        """The canonical invoice."""
        word = (self.status or "").lower()
        if word in {"quitado", "quitada", "pago", "paga", "liquidado"}:
            status = "paid"
        elif word in {"cancelado", "cancelada"}:
            status = "cancelled"
        elif self.data_pagamento is not None:
            status = "paid"
        else:
            status = _open_or_overdue(self.data_vencimento, today)
        cust = self.cliente
        return Invoice(
            id=f"hubsoft:{connection}:{cust.codigo_cliente}-{self.id_fatura}",
            number=self.nosso_numero,
            amount=self.valor,
            currency="BRL",
            due_date=self.data_vencimento,
            paid_on=self.data_pagamento,
            status=status,  # type: ignore[arg-type]
            customer=Customer(
                id=str(cust.codigo_cliente),
                document=cust.cpf_cnpj,
                name=cust.nome_razaosocial,
            ),
        )


class XariosRow(BaseModel):
    """A row of Xarios's `/billingdata`: no due date, no payment status."""

    tenant_id: str = Field(alias="tenantId")
    invoiceid: str
    invoice_number: str | None = Field(None, alias="invoiceNumber")
    customer_name: str | None = Field(None, alias="customerName")
    invoice_value: Decimal = Field(alias="invoiceValue")

    def invoice(self, connection: str, document: str) -> Invoice:
        """The canonical invoice (status unknown: Xarios does not say)."""
        return Invoice(
            id=f"xarios:{connection}:{self.invoiceid}",
            number=self.invoice_number,
            amount=self.invoice_value,
            currency="USD",  # the connection's, as the gateway's is configured
            due_date=None,
            paid_on=None,
            status="unknown",
            customer=Customer(
                id=self.tenant_id, document=document, name=self.customer_name
            ),
        )


class FinteraPerson(BaseModel):
    """A Fintera person (the customer)."""

    id: int
    name: str | None = None
    federation_subscription_number_only_numbers: str | None = None


class FinteraRow(BaseModel):
    """A Fintera receivable account: status 1 unpaid, 2 received, 3 reconciled."""

    id: int
    entity_id: int
    person_id: int
    status: int
    due_date: date | None = None
    occurred_at: date | None = None
    amount: Decimal
    document: str | None = None

    def invoice(self, connection: str, person: FinteraPerson, today: date) -> Invoice:
        """The canonical invoice."""
        paid = self.status in {2, 3}
        return Invoice(
            id=f"fintera:{connection}:{self.entity_id}-{self.id}",
            number=self.document,
            amount=self.amount,
            currency="BRL",  # Fintera is Brazilian reais only
            due_date=self.due_date,
            paid_on=self.occurred_at if paid else None,
            status="paid" if paid else _open_or_overdue(self.due_date, today),  # type: ignore[arg-type]
            customer=Customer(
                id=str(person.id),
                document=person.federation_subscription_number_only_numbers,
                name=person.name,
            ),
        )


# --- the shared clients and the upstreams' auth ----------------------------------------
class Clients:
    """Created once at startup: one Redis pool, one HTTP pool, the upstream tokens."""

    def __init__(self) -> None:
        """Pools are opened lazily by their first call."""
        self.redis = redis.Redis.from_url(
            os.environ.get("NAIVE_REDIS", "redis://127.0.0.1:6379")
        )
        self.http = httpx.AsyncClient(timeout=10.0)
        self.hubsoft_token: tuple[str, float] = ("", 0.0)
        self.xarios_token: tuple[str, float] = ("", 0.0)
        self.xarios_lock = asyncio.Lock()

    async def hubsoft_bearer(self) -> str:
        """A live Hubsoft access token (password grant when none is)."""
        token, until = self.hubsoft_token
        if time.monotonic() < until:
            return token
        answer = await self.http.post(
            f"{HUBSOFT}/oauth/token",
            json={
                "grant_type": "password",
                "client_id": hubsoft_sim.CLIENT_ID,
                "client_secret": hubsoft_sim.CLIENT_SECRET,
                "username": hubsoft_sim.USERNAME,
                "password": hubsoft_sim.PASSWORD,
            },
        )
        answer.raise_for_status()
        body = answer.json()
        self.hubsoft_token = (
            body["access_token"],
            time.monotonic() + float(body.get("expires_in", 60)) - 30,
        )
        return self.hubsoft_token[0]

    async def xarios_bearer(self) -> str:
        """A live Xarios access token; the rotated refresh token is stored before use."""
        async with self.xarios_lock:  # a refresh token is one-time: one grant at a time
            token, until = self.xarios_token
            if time.monotonic() < until:
                return token
            stored = await self.redis.get("naive:xarios:refresh_token")
            refresh = (
                os.environ.get("NAIVE_XARIOS_REFRESH", "")
                if stored is None
                else stored.decode()
                if isinstance(stored, bytes)
                else stored
            )
            answer = await self.http.post(
                f"{XARIOS}/connect/token",
                data={
                    "grant_type": "refresh_token",
                    "client_id": xarios_sim.CLIENT_ID,
                    "client_secret": xarios_sim.CLIENT_SECRET,
                    "refresh_token": refresh,
                },
            )
            answer.raise_for_status()
            body = answer.json()
            await self.redis.set("naive:xarios:refresh_token", body["refresh_token"])
            self.xarios_token = (
                body["access_token"],
                time.monotonic() + float(body.get("expires_in", 60)) - 10,
            )
            return self.xarios_token[0]


# --- each upstream: fetch the customer's raw rows (a miss), map cached rows (a hit) -----
async def _fetch_hubsoft(c: Clients, document: str) -> Any:
    answer = await c.http.get(
        f"{HUBSOFT}/api/v1/integracao/cliente/financeiro",
        params={
            "busca": "cpf_cnpj",
            "termo_busca": document,
            "limit": HUBSOFT_CAP,
            "apenas_pendente": "nao",
        },
        headers={"Authorization": f"Bearer {await c.hubsoft_bearer()}"},
    )
    answer.raise_for_status()
    return answer.json()["faturas"]


def _map_hubsoft(raw: Any, document: str, today: date) -> tuple[list[Invoice], bool]:
    rows = [HubsoftRow.model_validate(row) for row in raw]
    mine = [row for row in rows if row.cliente.cpf_cnpj in {None, document}]
    return [row.invoice("demo-hubsoft", today) for row in mine], len(raw) < HUBSOFT_CAP


async def _fetch_xarios(c: Clients, document: str) -> Any:
    tenant = XARIOS_TENANTS.get(document)
    if tenant is None:
        return []
    answer = await c.http.get(
        f"{XARIOS}/api/v1.0/billingdata",
        headers={"Authorization": f"Bearer {await c.xarios_bearer()}"},
    )
    answer.raise_for_status()
    return [row for row in answer.json()["data"] if row.get("tenantId") == tenant]


def _map_xarios(raw: Any, document: str, today: date) -> tuple[list[Invoice], bool]:
    del today
    rows = [XariosRow.model_validate(row) for row in raw]
    return [row.invoice("demo-xarios", document) for row in rows], True


async def _fintera_all(c: Clients, url: str, params: dict[str, str]) -> list[Any]:
    """Every page of a Fintera list (`Link: rel="next"`), unwrapped."""
    headers = {"ACCOUNT_ID": str(ACCOUNTS[0]["account"]["id"])}
    auth = (API_TOKEN, "X")
    out: list[Any] = []
    next_url: str | None = url
    query: dict[str, str] | None = {**params, "per_page": "100"}
    for _ in range(20):
        if next_url is None:
            break
        answer = await c.http.get(next_url, params=query, headers=headers, auth=auth)
        answer.raise_for_status()
        page = answer.json()
        if not page:
            break
        out += [next(iter(item.values())) for item in page]
        next_url, query = answer.links.get("next", {}).get("url"), None
    return out


async def _fetch_fintera(c: Clients, document: str) -> Any:
    formatted = f"{document[:3]}.{document[3:6]}.{document[6:9]}-{document[9:]}"
    if len(document) == 14:  # a CNPJ
        formatted = (
            f"{document[:2]}.{document[2:5]}.{document[5:8]}/"
            f"{document[8:12]}-{document[12:]}"
        )
    people = await _fintera_all(
        c,
        f"{FINTERA}/people.json",
        {"search[federation_subscription_number_equals]": formatted},
    )
    person = next(
        (
            p
            for p in people
            if p.get("federation_subscription_number_only_numbers") == document
        ),
        None,
    )
    if person is None:
        return {"person": None, "rows": []}
    pages = await asyncio.gather(
        *(
            _fintera_all(
                c,
                f"{FINTERA}/entities/{entity}/receivable_accounts.json",
                {"search[person_id_equals]": str(person["id"])},
            )
            for entity in ENTITIES
        )
    )
    rows = [r for page in pages for r in page if r.get("person_id") == person["id"]]
    return {"person": person, "rows": rows}


def _map_fintera(raw: Any, document: str, today: date) -> tuple[list[Invoice], bool]:
    del document
    if raw["person"] is None:
        return [], True
    person = FinteraPerson.model_validate(raw["person"])
    rows = [FinteraRow.model_validate(row) for row in raw["rows"]]
    return [row.invoice("demo-fintera", person, today) for row in rows], True


Fetch = Callable[[Clients, str], Awaitable[Any]]
Mapper = Callable[[Any, str, date], tuple[list[Invoice], bool]]
SOURCES: list[tuple[str, Fetch, Mapper]] = [
    ("demo-hubsoft", _fetch_hubsoft, _map_hubsoft),
    ("demo-xarios", _fetch_xarios, _map_xarios),
    ("demo-fintera", _fetch_fintera, _map_fintera),
]


async def _source(
    c: Clients,
    source: tuple[str, Fetch, Mapper],
    document: str,
    today: date,
) -> tuple[list[Invoice], Source, bool]:
    """(invoices, how it answered, complete): from Redis, else from the upstream."""
    connection, fetch, mapper = source
    key = f"naive:{connection}:{document}"
    try:
        cached = await c.redis.get(key)
        if cached is not None:
            raw = json.loads(cached)
        else:
            raw = await fetch(c, document)
            await c.redis.set(key, json.dumps(raw), ex=CACHE_S)
        invoices, complete = mapper(raw, document, today)
    except (httpx.HTTPError, redis.RedisError, ValueError, KeyError, TypeError):
        return (
            [],
            Source(connection=connection, status="error", from_cache=False),
            False,
        )
    return (
        invoices,
        Source(connection=connection, status="ok", from_cache=cached is not None),
        complete,
    )


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.clients = Clients()
    yield
    await app.state.clients.http.aclose()
    await app.state.clients.redis.aclose()


app = FastAPI(lifespan=_lifespan)


@app.get("/v1/invoices")
async def list_invoices(
    customer_document: Annotated[str, Query(pattern=r"^\d{11}(\d{3})?$")],
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    authorization: Annotated[str, Header()] = "",
) -> Page:
    """Every source's cached rows, mapped, merged, sorted and paged on every request."""
    if authorization != f"Bearer {KEY}":
        raise HTTPException(401, "unknown API key")
    today = datetime.now(BRAZIL).date()
    answers = await asyncio.gather(
        *(_source(app.state.clients, s, customer_document, today) for s in SOURCES)
    )
    merged = sorted(
        (inv for invoices, _, _ in answers for inv in invoices),
        key=lambda inv: (inv.due_date is None, inv.due_date or date.min, inv.id),
    )
    return Page(
        data=merged[:limit],
        next_cursor=None,
        complete=all(complete for _, _, complete in answers),
        sources=[source for _, source, _ in answers],
    )


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}

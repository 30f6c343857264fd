"""The comparison point: a gateway as commonly first written, FastAPI + httpx + Redis.

Not part of the product: `hot_path_bench` serves it with uvicorn (its defaults) and
measures its cache hit next to ours. Needs the `bench` extra (`pip install -e '.[bench]'`).
What makes it naive is ordinary: it caches the upstream's raw rows in Redis and, on every
hit, parses them, validates them into pydantic models, sorts and pages them, and lets
FastAPI serialize the response model. Same upstream (the Hubsoft simulator), same query
and same page size as the gateway's rows; it answers one connection, without `sources`.

Precisely, a cache hit here is: FastAPI's routing and parameter parsing, a string compare
of the bearer key, one GET on a pooled `redis.asyncio` client (created once at import),
`json.loads` of the cached rows (every row of the customer, not the page), one pydantic
`Invoice` per row, a sort, the first `limit` kept, FastAPI's validation and JSON encoding
of the `Page` model; uvicorn with its defaults, one worker, access log off, on uvloop
and httptools (the `bench` extra installs httptools, as FastAPI's documented
`fastapi[standard]` install does). What it deliberately does NOT do, because a first gateway
written with care would not either: open an `httpx.AsyncClient` or a Redis connection per
request (the client exists only on a miss), use a blocking Redis client, or log. The
issue's own naive figure (334 req/s) came from a version not kept in the repository; its
per-request cost (~3 ms of CPU) suggests per-request clients or connections, which this
one is not built to imitate: the ratio against it is measured, not engineered.

Configured by environment: NAIVE_UPSTREAM (simulator URL), NAIVE_REDIS (Redis URL),
NAIVE_KEY (the API key callers send as a Bearer token).
"""

from __future__ import annotations

import json
import os
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import httpx
import redis.asyncio as redis
from fastapi import FastAPI, Header, HTTPException
from pydantic import BaseModel

from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME

UPSTREAM = os.environ.get("NAIVE_UPSTREAM", "http://127.0.0.1:1")
KEY = os.environ.get("NAIVE_KEY", "")
r = redis.Redis.from_url(os.environ.get("NAIVE_REDIS", "redis://127.0.0.1:6379"))
app = FastAPI()


class Customer(BaseModel):
    """The invoice's customer."""

    code: str
    name: str | None
    document: str | None


class Invoice(BaseModel):
    """One invoice as this gateway shows it."""

    id: str
    number: str | None
    amount: Decimal
    due_date: date
    paid_on: date | None
    status: str
    customer: Customer


class Page(BaseModel):
    """The answer."""

    data: list[Invoice]
    next_cursor: str | None
    complete: bool


def _day(text: str | None) -> date | None:
    return None if not text else datetime.strptime(text, "%d/%m/%Y").date()  # noqa: DTZ007


def _invoice(row: dict) -> Invoice:  # type: ignore[type-arg]
    cust = row["cliente"]
    return Invoice(
        id=f"hubsoft:acme:{row['id_fatura']}",
        number=str(row.get("nosso_numero")),
        amount=Decimal(str(row["valor"])),
        due_date=_day(row["data_vencimento"]),  # type: ignore[arg-type]
        paid_on=_day(row.get("data_pagamento")),
        status=row.get("status") or "unknown",
        customer=Customer(
            code=str(cust["codigo_cliente"]),
            name=cust.get("nome_razaosocial"),
            document=cust.get("cpf_cnpj"),
        ),
    )


async def _rows(document: str) -> list[dict]:  # type: ignore[type-arg]
    cached = await r.get(f"naive:{document}")
    if cached is not None:
        return json.loads(cached)  # type: ignore[no-any-return]
    async with httpx.AsyncClient(base_url=UPSTREAM) as client:
        token = (
            await client.post(
                "/oauth/token",
                json={
                    "grant_type": "password",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "username": USERNAME,
                    "password": PASSWORD,
                },
            )
        ).json()["access_token"]
        answer = await client.get(
            "/api/v1/integracao/cliente/financeiro",
            params={
                "busca": "cpf_cnpj",
                "termo_busca": document,
                "limit": 50,
                "apenas_pendente": "nao",
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    rows = answer.json()["faturas"]
    await r.set(f"naive:{document}", json.dumps(rows), ex=3600)
    return rows  # type: ignore[no-any-return]


@app.get("/v1/invoices")
async def list_invoices(
    customer_document: str,
    limit: int = 50,
    authorization: Annotated[str, Header()] = "",
) -> Page:
    """The cached rows, mapped, sorted and paged on every request."""
    if authorization != f"Bearer {KEY}":
        raise HTTPException(401, "unknown API key")
    invoices = sorted(
        (_invoice(row) for row in await _rows(customer_document)),
        key=lambda inv: (inv.due_date, inv.id),
    )
    return Page(data=invoices[:limit], next_cursor=None, complete=True)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}

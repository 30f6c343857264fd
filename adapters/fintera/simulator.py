"""A faithful Fintera Financeiro simulator (aiohttp) for the demo and the tests.

From the research notes: HTTP Basic with the API token as user (401 is `text/html`
"HTTP Basic: Access denied."), `ACCOUNT_ID` required when the token's user has several
accounts (422 listing them), 402 / 403 switches, JSON or XML on the same URLs (`.json`,
`.xml` or `Accept`), bare arrays of `{"<resource>": {...}}`, paging only in the `Link`
header with a past-the-end page of `200 []`, money as strings, a fixed-window rate limit
with `X-RateLimit-*` headers and `429 Retry-After`, 422 field errors in Portuguese, and a
DELETE that only schedules the destruction.
"""

from __future__ import annotations

import asyncio
import base64
import math
import operator
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler

from adapters.fintera import xmlcodec
from adapters.fintera.mapping import (
    METHOD_TO_CANONICAL,
    UPSTREAM_PROVIDERS,
    format_document,
)
from adapters.hubsoft.simdata import DOC_CUSTOMER, cnpj, cpf
from adapters.simkit import FaultBoard
from gateway import jsoncodec
from gateway.upstream.providers import DemoBuilder, DemoUpstream

API_TOKEN = "demo-fintera-api-token"
ACCOUNTS = [
    {"account": {"id": 3613, "name": "Matriz"}},
    {"account": {"id": 3614, "name": "Filial"}},
]
ENTITIES = [3798, 3799]
PROVIDERS = UPSTREAM_PROVIDERS
METHODS = frozenset(METHOD_TO_CANONICAL)
# `unfiltered_next`: `Link` next URLs drop the `search[...]` filters of the first page (seen
# from Fintera), so page 2 on is everyone's rows. `ignore_filter`: the person filter is
# ignored outright. Either way the gateway must re-check whose rows it serves.
FAULTS = frozenset(
    {"overdue", "no_api", "slow_create", "unfiltered_next", "ignore_filter"}
)  # plus simkit's generic ones
TZ = ZoneInfo("America/Sao_Paulo")


def sao_paulo_now() -> datetime:
    """Fintera writes local timestamps with their offset."""
    return datetime.now(TZ).replace(microsecond=0)


@dataclass
class FinteraSimulator:
    """State of one simulated Fintera user (two accounts, two entities)."""

    today: date = field(default_factory=lambda: sao_paulo_now().date())
    seed: int = 5
    rate_limit: int = 60
    rate_window_s: float = 60.0
    per_page_default: int = 25
    delete_delay_s: float = 0.5
    slow_create_s: float = 2.0
    board: FaultBoard = field(default_factory=lambda: FaultBoard(FAULTS))
    throttled: int = 0
    max_per_page: int = 400
    stale_next: bool = (
        False  # a buggy upstream that links `next` even from the last page
    )
    force_xml: bool = False  # answer XML whatever was asked
    put_empty: bool = (
        False  # PUT answers the documented empty 200, not the recorded body
    )

    def __post_init__(self) -> None:
        """Seed people, receivables and sale accounts; open the first rate window."""
        self.people, self.receivables = self._seed()
        self.sale_accounts: dict[int, dict[str, Any]] = {}
        self._next_sale = 36
        for name, provider, methods in (
            ("Maquininha Cielo", "cielo", "debit,credit,parcelled"),
            ("Maquininha Elo", "elo", "debit,credit"),
            ("Boletos Banco do Brasil", "bank_account", "billet,pix"),
        ):
            self._store_sale(
                {
                    "entity_id": ENTITIES[0],
                    "name": name,
                    "provider": provider,
                    "payment_methods": methods,
                    "consolidate": False,
                }
            )
        self._window_start = time.time()
        self._window_count = 0

    def _seed(self) -> tuple[dict[int, dict[str, Any]], list[dict[str, Any]]]:
        rng = random.Random(self.seed)
        people: dict[int, dict[str, Any]] = {}
        docs = [DOC_CUSTOMER[1]] + [
            cnpj(rng) if i % 6 == 0 else cpf(rng) for i in range(1, 25)
        ]
        names = [DOC_CUSTOMER[2]] + [f"Cliente {i:02d}" for i in range(1, 25)]
        for i, (doc, name) in enumerate(zip(docs, names, strict=True)):
            pid = 1001 + i
            people[pid] = {
                "id": pid,
                "name": name,
                "federation_subscription_number": format_document(doc),
                "federation_subscription_number_only_numbers": doc,
                "person_type": "JuridicalPerson" if len(doc) == 14 else "NaturalPerson",  # noqa: PLR2004
                "customer": True,
                "supplier": False,
            }
        receivables = []
        rid = 1235000
        for pid in people:
            for back in range(rng.randint(6, 14), -2, -1):
                due = self.today - timedelta(days=30 * back + rng.randint(0, 9))
                amount = Decimal(rng.choice(["89.90", "150.99", "249.00", "1200.00"]))
                status = 1
                if due < self.today - timedelta(days=3) and rng.random() < 0.8:  # noqa: PLR2004
                    status = rng.choice([2, 2, 3])
                rid += 1
                receivables.append(
                    self._receivable(rid, ENTITIES[rid % 2], pid, due, amount, status)
                )
        return people, receivables

    def _receivable(
        self, rid: int, entity: int, pid: int, due: date, amount: Decimal, status: int
    ) -> dict[str, Any]:
        paid = status >= 2  # noqa: PLR2004
        stamp = datetime.combine(
            due - timedelta(days=20), datetime.min.time(), TZ
        ).isoformat()
        return {
            "id": rid,
            "entity_id": entity,
            "person_id": pid,
            "status": status,
            "status_name": {1: "unreceived", 2: "received", 3: "reconciled"}[status],
            "due_date": due.isoformat(),
            "occurred_at": (due + timedelta(days=1)).isoformat() if paid else None,
            "amount": str(amount),
            "nominal_amount": str(amount),
            "ticket_amount": "0.0",
            "interest_amount": "0.0",
            "discount_amount": "0.0",
            "total_amount": str(amount) if paid else None,
            "description": f"Mensalidade {due:%m/%Y}",
            "document": f"NF-{rid}",
            "document_emission_date": (due - timedelta(days=20)).isoformat(),
            "competency_month": f"{due:%Y-%m}",
            "recurrent": True,
            "recurrence_period": "monthly",
            "created_at": stamp,
            "updated_at": stamp,
        }

    def _store_sale(self, body: dict[str, Any]) -> dict[str, Any]:
        self._next_sale += 1
        now = sao_paulo_now().isoformat()
        record = {
            "id": self._next_sale,
            "entity_id": body.get("entity_id"),
            "name": body.get("name"),
            "description": body.get("description", ""),
            "provider": body.get("provider"),
            "payment_methods": body.get("payment_methods"),
            "category_id": body.get("category_id"),
            "person_id": body.get("person_id"),
            "classification_center_id": body.get("classification_center_id"),
            "created_at": now,
            "updated_at": now,
            "custom_classifications": [
                {
                    "id": n + 1,
                    **c,
                    "custom_classifier_name": "Produto",
                    "value": c.get("name"),
                }
                for n, c in enumerate(body.get("custom_classifications") or [])
            ],
            "classification_center_classifications": body.get(
                "classification_center_classifications"
            )
            or [],
            "consolidate": bool(body.get("consolidate", False)),
        }
        self.sale_accounts[record["id"]] = record
        return record

    def calls(self, path_part: str) -> list[dict[str, Any]]:
        """Logged requests whose path contains `path_part`."""
        return [r for r in self.board.requests if path_part in r["path"]]

    # --- app ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The Fintera Financeiro API."""
        app = web.Application(middlewares=[self.board.middleware, self._middleware])
        ext = r"{ext:(\.json|\.xml)?}"
        app.router.add_get(f"/entities{ext}", self._entities)
        app.router.add_get(f"/people{ext}", self._people)
        app.router.add_get(r"/people/{pid:\d+}" + ext, self._person)
        app.router.add_get(
            r"/entities/{eid:\d+}/receivable_accounts" + ext, self._receivables
        )
        app.router.add_get(
            r"/entities/{eid:\d+}/receivable_accounts/{rid:\d+}" + ext,
            self._receivable_one,
        )
        app.router.add_get(f"/sale_accounts{ext}", self._sales)
        app.router.add_post(f"/sale_accounts{ext}", self._sale_create)
        app.router.add_get(r"/sale_accounts/{sid:\d+}" + ext, self._sale_get)
        app.router.add_put(r"/sale_accounts/{sid:\d+}" + ext, self._sale_update)
        app.router.add_delete(r"/sale_accounts/{sid:\d+}" + ext, self._sale_delete)
        self.board.add_admin_routes(app)
        return app

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if request.path.startswith("/__sim"):
            return await handler(request)
        user, _, _ = _basic(request.headers.get("Authorization", ""))
        if user != API_TOKEN:
            return web.Response(
                status=401,
                text="HTTP Basic: Access denied.\n",
                content_type="text/html",
            )
        limited = self._count()
        if limited is not None:
            return limited
        response = self._gate(request) or await handler(request)
        remaining = max(0, self.rate_limit - self._window_count)
        reset = datetime.fromtimestamp(self._window_start + self.rate_window_s, UTC)
        response.headers["X-RateLimit-Limit"] = str(self.rate_limit)
        response.headers["X-RateLimit-Remaining"] = str(remaining)
        response.headers["X-RateLimit-Reset"] = reset.isoformat().replace("+00:00", "Z")
        return response

    def _count(self) -> web.Response | None:
        now = time.time()
        if now - self._window_start >= self.rate_window_s:
            self._window_start, self._window_count = now, 0
        if self._window_count >= self.rate_limit:
            self.throttled += 1
            wait = math.ceil(self._window_start + self.rate_window_s - now)
            return web.json_response(
                {"error": "Rate limit exceeded"},
                status=429,
                headers={"Retry-After": str(max(1, wait))},
            )
        self._window_count += 1
        return None

    def _gate(self, request: web.Request) -> web.Response | None:
        if self.board.take("overdue"):
            return web.json_response({"error": "Assinatura em atraso."}, status=402)
        if self.board.take("no_api"):
            return web.json_response(
                {"error": "Seu plano não permite o uso da API."}, status=403
            )
        if request.headers.get("ACCOUNT_ID") not in {
            str(a["account"]["id"]) for a in ACCOUNTS
        }:
            return web.json_response(
                {
                    "error": "Você precisa informar o ACCOUNT_ID",
                    "status": "unprocessable_entity",
                    "accounts": ACCOUNTS,
                },
                status=422,
            )
        return None

    def _render(
        self,
        request: web.Request,
        payload: Any,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        wants_xml = (
            self.force_xml
            or request.match_info.get("ext") == ".xml"
            or (
                not request.match_info.get("ext")
                and "xml" in request.headers.get("Accept", "")
            )
        )
        if wants_xml:
            return web.Response(
                body=xmlcodec.dumps(payload),
                status=status,
                headers=headers,
                content_type="application/xml",
                charset="utf-8",
            )
        return web.Response(
            body=jsoncodec.dumps(payload),
            status=status,
            headers=headers,
            content_type="application/json",
            charset="utf-8",
        )

    def _paged(
        self, request: web.Request, key: str, items: list[dict[str, Any]]
    ) -> web.Response:
        try:
            page = max(1, int(request.query.get("page", "1")))
            asked = int(request.query.get("per_page", str(self.per_page_default)))
            per = min(self.max_per_page, max(1, asked))
        except ValueError:
            page, per = 1, self.per_page_default
        last = max(1, math.ceil(len(items) / per))
        unfiltered = self.board.take("unfiltered_next") is not None
        base = request.url.with_query(
            {
                k: v
                for k, v in request.query.items()
                if k != "page" and not (unfiltered and k.startswith("search["))
            }
        )

        def link(n: int, rel: str) -> str:
            return f'<{base.update_query(page=str(n))}>; rel="{rel}"'

        links = [link(1, "first")]
        if page > 1:
            links.append(link(min(page - 1, last), "prev"))
        if page < last or (self.stale_next and page <= last):
            links += [link(page + 1, "next"), link(last, "last")]
        chunk = items[(page - 1) * per : page * per]  # past the end: [] (a quirk kept)
        return self._render(
            request, [{key: item} for item in chunk], headers={"Link": ", ".join(links)}
        )

    async def _entities(self, request: web.Request) -> web.Response:
        return self._paged(
            request, "entity", [{"id": e, "name": f"Empresa {e}"} for e in ENTITIES]
        )

    async def _people(self, request: web.Request) -> web.Response:
        wanted = request.query.get("search[federation_subscription_number_equals]")
        people = [
            p
            for p in self.people.values()
            if wanted is None or p["federation_subscription_number"] == wanted
        ]
        return self._paged(request, "person", people)

    async def _person(self, request: web.Request) -> web.Response:
        person = self.people.get(int(request.match_info["pid"]))
        if person is None:
            return web.json_response({"error": "Couldn't find Person"}, status=404)
        return self._render(request, {"person": person})

    async def _receivables(self, request: web.Request) -> web.Response:
        eid = int(request.match_info["eid"])
        if eid not in ENTITIES:
            return web.json_response(
                {"error": f"Couldn't find Entity with id={eid}"}, status=404
            )
        q = request.query
        rows = [r for r in self.receivables if r["entity_id"] == eid]
        pid = q.get("search[person_id_equals]")
        if pid is not None and self.board.take("ignore_filter") is None:
            rows = [r for r in rows if str(r["person_id"]) == pid]
        for key, keep in (
            ("search[due_date_gte]", operator.ge),
            ("search[due_date_lte]", operator.le),
        ):
            if (raw := q.get(key)) is not None:
                try:
                    bound = datetime.strptime(raw, "%d/%m/%Y").date()  # noqa: DTZ007 - a date
                except ValueError:
                    return web.json_response(
                        {"due_date": ["não é uma data válida"]}, status=422
                    )
                rows = [
                    r for r in rows if keep(date.fromisoformat(r["due_date"]), bound)
                ]
        return self._paged(request, "receivable_account", rows)

    async def _receivable_one(self, request: web.Request) -> web.Response:
        eid, rid = int(request.match_info["eid"]), int(request.match_info["rid"])
        row = next(
            (r for r in self.receivables if r["id"] == rid and r["entity_id"] == eid),
            None,
        )
        if row is None:
            return web.json_response(
                {"error": "Couldn't find ReceivableAccount"}, status=404
            )
        return self._render(request, {"receivable_account": row})

    def _live_sales(self) -> list[dict[str, Any]]:
        now = time.time()
        for sid in [
            s
            for s, r in self.sale_accounts.items()
            if r.get("_delete_at", math.inf) <= now
        ]:
            del self.sale_accounts[sid]
        return [
            {k: v for k, v in r.items() if not k.startswith("_")}
            for r in self.sale_accounts.values()
        ]

    async def _sales(self, request: web.Request) -> web.Response:
        return self._paged(request, "sale_account", self._live_sales())

    async def _sale_get(self, request: web.Request) -> web.Response:
        sid = int(request.match_info["sid"])
        found = next((r for r in self._live_sales() if r["id"] == sid), None)
        if found is None:
            return web.json_response({"error": "Couldn't find SaleAccount"}, status=404)
        return self._render(
            request,
            {"sale_account": found},
            headers={"Location": f"{request.url.origin()}/sale_accounts/{sid}"},
        )

    async def _body(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if "xml" in request.content_type:
            parsed = xmlcodec.loads(raw)
        else:
            parsed = jsoncodec.loads(raw) if raw else {}
        body = parsed.get("sale_account") if isinstance(parsed, dict) else None
        return body if isinstance(body, dict) else {}

    async def _sale_create(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        errors = _validate(body, partial=False)
        if errors:
            return web.json_response(errors, status=422)
        record = self._store_sale(body)
        if (delay := self.board.take("slow_create")) is not None:
            # Created, but the answer comes too late: the client's timeout fires first.
            await asyncio.sleep(
                float(delay) if delay is not True else self.slow_create_s
            )
        return self._render(request, {"sale_account": record}, status=201)

    async def _sale_update(self, request: web.Request) -> web.Response:
        sid = int(request.match_info["sid"])
        if sid not in {r["id"] for r in self._live_sales()}:
            return web.json_response({"error": "Couldn't find SaleAccount"}, status=404)
        body = await self._body(request)
        errors = _validate(body, partial=True)
        if errors:
            return web.json_response(errors, status=422)
        record = self.sale_accounts[sid]
        record.update({k: v for k, v in body.items() if k in record and k != "id"})
        record["updated_at"] = sao_paulo_now().isoformat()
        if self.put_empty:
            return web.Response(status=200)  # as documented: an empty 200
        return self._render(  # as recorded: 200 with the account and a Location
            request,
            {
                "sale_account": {
                    k: v for k, v in record.items() if not k.startswith("_")
                }
            },
            headers={"Location": f"{request.url.origin()}/sale_accounts/{sid}"},
        )

    async def _sale_delete(self, request: web.Request) -> web.Response:
        sid = int(request.match_info["sid"])
        record = self.sale_accounts.get(sid)
        if record is None or "_delete_at" in record:
            return web.json_response({"error": "Couldn't find SaleAccount"}, status=404)
        record["_delete_at"] = time.time() + self.delete_delay_s  # only scheduled
        return web.Response(status=204)


def _basic(header: str) -> tuple[str, str, str]:
    scheme, _, value = header.partition(" ")
    if scheme != "Basic":
        return "", "", ""
    try:
        return base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return "", "", ""


def _validate(body: dict[str, Any], *, partial: bool) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    blank = "não pode ficar em branco"
    for name in ("name", "provider", "payment_methods", "entity_id"):
        if not partial and not body.get(name):
            errors.setdefault(name, []).append(blank)
    if "provider" in body and body["provider"] not in PROVIDERS:
        errors.setdefault("provider", []).append("não está incluído na lista")
    if "payment_methods" in body:
        methods = str(body["payment_methods"]).split(",")
        if not set(methods) <= METHODS:
            errors.setdefault("payment_methods", []).append(
                "não está incluído na lista"
            )
    if "entity_id" in body and body["entity_id"] not in ENTITIES:
        errors.setdefault("entity", []).append("não existe")
    return errors


def demo_upstream(
    today: date | None = None, sim: FinteraSimulator | None = None
) -> DemoUpstream:
    """The simulator (`sim`, else a fresh one) and the connection that points at it."""
    sim = sim or FinteraSimulator(today=today or sao_paulo_now().date())
    return DemoUpstream(
        provider="fintera",
        connection_id="demo-fintera",
        app=sim.app(),
        secrets={"api_token": API_TOKEN},
        examples=[
            ("Fintera sale accounts", "/v1/sale-accounts?connection=demo-fintera"),
        ],
        options={"account_id": 3613, "entity_ids": ENTITIES},
        rate_limit=(sim.rate_limit, sim.rate_window_s),
        set_fault=sim.board.set,
    )


_conforms: DemoBuilder = (
    demo_upstream  # mypy proves the demo builder has the core's type
)

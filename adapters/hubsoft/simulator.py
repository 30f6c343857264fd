"""A faithful Hubsoft simulator (aiohttp) for the demo and the tests.

What it reproduces, from the research notes: the OAuth2 password grant at `/oauth/token`
(configurable lifetime, tokens revocable at any time, 401 `invalid_credentials`); the
Laravel-style 401 on the API; both invoice routes with their parameter rules — required
`busca`/`termo_busca`, `limit` 1..50 (default 20), `apenas_pendente` defaulting to
`sim`, validation errors as HTTP 200 `status: "error"`, the `suscess` typo, `dd/mm/yyyy`
dates and numeric `valor` on one route, ISO dates, string `valor`, `paginacao` and a
30-day window cap without `busca` on the other; the public boleto PDFs behind `link`.
Faults: simkit's generic ones on the API paths, plus `envelope_error` (an error envelope in
an HTTP 200). Every request is logged for tests.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from adapters.hubsoft.simdata import DOC_CUSTOMER, SimInvoice, generate
from adapters.simkit import FaultBoard, json_response, pdf_bytes
from gateway import jsoncodec
from gateway.upstream.providers import DemoBuilder, DemoUpstream

CLIENT_ID = "demo-client"
CLIENT_SECRET = "demo-client-secret"
USERNAME = "api@demo-isp.com.br"
PASSWORD = "demo-password"
BUSCA_CLIENTE = {"cpf_cnpj", "codigo_cliente", "id_cliente_servico"}
BUSCA_FATURA = {"id_cliente", "codigo_cliente", "cpf_cnpj", "id_cliente_servico"}
DATE_FIELDS = {"data_vencimento", "data_pagamento", "data_cadastro"}
ISO_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# `ignore_filter`: /cliente/financeiro answers rows of every customer, as a buggy or
# misconfigured tenant might; the gateway must never serve them as the customer's.
FAULTS = frozenset({"envelope_error", "ignore_filter"})  # plus simkit's generic ones


def sao_paulo_today() -> date:
    """The tenant's calendar day (Hubsoft tenants are Brazilian ISPs)."""
    return datetime.now(ZoneInfo("America/Sao_Paulo")).date()


class Invalid(Exception):  # noqa: N818 - mirrors the upstream's own word for it
    """A parameter the upstream would reject with a 200 error envelope."""


@dataclass
class HubsoftSimulator:
    """State of one simulated Hubsoft tenant."""

    today: date = field(default_factory=sao_paulo_today)
    seed: int = 7
    customers: int = 40
    token_lifetime_s: int = 2_592_000
    board: FaultBoard = field(default_factory=lambda: FaultBoard.for_api(FAULTS))
    logins: int = 0

    def __post_init__(self) -> None:
        """Generate the seeded data."""
        self.people, self.invoices = generate(self.seed, self.today, self.customers)
        self._tokens: dict[str, float] = {}
        self.requests = self.board.requests

    # --- controls used by tests and the admin endpoints -------------------------------
    def set_fault(self, name: str, value: Any = True, times: int | None = None) -> None:
        """Switch a fault on (for `times` requests, or until cleared)."""
        self.board.set(name, value, times)

    def revoke_tokens(self) -> None:
        """Invalidate every issued token, as an admin or a system update does."""
        self._tokens.clear()

    def calls(self, path_suffix: str) -> list[dict[str, Any]]:
        """Logged requests whose path ends with `path_suffix`."""
        return self.board.calls(path_suffix)

    def mark_paid(self, invoice_id: int) -> SimInvoice:
        """A customer pays invoice `invoice_id` today, in full (a bank's settlement)."""
        for inv in self.invoices:
            if inv.id == invoice_id:
                inv.paid_on, inv.paid_amount = self.today, inv.amount
                return inv
        raise KeyError(invoice_id)

    # --- app -------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application serving this tenant."""
        app = web.Application(middlewares=[self.board.middleware])
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get(
            "/api/v1/integracao/cliente/financeiro", self._customer_invoices
        )
        app.router.add_get(
            "/api/v1/integracao/financeiro/fatura", self._tenant_invoices
        )
        app.router.add_get("/pdf/fatura/{token}", self._pdf)
        app.router.add_post("/__sim/revoke", self._admin_revoke)
        app.router.add_post("/__sim/pay/{invoice_id}", self._admin_pay)
        self.board.add_admin_routes(app)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        try:
            body = await request.json(loads=jsoncodec.loads)
        except ValueError:
            body = {}
        expected = {
            "grant_type": "password",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": USERNAME,
            "password": PASSWORD,
        }
        if not isinstance(body, dict) or any(
            body.get(k) != v for k, v in expected.items()
        ):
            return _json(
                {
                    "error": "invalid_credentials",
                    "error_description": "The user credentials were incorrect.",
                    "message": "The user credentials were incorrect.",
                },
                status=401,
            )
        self.logins += 1
        token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24)
        self._tokens[token] = time.time() + self.token_lifetime_s
        return _json(
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime_s,
                "access_token": token,
                "refresh_token": "def50200" + secrets.token_hex(16),
            }
        )

    async def _guard(self, request: web.Request) -> web.Response | None:
        """Authenticate and apply this vendor's faults (generic ones ran already)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry = self._tokens.get(token) if scheme == "Bearer" else None
        if expiry is None or expiry < time.time():
            return _json({"message": "Unauthenticated."}, status=401)
        if self.board.take("envelope_error"):
            return _json(
                {"status": "error", "msg": "Erro interno ao consultar faturas."}
            )
        return None

    async def _customer_invoices(self, request: web.Request) -> web.Response:
        if (short := await self._guard(request)) is not None:
            return short
        q = request.query
        try:
            rows = self._select_customer(q)
        except Invalid as err:
            return _json({"status": "error", "msg": str(err), "errors": [str(err)]})
        return _json(
            {
                "status": "suscess",
                "msg": "Dados consultados com sucesso",
                "faturas": [
                    self._row_cliente(inv, str(request.url.origin())) for inv in rows
                ],
            }
        )

    def _select_customer(self, q: Any) -> list[SimInvoice]:
        busca, termo = q.get("busca"), q.get("termo_busca")
        if busca not in BUSCA_CLIENTE:
            raise Invalid(
                "O campo busca é obrigatório e deve ser: "
                "cpf_cnpj, codigo_cliente ou id_cliente_servico"
            )
        if not termo:
            raise Invalid("O campo termo busca é obrigatório.")
        limit = _int(q.get("limit", "20"), "limit", 1, 50)
        pending = (
            _choice(q.get("apenas_pendente", "sim"), "apenas_pendente", {"sim", "nao"})
            == "sim"
        )
        order_by = _choice(
            q.get("order_by", "data_vencimento"), "order_by", {*DATE_FIELDS, "valor"}
        )
        descending = (
            _choice(q.get("order_type", "asc"), "order_type", {"asc", "desc"}) == "desc"
        )
        everyone = self.board.take("ignore_filter") is not None
        rows = [
            inv
            for inv in self.invoices
            if everyone or _customer_matches(inv, busca, termo)
        ]
        if pending:
            rows = [inv for inv in rows if inv.paid_on is None]
        rows = _date_window(rows, q)
        rows.sort(
            key=lambda inv: (_order_value(inv, order_by), inv.id), reverse=descending
        )
        return rows[:limit]

    async def _tenant_invoices(self, request: web.Request) -> web.Response:
        if (short := await self._guard(request)) is not None:
            return short
        q = request.query
        try:
            page = _int(q.get("pagina", "0"), "pagina", 0, 10**9)
            per_page = _int(q.get("itens_por_pagina", "50"), "itens_por_pagina", 1, 500)
            rows = self._select_tenant(q)
        except Invalid as err:
            return _json({"status": "error", "msg": str(err), "errors": [str(err)]})
        pix = q.get("exibir_pix_copia_cola", "nao") == "sim"
        detailed = q.get("tipo_resultado", "simplificado") in {"detalhado", "completo"}
        origin = str(request.url.origin())
        chunk = rows[page * per_page : (page + 1) * per_page]
        return _json(
            {
                "status": "success",
                "msg": "Dados consultados com sucesso",
                "paginacao": {
                    "primeira_pagina": 0,
                    "ultima_pagina": max(0, math.ceil(len(rows) / per_page) - 1),
                    "pagina_atual": page,
                    "total_registros": len(rows),
                },
                "faturas": [
                    self._row_fatura(inv, origin, pix=pix, detailed=detailed)
                    for inv in chunk
                ],
            }
        )

    def _select_tenant(self, q: Any) -> list[SimInvoice]:
        busca, termo = q.get("busca"), q.get("termo_busca")
        start = _iso(q.get("data_inicio"), "data_inicio") or self.today - timedelta(
            days=10
        )
        end = _iso(q.get("data_fim"), "data_fim") or self.today
        if busca is None and (end - start).days > 31:  # noqa: PLR2004 - the upstream's cap
            raise Invalid(
                "Sem busca, o intervalo entre data_inicio e data_fim não pode exceder 30 dias."
            )
        if busca is not None and busca not in BUSCA_FATURA:
            raise Invalid("Tipo de busca inválido.")
        rows = [
            inv
            for inv in self.invoices
            if busca is None or _customer_matches(inv, busca, termo or "")
        ]
        if q.get("apenas_em_aberto") == "sim":
            rows = [inv for inv in rows if inv.paid_on is None]
        if q.get("apenas_quitado") == "sim":
            rows = [inv for inv in rows if inv.paid_on is not None]
        field_name = _choice(
            q.get("tipo_data", "data_vencimento"), "tipo_data", DATE_FIELDS
        )
        rows = [
            inv
            for inv in rows
            if (d := _date_of(inv, field_name)) is not None and start <= d <= end
        ]
        rows.sort(key=lambda inv: inv.id)
        return rows

    def _common(self, inv: SimInvoice, origin: str) -> dict[str, Any]:
        return {
            "id_fatura": inv.id,
            "nosso_numero": inv.our_number,
            "linha_digitavel": inv.digitable_line,
            "codigo_barras": inv.barcode,
            "tipo_cobranca": inv.kind,
            "link": f"{origin}/pdf/fatura/{self.pdf_token(inv)}",
        }

    def pdf_token(self, inv: SimInvoice) -> str:
        """The unguessable part of an invoice's public PDF link."""
        digest = hashlib.sha256(f"{self.seed}:{inv.id}".encode()).hexdigest()[:16]
        return f"{inv.id:x}.{digest}"

    def pdf(self, inv: SimInvoice) -> bytes:
        """The invoice's PDF (a boleto slip when it is one), ~200 KB."""
        lines = [
            f"Cliente: {inv.customer.name} ({inv.customer.document})",
            f"Vencimento: {inv.due:%d/%m/%Y}   Valor: R$ {inv.amount}",
            f"Linha digitavel: {inv.digitable_line or '-'}",
        ]
        return pdf_bytes(f"Fatura {inv.id}", lines, min_size=200_000)

    async def _pdf(self, request: web.Request) -> web.Response:
        token = request.match_info["token"]
        ident, _, _ = token.partition(".")
        inv = next((i for i in self.invoices if f"{i.id:x}" == ident), None)
        if inv is None or token != self.pdf_token(inv):
            return web.Response(
                status=404, text="<h1>Not Found</h1>", content_type="text/html"
            )
        return web.Response(body=self.pdf(inv), content_type="application/pdf")

    def _row_cliente(self, inv: SimInvoice, origin: str) -> dict[str, Any]:
        cust = inv.customer
        lines = [
            {"descricao": text, "valor": _number(value)} for text, value in inv.lines
        ]
        row = {
            **self._common(inv, origin),
            "nosso_numero_dv": inv.our_number_dv,
            "especie_dinheiro": "R$",
            "valor": _number(inv.amount),
            "data_vencimento": f"{inv.due:%d/%m/%Y}",
            "data_cadastro": f"{inv.created:%d/%m/%Y}",
            "data_documento": f"{inv.created:%d/%m/%Y}",
            "data_pagamento": f"{inv.paid_on:%d/%m/%Y}" if inv.paid_on else None,
            "pix_copia_cola": inv.pix,
            "detalhamento": lines[0] if cust.legacy_shape and lines else lines,
            "cliente": {
                "codigo_cliente": int(cust.code),
                "nome_razaosocial": cust.name,
                "cpf_cnpj": cust.document,
                "servico": {
                    "id_cliente_servico": cust.service_id,
                    "nome": cust.plan,
                    "status": "servico_habilitado",
                },
            },
        }
        if cust.status_fields:
            overdue = inv.paid_on is None and inv.due < self.today
            row["status"] = (
                "quitado" if inv.paid_on else ("vencido" if overdue else "em_aberto")
            )
            row["quitado"] = inv.paid_on is not None
            row["valor_pago"] = _number(inv.paid_amount) if inv.paid_amount else None
        return row

    def _row_fatura(
        self, inv: SimInvoice, origin: str, *, pix: bool, detailed: bool
    ) -> dict[str, Any]:
        cust = inv.customer
        row: dict[str, Any] = {
            **self._common(inv, origin),
            "id_carne": None,
            "id_cliente_servico": cust.service_id,
            "data_vencimento": inv.due.isoformat(),
            "data_pagamento": inv.paid_on.isoformat() if inv.paid_on else None,
            "data_cadastro": f"{inv.created.isoformat()} 09:14:32",
            "valor": str(inv.amount),
            "valor_pago": str(inv.paid_amount) if inv.paid_amount else None,
            "valor_desconto": 0,
            "cliente": {
                "id_cliente": cust.client_id,
                "codigo_cliente": int(cust.code),
                "nome_razaosocial": cust.name,
                "cpf_cnpj": cust.document,
                "tipo_pessoa": "pj" if len(cust.document) == 14 else "pf",  # noqa: PLR2004
            },
        }
        if pix:
            row["pix_copia_e_cola"] = inv.pix
        if detailed:
            row["cobrancas"] = [
                {"id_cobranca": inv.id * 10 + i, "descricao": text, "valor": str(value)}
                for i, (text, value) in enumerate(inv.lines)
            ]
        return row

    async def _admin_pay(self, request: web.Request) -> web.Response:
        try:
            inv = self.mark_paid(int(request.match_info["invoice_id"]))
        except (KeyError, ValueError):
            return _json({"error": "no such invoice"}, status=404)
        return _json({"id_fatura": inv.id, "data_pagamento": self.today.isoformat()})

    async def _admin_revoke(self, _request: web.Request) -> web.Response:
        self.revoke_tokens()
        return _json({"revoked": True})


_json = json_response


def _number(value: Decimal) -> int | float:
    """Hubsoft writes `valor` as a JSON number: 10 or 132.5."""
    return int(value) if value == value.to_integral_value() else float(value)


def _int(raw: str, name: str, low: int, high: int) -> int:
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise Invalid(f"O campo {name} deve ser um número entre {low} e {high}.")
    return int(raw)


def _choice(raw: str, name: str, allowed: set[str]) -> str:
    if raw not in allowed:
        raise Invalid(
            f"O campo {name} deve ser um dos valores: {', '.join(sorted(allowed))}."
        )
    return raw


def _iso(raw: str | None, name: str) -> date | None:
    if raw is None:
        return None
    if not ISO_RE.match(raw):
        raise Invalid(f"O campo {name} deve estar no formato YYYY-MM-DD.")
    try:
        return date.fromisoformat(raw)
    except ValueError as err:
        raise Invalid(f"O campo {name} não é uma data válida.") from err


def _customer_matches(inv: SimInvoice, busca: str, termo: str) -> bool:
    cust = inv.customer
    value = {
        "cpf_cnpj": cust.document,
        "codigo_cliente": cust.code,
        "id_cliente_servico": str(cust.service_id),
        "id_cliente": str(cust.client_id),
    }[busca]
    wanted = re.sub(r"\D", "", termo) if busca == "cpf_cnpj" else termo.strip()
    return value == wanted


def _date_of(inv: SimInvoice, name: str) -> date | None:
    return {
        "data_vencimento": inv.due,
        "data_pagamento": inv.paid_on,
        "data_cadastro": inv.created,
    }[name]


def _order_value(inv: SimInvoice, name: str) -> Any:
    if name == "valor":
        return inv.amount
    value = _date_of(inv, name)
    return value or date.max


def _date_window(rows: list[SimInvoice], q: Any) -> list[SimInvoice]:
    start, end = (
        _iso(q.get("data_inicio"), "data_inicio"),
        _iso(q.get("data_fim"), "data_fim"),
    )
    if start is None and end is None:
        return rows
    name = _choice(q.get("tipo_data", "data_vencimento"), "tipo_data", DATE_FIELDS)
    return [
        inv
        for inv in rows
        if (d := _date_of(inv, name)) is not None
        and (start is None or d >= start)
        and (end is None or d <= end)
    ]


def demo_upstream(
    today: date | None = None, sim: HubsoftSimulator | None = None
) -> DemoUpstream:
    """The simulator and the connection that points the gateway at it (demo mode)."""
    today = today or sao_paulo_today()
    month_ago = today - timedelta(days=30)
    sim = sim or HubsoftSimulator(today=today, token_lifetime_s=3600)
    return DemoUpstream(
        provider="hubsoft",
        connection_id="demo-hubsoft",
        app=sim.app(),
        secrets={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "username": USERNAME,
            "password": PASSWORD,
        },
        examples=[
            (
                "Maria Silva's invoices, paid ones too",
                "/v1/invoices?customer_document=123.456.789-09",
            ),
            (
                "Open and overdue only, newest due first",
                "/v1/invoices?customer_document=12345678909&status=open,overdue&sort=-due_date",
            ),
            (
                "A customer with 70+ invoices, paged by 20",
                "/v1/invoices?connection=demo-hubsoft&customer_id=2001&limit=20",
            ),
            (
                "Tenant-wide, one month of due dates",
                f"/v1/invoices?due_from={month_ago}&due_to={today}&limit=5",
            ),
        ],
        set_fault=sim.board.set,
        mark_paid_path=f"/__sim/pay/{_demo_unpaid(sim)}",
    )


def _demo_unpaid(sim: HubsoftSimulator) -> int:
    """Maria Silva's most recent unpaid invoice: the one the demo's pay switch settles."""
    unpaid = [
        inv
        for inv in sim.invoices
        if inv.paid_on is None and inv.customer.code == DOC_CUSTOMER[0]
    ]
    return max(unpaid, key=lambda inv: inv.due).id


_conforms: DemoBuilder = (
    demo_upstream  # mypy proves the demo builder has the core's type
)

"""A faithful Xarios simulator: identity server + billingdata API, for demo and tests.

Identity (IdentityServer-style): `/connect/authorize` (the human's consent, auto-approved
here, redirecting to the loopback `redirect_uri` with `code` and `state`) and
`/connect/token` with the authorization-code and refresh-token grants. Access tokens are
short-lived (configurable, 60 s by default); refresh tokens rotate and are one-time: using
an old one is detected as reuse and revokes the whole consent, as real identity servers
with reuse detection do. Billing: list (`invoiceid`, `customerName`, 7-digit fractional
timestamps), get, the detail ZIP (a JSON with `invoiceId`/`accountName`/`invoiceItems` and
a CSV) and the summary PDF, the documented 404 envelope, a bare 401, seeded tenants.
"""

from __future__ import annotations

import csv
import io
import json
import random
import secrets
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from yarl import URL

from adapters.simkit import FaultBoard, json_response, pdf_bytes
from gateway.upstream.providers import DemoBuilder, DemoUpstream

CLIENT_ID = "demo-xarios-client"
CLIENT_SECRET = "demo-xarios-secret"
FAULTS = frozenset({"bad_zip"})  # plus simkit's generic ones
NAMESPACE = uuid.UUID("6f1c1de0-8e57-4c1e-9a51-1a2b3c4d5e6f")
PRODUCTS = [
    ("Essential User", 4.5),
    ("Professional User", 9.0),
    ("Analytics Add-on", 2.5),
]


def utc_today() -> date:
    """Today in UTC (the reseller platform is regional, not Brazilian)."""
    return datetime.now(UTC).date()


def stamp(day: date, *, end: bool = False, dotnet: bool = False) -> str:
    """Timestamps as Xarios writes them: list style, or .NET 7-digit without offset."""
    if dotnet:
        return f"{day.isoformat()}T00:00:00.0000000"
    return (
        f"{day.isoformat()}T23:59:59.999+00:00"
        if end
        else f"{day.isoformat()}T00:00:00.000+00:00"
    )


@dataclass
class SimBill:
    """One invoice as stored: tenant, period, items (product, quantity, unit price)."""

    id: str
    number: str
    tenant: str
    tenant_name: str
    start: date
    end: date
    items: list[tuple[str, int, float]]

    @property
    def value(self) -> float:
        """Total, rounded like the upstream's doubles."""
        return round(sum(q * p for _, q, p in self.items), 2)


@dataclass
class Family:
    """One consent: its current refresh token and whether reuse revoked it."""

    current: str
    revoked: bool = False


@dataclass
class XariosSimulator:
    """State of one simulated Xarios reseller account and its identity server."""

    today: date = field(default_factory=utc_today)
    tenants: int = 5
    months: int = 14
    access_lifetime_s: int = 60
    lowercase_detail: bool = False  # detail JSON keys as the schema table spells them
    board: FaultBoard = field(default_factory=lambda: FaultBoard.for_api(FAULTS))
    token_calls: int = 0
    reuses: int = 0  # refresh tokens presented a second time (each revoked a consent)

    def __post_init__(self) -> None:
        """Seed tenants and invoices; empty token tables."""
        self.bills = self._seed()
        self._codes: dict[str, tuple[str, str]] = {}  # code -> (redirect_uri, family)
        self._families: dict[str, Family] = {}
        self._refresh_family: dict[str, str] = {}  # every refresh token ever issued
        self._access: dict[str, tuple[float, str]] = {}  # token -> (expiry, family)

    def _seed(self) -> list[SimBill]:
        rng = random.Random(11)
        bills = []
        number = 9000001
        for t in range(self.tenants):
            tenant = str(uuid.uuid5(NAMESPACE, f"tenant-{t}"))
            for back in range(self.months, 0, -1):
                index = self.today.year * 12 + self.today.month - 1 - back
                start = date(index // 12, index % 12 + 1, 1)
                end = date((index + 1) // 12, (index + 1) % 12 + 1, 1) - timedelta(
                    days=1
                )
                items = [
                    (name, rng.randint(1, 40), price)
                    for name, price in PRODUCTS[: 1 + t % 3]
                ]
                bill_id = str(uuid.uuid5(NAMESPACE, f"invoice-{t}-{back}"))
                bills.append(
                    SimBill(
                        bill_id,
                        str(number),
                        tenant,
                        f"Reseller {t + 1}",
                        start,
                        end,
                        items,
                    )
                )
                number += 1
        return bills

    def tenant_id(self, index: int) -> str:
        """The id of the seeded tenant number `index` (0-based)."""
        return str(uuid.uuid5(NAMESPACE, f"tenant-{index}"))

    # --- controls ---------------------------------------------------------------------
    def issue_refresh_token(self) -> str:
        """A consented refresh token, as if a human had approved (demo and tests)."""
        family = secrets.token_hex(8)
        refresh = "rt_" + secrets.token_urlsafe(24)
        self._families[family] = Family(refresh)
        self._refresh_family[refresh] = family
        return refresh

    def consent_alive(self, refresh: str) -> bool:
        """Whether the consent that issued `refresh` still stands (no reuse revoked it)."""
        family = self._families.get(self._refresh_family.get(refresh, ""))
        return family is not None and not family.revoked

    def expire_access_tokens(self) -> None:
        """Make every access token expired now (refresh tokens stay valid)."""
        self._access = {t: (0.0, fam) for t, (_, fam) in self._access.items()}

    def calls(self, path_suffix: str) -> list[dict[str, Any]]:
        """Logged requests whose path ends with `path_suffix`."""
        return self.board.calls(path_suffix)

    # --- app --------------------------------------------------------------------------
    def app(self) -> web.Application:
        """Identity server and billing API on one app (hosts differ in production)."""
        app = web.Application(middlewares=[self.board.middleware])
        app.router.add_get("/connect/authorize", self._authorize)
        app.router.add_post("/connect/token", self._token)
        app.router.add_get("/api/v1.0/billingdata", self._list)
        app.router.add_get("/api/v1.0/billingdata/{id}", self._get)
        app.router.add_get("/api/v1.0/billingdata/{id}/detail", self._detail)
        app.router.add_get("/api/v1.0/billingdata/{id}/summary", self._summary)
        self.board.add_admin_routes(app)
        return app

    async def _authorize(self, request: web.Request) -> web.Response:
        q = request.query
        redirect = q.get("redirect_uri", "")
        valid_redirect = URL(redirect).host in {"127.0.0.1", "localhost"}
        if q.get("client_id") != CLIENT_ID or not valid_redirect:
            return web.Response(
                status=400, text="invalid_request: client or redirect_uri"
            )
        if (
            q.get("response_type") != "code"
            or "offline_access" not in q.get("scope", "").split()
        ):
            target = URL(redirect).with_query(
                error="invalid_scope", state=q.get("state", "")
            )
            raise web.HTTPFound(str(target))
        code = secrets.token_urlsafe(16)
        family = secrets.token_hex(8)
        self._codes[code] = (redirect, family)
        raise web.HTTPFound(
            str(URL(redirect).with_query(code=code, state=q.get("state", "")))
        )

    async def _token(self, request: web.Request) -> web.Response:
        self.token_calls += 1
        form = await request.post()
        if (
            form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
        ):
            return json_response({"error": "invalid_client"}, status=401)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._grant_code(
                str(form.get("code")), str(form.get("redirect_uri"))
            )
        if grant == "refresh_token":
            return self._grant_refresh(str(form.get("refresh_token")))
        return json_response({"error": "unsupported_grant_type"}, status=400)

    def _grant_code(self, code: str, redirect_uri: str) -> web.Response:
        entry = self._codes.pop(code, None)  # codes are single-use
        if entry is None or entry[0] != redirect_uri:
            return json_response({"error": "invalid_grant"}, status=400)
        self._families[entry[1]] = Family("")
        return self._issue(entry[1])

    def _grant_refresh(self, presented: str) -> web.Response:
        family_id = self._refresh_family.get(presented, "")
        family = self._families.get(family_id)
        if family is None or family.revoked:
            return json_response({"error": "invalid_grant"}, status=400)
        if presented != family.current:
            self.reuses += 1
            family.revoked = True  # reuse detected: the whole consent is void
            return json_response(
                {"error": "invalid_grant", "error_description": "refresh token reused"},
                status=400,
            )
        return self._issue(family_id)

    def _issue(self, family_id: str) -> web.Response:
        access = "eyJhbGciOiJSUzI1NiJ9." + secrets.token_urlsafe(24)
        refresh = "rt_" + secrets.token_urlsafe(24)
        self._families[family_id].current = refresh
        self._refresh_family[refresh] = family_id
        self._access[access] = (time.time() + self.access_lifetime_s, family_id)
        return json_response(
            {
                "access_token": access,
                "expires_in": self.access_lifetime_s,
                "token_type": "Bearer",
                "refresh_token": refresh,
                "scope": "openid offline_access onboarding",
            }
        )

    async def _guard(self, request: web.Request) -> web.Response | None:
        """A bare 401 unless the bearer token is live (generic faults ran already)."""
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expiry, family = (
            self._access.get(token, (0.0, "")) if scheme == "Bearer" else (0.0, "")
        )
        fam = self._families.get(family)
        if expiry < time.time() or fam is None or fam.revoked:
            return web.Response(status=401)
        return None

    def _find(self, request: web.Request) -> SimBill | web.Response:
        bill = next((b for b in self.bills if b.id == request.match_info["id"]), None)
        if bill is None:
            envelope = {
                "error": 404,
                "message": "Not Found",
                "status": "error",
                "timestamp": _now(),
            }
            return json_response(envelope, status=404)
        return bill

    def _item(self, bill: SimBill) -> dict[str, Any]:
        return {
            "tenantId": bill.tenant,
            "invoiceid": bill.id,
            "invoiceNumber": bill.number,
            "customerName": bill.tenant_name,
            "billingPeriodStart": stamp(bill.start),
            "billingPeriodEnd": stamp(bill.end, end=True),
            "invoiceValue": bill.value,
        }

    async def _list(self, request: web.Request) -> web.Response:
        if (short := await self._guard(request)) is not None:
            return short
        data = [self._item(b) for b in self.bills]
        return json_response(
            {
                "page_size": len(data),
                "data": data,
                "status": "success",
                "timestamp": _now(),
            }
        )

    async def _get(self, request: web.Request) -> web.Response:
        if (short := await self._guard(request)) is not None:
            return short
        bill = self._find(request)
        if isinstance(bill, web.Response):
            return bill
        return json_response(
            {"data": self._item(bill), "status": "success", "timestamp": _now()}
        )

    def detail_json(self, bill: SimBill) -> dict[str, Any]:
        """The detailed JSON inside the detail ZIP."""
        items = [
            {
                "id": n + 1,
                "quantity": qty,
                "value": round(qty * price, 2),
                "fromDate": stamp(bill.start, dotnet=True),
                "toDate": stamp(bill.end, dotnet=True),
                "calculationOrder": n,
                "operatorUsed": "PRICE",
                "operatorValueUsed": price,
                "productTagName": f"{name} #XDM{n + 1:05d}",
                "billingOutputTags": ["PurchaseResult"],
                "stringValues": [{"name": "TenantName", "value": bill.tenant_name}],
                "numericValues": [{"name": "customer_licence_count", "value": qty}],
            }
            for n, (name, qty, price) in enumerate(bill.items)
        ]
        return {
            "tenantId": bill.tenant,
            "invoiceId": bill.id,
            "invoiceNumber": bill.number,
            "accountName": bill.tenant_name,
            "billingPeriodStart": stamp(bill.start, dotnet=True),
            "billingPeriodEnd": stamp(bill.end, dotnet=True),
            "invoiceDate": stamp(bill.end + timedelta(days=1), dotnet=True),
            "invoiceValue": bill.value,
            "invoiceItems": items,
        }

    async def _detail(self, request: web.Request) -> web.Response:
        if (short := await self._guard(request)) is not None:
            return short
        bill = self._find(request)
        if isinstance(bill, web.Response):
            return bill
        if bad := self.board.take("bad_zip"):
            return web.Response(
                body=hostile_zip(str(bad)), content_type="application/octet-stream"
            )
        detail = self.detail_json(bill)
        if self.lowercase_detail:  # the spelling of Xarios's schema table
            detail = _lowercase_keys(detail)
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(["Product", "Quantity", "Value"])
        writer.writerows(
            [i["productTagName"], i["quantity"], i["value"]]
            for i in self.detail_json(bill)["invoiceItems"]
        )
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"invoice_{bill.number}.json", web_json(detail))
            archive.writestr(f"invoice_{bill.number}.csv", rows.getvalue())
        return web.Response(
            body=buffer.getvalue(), content_type="application/octet-stream"
        )

    def summary_pdf(self, bill: SimBill) -> bytes:
        """The summary PDF of an invoice (~300 KB)."""
        lines = [
            f"{bill.tenant_name}  {bill.start} .. {bill.end}",
            f"Total {bill.value:.2f}",
        ]
        return pdf_bytes(f"Invoice {bill.number}", lines, min_size=300_000)

    async def _summary(self, request: web.Request) -> web.Response:
        if (short := await self._guard(request)) is not None:
            return short
        bill = self._find(request)
        if isinstance(bill, web.Response):
            return bill
        return web.Response(
            body=self.summary_pdf(bill), content_type="application/octet-stream"
        )


def hostile_zip(kind: str) -> bytes:
    """A detail archive broken the way `kind` says (the `bad_zip` fault's value).

    `corrupt_deflate`: a valid directory over a damaged deflate stream;
    `unknown_method`: a member compressed with a method number no reader knows;
    `encrypted`: the member's encryption flag set; anything else: not a ZIP at all.
    """
    if kind not in {"corrupt_deflate", "unknown_method", "encrypted"}:
        return b"PK\x03\x04 this is not really a zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("invoice.json", '{"invoiceItems": []}' * 50)
    data = bytearray(buffer.getvalue())
    local, central = 0, data.find(b"PK\x01\x02")
    if kind == "corrupt_deflate":
        data[30 + len("invoice.json") : 40 + len("invoice.json")] = b"\xff" * 10
    elif kind == "unknown_method":
        data[local + 8 : local + 10] = data[central + 10 : central + 12] = b"\x63\x00"
    else:
        data[local + 6] |= 1
        data[central + 8] |= 1
    return bytes(data)


def web_json(payload: Any) -> str:
    """Pretty JSON text, as the vendor's detail file is."""
    return json.dumps(payload, indent=2)


def _now() -> str:
    """A .NET-style UTC timestamp with 7 fractional digits."""
    now = time.time()
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
        + f".{int(now % 1 * 1e7):07d}Z"
    )


def demo_upstream(
    today: date | None = None, sim: XariosSimulator | None = None
) -> DemoUpstream:
    """The simulator and the connection pointing at it; tenant 1 billed to Maria's CPF."""
    today = today or utc_today()
    sim = sim or XariosSimulator(today=today)
    index = today.year * 12 + today.month - 3
    first = date(index // 12, index % 12 + 1, 1)
    return DemoUpstream(
        provider="xarios",
        connection_id="demo-xarios",
        app=sim.app(),
        secrets={
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "refresh_token": sim.issue_refresh_token(),
        },
        examples=[
            (
                "Xarios invoices whose billing period touches the month before last",
                f"/v1/invoices?provider=xarios&period_from={first}&period_to={first}",
            ),
        ],
        options={
            "auth_url": "{base_url}",
            "document_tenants": {"12345678909": sim.tenant_id(0)},
        },
        currency="USD",
        set_fault=sim.board.set,
    )


def _lowercase_keys(value: Any) -> Any:
    """Every object key lowercased, at every depth."""
    if isinstance(value, dict):
        return {str(k).lower(): _lowercase_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lowercase_keys(v) for v in value]
    return value


_conforms: DemoBuilder = (
    demo_upstream  # mypy proves the demo builder has the core's type
)

"""A tiny billing API for the test-only fourth provider: password grant, paged invoices.

`POST /oauth/token` (password grant) issues bearer tokens; `GET /api/v2/invoices?document=`
lists a customer's invoices five a page, the next page's number in the body;
`/api/v2/invoices/{id}` reads one. No documents. simkit's faults and request log.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from adapters.simkit import FaultBoard, json_response
from gateway.upstream.providers import DemoBuilder, DemoUpstream

CREDENTIALS = {
    name: f"fourth-{name}"
    for name in ("client_id", "client_secret", "username", "password")
}
PAGE = 5
STATES = ("paid", "open", "paid", "cancelled", "open", "paid")
PEOPLE = (("C-100", "12345678909", "Maria Silva"), ("C-200", "98765432100", "Ana Lima"))


@dataclass
class FourthSimulator:
    """Two customers with a dozen invoices each, due two weeks apart."""

    today: date
    board: FaultBoard = field(default_factory=lambda: FaultBoard.for_api(frozenset()))
    tokens: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        """Seed the invoices."""
        self.rows: list[dict[str, Any]] = [
            {
                "id": f"F{n:04d}",
                "number": f"NF-{n}",
                "state": STATES[n % len(STATES)],
                "total": f"{50 + n}.90",
                "due": (self.today - timedelta(days=15 * n - 40)).isoformat(),
                **dict(zip(("customer_id", "document", "name"), who, strict=True)),
            }
            for n, who in enumerate(PEOPLE * 12)
        ]

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self.board.middleware])
        app.router.add_post("/oauth/token", self._token)
        app.router.add_get("/api/v2/invoices", self._invoices)
        app.router.add_get("/api/v2/invoices/{id}", self._invoices)
        self.board.add_admin_routes(app)
        return app

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        wanted = {"grant_type": "password", **CREDENTIALS}
        if any(form.get(k) != v for k, v in wanted.items()):
            return json_response({"error": "invalid_grant"}, status=400)
        self.tokens.add(token := secrets.token_urlsafe(16))
        return json_response({"access_token": token, "expires_in": 600})

    async def _invoices(self, request: web.Request) -> web.Response:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.tokens:
            return web.Response(status=401)
        if wanted := request.match_info.get("id"):
            found = [r for r in self.rows if r["id"] == wanted]
            body = {"invoice": found[0]} if found else {}
            return json_response(body, status=200 if found else 404)
        q = request.query
        rows = [r for r in self.rows if r["document"] == q.get("document")]
        page = int(q["page"]) if q.get("page", "").isdigit() else 1
        more = page * PAGE < len(rows)
        chunk = rows[(page - 1) * PAGE : page * PAGE]
        return json_response(
            {"invoices": chunk, "next_page": page + 1 if more else None}
        )


def demo_upstream(
    today: date | None = None, sim: FourthSimulator | None = None
) -> DemoUpstream:
    """The simulator (`sim`, else a fresh one) and the connection pointing at it."""
    sim = sim or FourthSimulator(today or datetime.now(UTC).date())
    app, secrets = sim.app(), dict(CREDENTIALS)
    return DemoUpstream(
        "fourth", "demo-fourth", app, secrets, [], set_fault=sim.board.set
    )


_conforms: DemoBuilder = (
    demo_upstream  # mypy proves the demo builder has the core's type
)

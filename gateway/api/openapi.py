"""The OpenAPI 3.1 description of the API (`/openapi.json`) and its docs page (`/docs`).

Every operation has an `operationId`, its parameters with the bounds the parsers enforce,
and a response (schema and example) for every status it can answer. Vocabularies come
from the code that enforces them, so the document cannot drift from what the API
accepts; the test suite checks that every route is described, and validates every
response it provokes against this document. `/docs` is Swagger UI, served from the
assets the `swagger-ui-bundle-v2` package ships (no CDN).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from gateway import jsoncodec
from gateway.api.deadlines import MAX_DEADLINE_MS, MIN_DEADLINE_MS
from gateway.api.edge import MAX_HEADER_FIELD, MAX_REQUEST_LINE
from gateway.api.fields import CANONICAL_ID_RE
from gateway.api.handlers import AUDIT_CURSOR_RE, MAX_AUDIT_PAGE
from gateway.api.openapi_schemas import PROBLEM_EXAMPLE, SCHEMAS, ref
from gateway.api.params import (
    CURSOR_RE,
    ISO_DATE_RE,
    MAX_LIMIT,
    MAX_VALUE_LEN,
    REMOTE_ID_RE,
)
from gateway.events.openapi import EVENT_PATHS
from gateway.invoices.listing import SORTS
from gateway.invoices.models import InvoiceStatus

DOCS_ASSETS = "/docs/assets"
ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {
        "type": "string",
        "pattern": f"^{CANONICAL_ID_RE.pattern}$",
        "maxLength": 256,
    },
    "description": "canonical id `provider:connection:remote_id`",
    "example": "hubsoft:acme-isp:1099-44612",
}
DEADLINE = {
    "name": "X-Deadline-Ms",
    "in": "header",
    "schema": {
        "type": "integer",
        "minimum": MIN_DEADLINE_MS,
        "maximum": MAX_DEADLINE_MS,
    },
    "description": "a tighter deadline for this request, in milliseconds",
}
ETAG_HEADERS = {
    "ETag": {"schema": {"type": "string"}, "description": "weak validator"},
    "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
}
TEXT = {"type": "string", "maxLength": MAX_VALUE_LEN}
STATUS_WORDS = "|".join(s.value for s in InvoiceStatus)
DAY = {
    "type": "string",
    "format": "date",
    "pattern": f"^{ISO_DATE_RE.pattern}$",
    "example": "2026-11-30",
}
REMOTE_ID = {"type": "string", "pattern": f"^{REMOTE_ID_RE.pattern}$"}
WORDS = {"type": "string", "pattern": "^[a-z0-9_-]{1,63}(,[a-z0-9_-]{1,63})*$"}


def _q(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema or TEXT,
    }


FILTERS = [
    _q(
        "customer_document",
        "CPF or CNPJ, digits or punctuated (check digits validated)",
        {
            "type": "string",
            "pattern": "^[0-9./ -]{11,28}$",
            "example": "123.456.789-09",
        },
    ),
    _q(
        "customer_id",
        "the customer's id at the upstream; needs `connection`",
        REMOTE_ID,
    ),
    _q(
        "contract_id",
        "the customer's service/contract id at the upstream; needs `connection`",
        REMOTE_ID,
    ),
    _q(
        "status",
        "comma list of " + ", ".join(s.value for s in InvoiceStatus),
        {
            "type": "string",
            "pattern": f"^({STATUS_WORDS})(,({STATUS_WORDS}))*$",
        },
    ),
    _q("due_from", "due date from (inclusive)", DAY),
    _q("due_to", "due date to (inclusive)", DAY),
    _q("period_from", "billing periods overlapping from", DAY),
    _q("period_to", "billing periods overlapping to", DAY),
    _q("provider", "comma list of providers to ask", WORDS),
    _q("connection", "comma list of connections to ask", WORDS),
]
PAGING = [
    _q("sort", "merged order; ties by id", {"type": "string", "enum": list(SORTS)}),
    _q("limit", "page size", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    _q(
        "cursor",
        "`next_cursor` of the previous page (same filters and sort)",
        {"type": "string", "pattern": f"^{CURSOR_RE.pattern}$"},
    ),
]
INCLUDE = _q(
    "include",
    "`remote` adds each upstream record",
    {"type": "string", "enum": ["remote"]},
)


def _json(schema: str, description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {"application/json": {"schema": ref(schema)}},
        **extra,
    }


def _cached(schema: str) -> dict[str, Any]:
    ok = _json(schema, "OK")
    ok["headers"] = ETAG_HEADERS
    return ok


PROBLEM_WHY = {
    "400": "invalid input: `errors` names each field",
    "401": "missing or unknown API key",
    "403": "the API key lacks the scope or connection",
    "404": "no such resource visible to this caller",
    "409": "a request with this Idempotency-Key is still in progress",
    "408": "the request body did not arrive within the body timeout",
    "410": "the cursor is older than the events' retention",
    "413": "the body is larger than the stated limit",
    "422": "Idempotency-Key reused with another body, or upstream refused the fields",
    "502": "the upstream failed (`sources` or `connection` says which)",
    "503": "a shared store is unavailable (nothing was written), or the process is "
    "at its connection cap; retry later",
    "504": "the upstream did not answer in time",
}


def _problems(*codes: str) -> dict[str, Any]:
    return {code: {"$ref": f"#/components/responses/P{code}"} for code in codes}


def _problem_response(code: str, why: str) -> dict[str, Any]:
    example = (
        PROBLEM_EXAMPLE
        if code == "400"
        else {
            "type": "urn:invoice-gateway:problem:example",
            "title": "Example",
            "status": int(code),
            "detail": why,
        }
    )
    return {
        "description": why,
        "headers": {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}},
        "content": {
            "application/problem+json": {"schema": ref("Problem"), "example": example}
        },
    }


# 503: a process past its connection cap, or a shared store away (writes, audit).
READ_ERRORS = ("400", "401", "403", "503")
NOT_MODIFIED = {"304": {"description": "not modified (`If-None-Match` matched)"}}
BODY_ERRORS = ("400", "408", "413")  # 408: the body did not arrive in time


def _body(schema: str) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": ref(schema)}},
    }


PATHS: dict[str, Any] = {
    "/v1/invoices": {
        "get": {
            "operationId": "listInvoices",
            "summary": "One merged, sorted, paged invoice list across upstreams",
            "parameters": [*FILTERS, *PAGING, INCLUDE, DEADLINE],
            "responses": {
                "200": _cached("InvoiceList"),
                **NOT_MODIFIED,
                **_problems(*READ_ERRORS, "502", "504"),
            },
        }
    },
    "/v1/invoices/summary": {
        "get": {
            "operationId": "summarizeInvoices",
            "summary": "Totals per currency and status, overdue aging buckets",
            "parameters": [*FILTERS, DEADLINE],
            "responses": {
                "200": _cached("Summary"),
                **NOT_MODIFIED,
                **_problems(*READ_ERRORS, "502", "504"),
            },
        }
    },
    "/v1/invoices/{id}": {
        "get": {
            "operationId": "getInvoice",
            "summary": "One invoice",
            "parameters": [ID, INCLUDE, DEADLINE],
            "responses": {
                "200": _cached("Invoice"),
                **NOT_MODIFIED,
                **_problems(*READ_ERRORS, "404", "502", "504"),
            },
        }
    },
    "/v1/invoices/{id}/document": {
        "get": {
            "operationId": "getInvoiceDocument",
            "summary": "The invoice's document (PDF), streamed",
            "parameters": [ID, DEADLINE],
            "responses": {
                "200": {
                    "description": "the document",
                    "content": {
                        "application/pdf": {
                            "schema": {"type": "string", "format": "binary"}
                        },
                    },
                },
                **_problems(*READ_ERRORS, "404", "502", "504"),
            },
        }
    },
    "/v1/sale-accounts": {
        "get": {
            "operationId": "listSaleAccounts",
            "summary": "Sale accounts of a connection",
            "parameters": [
                {
                    **_q("connection", "a connection that keeps sale accounts", WORDS),
                    "required": True,
                },
                DEADLINE,
            ],
            "responses": {
                "200": _cached("SaleAccountList"),
                **NOT_MODIFIED,
                **_problems(*READ_ERRORS, "502", "504"),
            },
        },
        "post": {
            "operationId": "createSaleAccount",
            "summary": "Create a sale account (send an Idempotency-Key)",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "description": "1-255 visible ASCII characters; a retry replays",
                    "schema": {
                        "type": "string",
                        "pattern": "^[\\x21-\\x7e]{1,255}$",
                    },
                },
                DEADLINE,
            ],
            "requestBody": _body("SaleAccountCreate"),
            "responses": {
                "201": {
                    **_json(
                        "SaleAccount",
                        "created (or replayed: `Idempotent-Replayed: true`)",
                    ),
                    "headers": {
                        "X-Request-ID": {"$ref": "#/components/headers/RequestId"},
                        "Location": {
                            "description": "the new account's URL",
                            "schema": {"type": "string"},
                        },
                    },
                },
                **_problems(
                    *READ_ERRORS,
                    *BODY_ERRORS,
                    "404",
                    "409",
                    "422",
                    "502",
                    "503",
                    "504",
                ),
            },
        },
    },
    "/v1/sale-accounts/{id}": {
        "get": {
            "operationId": "getSaleAccount",
            "summary": "One sale account",
            "parameters": [ID, DEADLINE],
            "responses": {
                "200": _cached("SaleAccount"),
                **NOT_MODIFIED,
                **_problems(*READ_ERRORS, "404", "502", "504"),
            },
        },
        "put": {
            "operationId": "updateSaleAccount",
            "summary": "Change the given fields",
            "parameters": [ID, DEADLINE],
            "requestBody": _body("SaleAccountChange"),
            "responses": {
                "200": _cached("SaleAccount"),
                **NOT_MODIFIED,
                **_problems(*READ_ERRORS, *BODY_ERRORS, "404", "422", "502", "504"),
            },
        },
        "delete": {
            "operationId": "deleteSaleAccount",
            "summary": "Delete (the upstream schedules it)",
            "parameters": [ID, DEADLINE],
            "responses": {
                "202": _json("DeletionScheduled", "deletion scheduled"),
                **_problems(*READ_ERRORS, "404", "502", "504"),
            },
        },
    },
    "/v1/connections": {
        "get": {
            "operationId": "listConnections",
            "summary": "Connections: health, breaker, token state (not for end users)",
            "responses": {
                "200": _json("ConnectionList", "OK"),
                **_problems(*READ_ERRORS),
            },
        }
    },
    "/v1/audit": {
        "get": {
            "operationId": "readAudit",
            "summary": "The audit trail, newest first (audit:read keys; needs Redis)",
            "parameters": [
                _q(
                    "limit",
                    "events per page",
                    {"type": "integer", "minimum": 1, "maximum": MAX_AUDIT_PAGE},
                ),
                _q(
                    "before",
                    "`next_cursor` of the previous page",
                    {"type": "string", "pattern": f"^{AUDIT_CURSOR_RE.pattern}$"},
                ),
            ],
            "responses": {
                "200": _json("AuditPage", "OK"),
                **_problems(*READ_ERRORS, "404", "503"),
            },
        }
    },
    "/healthz": {
        "get": {
            "operationId": "liveness",
            "summary": "Liveness",
            "security": [],
            "responses": {"200": _json("Health", "alive")},
        }
    },
    "/readyz": {
        "get": {
            "operationId": "readiness",
            "summary": "Readiness (never calls an upstream)",
            "security": [],
            "responses": {"200": _json("Readiness", "ready")},
        }
    },
    "/metrics": {
        "get": {
            "operationId": "metrics",
            "summary": "Prometheus exposition",
            "security": [],
            "responses": {
                "200": {
                    "description": "metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        }
    },
}

EVENT_OPERATION_IDS = {
    ("/v1/events", "get"): "listEvents",
    ("/v1/events/stream", "get"): "streamEvents",
    ("/v1/webhooks/{name}/deliveries", "get"): "listWebhookDeliveries",
    (
        "/v1/webhooks/{name}/deliveries/{event_id}/replay",
        "post",
    ): "replayWebhookDelivery",
}


def _with_events() -> None:
    """Fold the events feature's paths in: ids, and problems like every other route's."""
    for path, methods in EVENT_PATHS.items():
        for method, given in methods.items():
            op = {**given, "operationId": EVENT_OPERATION_IDS[(path, method)]}
            op["responses"] = {
                code: _problems(code)[code] if int(code) >= 400 else answer  # noqa: PLR2004
                for code, answer in given["responses"].items()
            }
            PATHS.setdefault(path, {})[method] = op


_with_events()
RATE_HEADERS = {
    "RateLimit-Policy": {
        "description": 'the caller\'s budget, e.g. `"caller";q=600;w=60`',
        "schema": {"type": "string"},
    },
    "RateLimit": {
        "description": 'what is left of it, e.g. `"caller";r=599;t=1`',
        "schema": {"type": "string"},
    },
}
for _methods in PATHS.values():
    for _op in _methods.values():
        _codes = _op["responses"]
        if "401" in _codes:  # every /v1 route: bad credentials, spent budget
            _codes["401"] = {"$ref": "#/components/responses/Unauthorized"}
            _codes["429"] = {"$ref": "#/components/responses/TooManyRequests"}
            for _code, _answer in _codes.items():
                if _code.startswith("2") and "$ref" not in _answer:
                    # Sent to callers with a configured budget.
                    _answer.setdefault("headers", {}).update(RATE_HEADERS)


def _special_problems() -> dict[str, Any]:
    unauthorized = _problem_response("401", PROBLEM_WHY["401"])
    unauthorized["headers"]["WWW-Authenticate"] = {
        "description": 'Bearer; a bad token adds error="invalid_token"',
        "schema": {"type": "string"},
    }
    limited = _problem_response("429", "this caller's request budget is spent")
    limited["headers"].update(
        {"Retry-After": {"schema": {"type": "integer"}}, **RATE_HEADERS}
    )
    return {"Unauthorized": unauthorized, "TooManyRequests": limited}


DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "invoice-gateway",
        "version": "1",
        "description": (
            "One REST API over many billing upstreams. Errors are RFC 9457 "
            "`application/problem+json`. Before any route runs, a request line over "
            f"{MAX_REQUEST_LINE} bytes is answered 414, a header line over "
            f"{MAX_HEADER_FIELD} bytes (or too many headers) 431, and bytes that are "
            "not HTTP 400, all as problems."
        ),
    },
    "security": [{"apiKey": []}, {"userToken": []}],
    "paths": PATHS,
    "components": {
        "securitySchemes": {
            "apiKey": {
                "type": "http",
                "scheme": "bearer",
                "description": "an internal service's API key",
            },
            "userToken": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "an end user's token from a configured issuer; "
                "bound to the customer(s) its customer claim names",
            },
        },
        "schemas": SCHEMAS,
        "headers": {
            "RequestId": {
                "description": "the request's id (the caller's, when valid)",
                "schema": {"type": "string"},
            }
        },
        "responses": {
            **{
                f"P{code}": _problem_response(code, why)
                for code, why in PROBLEM_WHY.items()
            },
            **_special_problems(),
        },
    },
}
BODY = jsoncodec.dumps(DOCUMENT)

DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>invoice-gateway API</title>
<link rel="stylesheet" href="{DOCS_ASSETS}/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="{DOCS_ASSETS}/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script></body></html>
""".encode()
DOCS_INIT = b"""window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: false, tryItOutEnabled: true
});
"""
# The page loads only its own scripts; nothing from another origin.
DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
    ),
    "X-Content-Type-Options": "nosniff",
}


async def openapi_json(_request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.Response(body=BODY, content_type="application/json")


async def docs(_request: web.Request) -> web.Response:
    """GET /docs: Swagger UI over `/openapi.json`, from locally served assets."""
    return web.Response(body=DOCS_PAGE, content_type="text/html", headers=DOCS_HEADERS)


async def docs_init(_request: web.Request) -> web.Response:
    """GET /docs/init.js: starts Swagger UI (a file, so the CSP needs no inline script)."""
    return web.Response(
        body=DOCS_INIT, content_type="application/javascript", headers=DOCS_HEADERS
    )


def setup_docs_routes(app: web.Application) -> None:
    """`/openapi.json`, `/docs`, its init script and the Swagger UI assets."""
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", docs)
    app.router.add_get("/docs/init.js", docs_init)
    app.router.add_static(DOCS_ASSETS, swagger_ui_path)

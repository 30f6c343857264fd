"""The OpenAPI 3.1 description of the API (`/openapi.json`) and a readable page (`/docs`).

Vocabularies (statuses, sorts, acquirers, payment methods, parameters) come from the
code that enforces them, so the document cannot drift from what the API accepts; a test
checks that every route is described and every description is routed.
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web

from gateway import jsoncodec
from gateway.accounts import ACQUIRERS, SALE_PAYMENT_METHODS
from gateway.api.params import MAX_LIMIT
from gateway.events.openapi import EVENT_PATHS, EVENT_SCHEMAS
from gateway.listing import SORTS
from gateway.models import InvoiceStatus, PaymentMethod

PROBLEM = {"$ref": "#/components/responses/Problem"}
ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "canonical id `provider:connection:remote_id`",
}
DEADLINE = {
    "name": "X-Deadline-Ms",
    "in": "header",
    "schema": {"type": "integer", "minimum": 50},
    "description": "a tighter deadline for this request, in milliseconds",
}


def _q(
    name: str, description: str, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "description": description,
        "schema": schema or {"type": "string"},
    }


FILTERS = [
    _q(
        "customer_document",
        "CPF or CNPJ, digits or punctuated (check digits validated)",
    ),
    _q("customer_id", "the customer's id at the upstream; needs `connection`"),
    _q(
        "contract_id",
        "the customer's service/contract id at the upstream; needs `connection`",
    ),
    _q("status", "comma list of " + ", ".join(s.value for s in InvoiceStatus)),
    _q("due_from", "due date from (inclusive)", {"type": "string", "format": "date"}),
    _q("due_to", "due date to (inclusive)", {"type": "string", "format": "date"}),
    _q(
        "period_from",
        "billing periods overlapping from",
        {"type": "string", "format": "date"},
    ),
    _q(
        "period_to",
        "billing periods overlapping to",
        {"type": "string", "format": "date"},
    ),
    _q("provider", "comma list of providers to ask"),
    _q("connection", "comma list of connections to ask"),
]
PAGING = [
    _q("sort", "merged order; ties by id", {"type": "string", "enum": list(SORTS)}),
    _q("limit", "page size", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}),
    _q("cursor", "`next_cursor` of the previous page (same filters and sort)"),
    _q(
        "include",
        "`remote` adds each upstream record",
        {"type": "string", "enum": ["remote"]},
    ),
]


def _ok(schema: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}
        },
    }


def _errors(*codes: str) -> dict[str, Any]:
    return dict.fromkeys(codes, PROBLEM)


PATHS: dict[str, Any] = {
    "/v1/invoices": {
        "get": {
            "summary": "One merged, sorted, paged invoice list across upstreams",
            "parameters": [*FILTERS, *PAGING, DEADLINE],
            "responses": {
                "200": _ok("InvoiceList"),
                **_errors("400", "401", "403", "502", "504"),
            },
        }
    },
    "/v1/invoices/summary": {
        "get": {
            "summary": "Totals per currency and status, overdue aging buckets",
            "parameters": [*FILTERS, DEADLINE],
            "responses": {
                "200": _ok("Summary"),
                **_errors("400", "401", "403", "502", "504"),
            },
        }
    },
    "/v1/invoices/{id}": {
        "get": {
            "summary": "One invoice",
            "parameters": [ID, PAGING[3], DEADLINE],
            "responses": {
                "200": _ok("Invoice"),
                **_errors("400", "401", "403", "404", "502", "504"),
            },
        }
    },
    "/v1/invoices/{id}/document": {
        "get": {
            "summary": "The invoice's document (PDF), streamed",
            "parameters": [ID, DEADLINE],
            "responses": {
                "200": {
                    "description": "the document",
                    "content": {
                        "application/pdf": {
                            "schema": {"type": "string", "format": "binary"}
                        }
                    },
                },
                **_errors("401", "403", "404", "502", "503", "504"),
            },
        }
    },
    "/v1/sale-accounts": {
        "get": {
            "summary": "Sale accounts of a connection",
            "parameters": [
                {
                    **_q("connection", "a connection that keeps sale accounts"),
                    "required": True,
                },
                DEADLINE,
            ],
            "responses": {
                "200": _ok("SaleAccountList"),
                **_errors("400", "401", "403", "502", "503", "504"),
            },
        },
        "post": {
            "summary": "Create a sale account (send an Idempotency-Key)",
            "parameters": [
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "schema": {"type": "string", "maxLength": 255},
                },
                DEADLINE,
            ],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/SaleAccountCreate"}
                    }
                },
            },
            "responses": {
                "201": {
                    **_ok("SaleAccount", "created (or replayed)"),
                    "headers": {
                        "Location": {
                            "description": "the new account's URL",
                            "schema": {"type": "string"},
                        }
                    },
                },
                **_errors(
                    "400", "401", "403", "408", "409", "422", "502", "503", "504"
                ),
            },
        },
    },
    "/v1/sale-accounts/{id}": {
        "get": {
            "summary": "One sale account",
            "parameters": [ID, DEADLINE],
            "responses": {
                "200": _ok("SaleAccount"),
                **_errors("401", "403", "404", "502", "503", "504"),
            },
        },
        "put": {
            "summary": "Change the given fields",
            "parameters": [ID, DEADLINE],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/SaleAccountChange"}
                    }
                },
            },
            "responses": {
                "200": _ok("SaleAccount"),
                **_errors(
                    "400", "401", "403", "404", "408", "422", "502", "503", "504"
                ),
            },
        },
        "delete": {
            "summary": "Delete (the upstream schedules it)",
            "parameters": [ID, DEADLINE],
            "responses": {
                "202": {"description": "deletion scheduled"},
                **_errors("401", "403", "404", "502", "503", "504"),
            },
        },
    },
    "/v1/connections": {
        "get": {
            "summary": "Connections: health, breaker, token state (not for end users)",
            "responses": {"200": {"description": "OK"}, **_errors("401", "403")},
        }
    },
    "/v1/audit": {
        "get": {
            "summary": "The audit trail, newest first (audit:read keys; needs Redis)",
            "parameters": [
                _q("limit", "events per page, 1-500", {"type": "integer"}),
                _q("before", "next_cursor of the previous page", {"type": "string"}),
            ],
            "responses": {
                "200": _ok("AuditPage"),
                **_errors("400", "401", "403", "404", "503"),
            },
        }
    },
    "/healthz": {
        "get": {
            "summary": "Liveness",
            "security": [],
            "responses": {"200": {"description": "alive"}},
        }
    },
    "/readyz": {
        "get": {
            "summary": "Readiness (never calls an upstream)",
            "security": [],
            "responses": {"200": {"description": "ready"}},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus exposition",
            "security": [],
            "responses": {"200": {"description": "metrics"}},
        }
    },
}

MONEY = {"type": ["string", "null"], "pattern": r"^-?\d+(\.\d+)?$"}
DATE = {"type": ["string", "null"], "format": "date"}
CLASSIFICATION = {
    "type": "object",
    "required": ["classifier_id", "name"],
    "properties": {
        "classifier_id": {"type": "integer", "minimum": 1},
        "name": {"type": "string"},
        "amount": MONEY,
        "percentage": MONEY,
    },
}
SALE_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": {"type": "string"},
    "entity_id": {"type": "integer", "minimum": 1},
    "acquirer": {"type": "string", "enum": sorted(ACQUIRERS)},
    "payment_methods": {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string", "enum": sorted(SALE_PAYMENT_METHODS)},
    },
    "consolidate": {"type": "boolean"},
    "category_id": {"type": "integer", "minimum": 1},
    "person_id": {"type": "integer", "minimum": 1},
    "classification_center_id": {"type": "integer", "minimum": 1},
    "custom_classifications": {"type": "array", "items": CLASSIFICATION},
    "classification_center_classifications": {"type": "array", "items": CLASSIFICATION},
}
SCHEMAS: dict[str, Any] = {
    "Invoice": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "provider": {"type": "string"},
            "connection": {"type": "string"},
            "remote_id": {"type": "string"},
            "number": {"type": ["string", "null"]},
            "customer": {
                "type": "object",
                "properties": {
                    "remote_id": {"type": ["string", "null"]},
                    "document": {"type": ["string", "null"]},
                    "name": {"type": ["string", "null"]},
                },
            },
            "status": {"type": "string", "enum": [s.value for s in InvoiceStatus]},
            "remote_status": {"type": ["string", "null"]},
            "currency": {"type": ["string", "null"]},
            "amount": MONEY,
            "amount_paid": MONEY,
            "amount_due": MONEY,
            "issue_date": DATE,
            "due_date": DATE,
            "paid_date": DATE,
            "billing_period": {"type": ["object", "null"]},
            "payment": {
                "type": ["object", "null"],
                "properties": {
                    "method": {
                        "type": ["string", "null"],
                        "enum": [*(m.value for m in PaymentMethod), None],
                    },
                    "boleto": {"type": ["object", "null"]},
                    "pix_code": {"type": ["string", "null"]},
                },
            },
            "lines": {"type": "array", "items": {"type": "object"}},
            "remote": {"type": "object"},
        },
    },
    "Source": {
        "type": "object",
        "properties": {
            "connection": {"type": "string"},
            "provider": {"type": "string"},
            "status": {
                "type": "string",
                "enum": ["ok", "stale", "error", "timeout", "skipped"],
            },
            "from_cache": {"type": "boolean"},
            "fetched_at": {"type": ["string", "null"]},
            "age_s": {"type": ["integer", "null"]},
            "latency_ms": {"type": "number"},
            "count": {"type": "integer"},
            "complete": {"type": "boolean"},
            "error": {
                "oneOf": [
                    {"type": "null"},
                    {
                        "type": "object",
                        "required": ["type", "detail"],
                        "properties": {
                            "type": {
                                "type": "string",
                                "enum": [
                                    "auth",
                                    "config",
                                    "rate_limited",
                                    "unavailable",
                                    "protocol",
                                    "timeout",
                                ],
                            },
                            "detail": {"type": "string"},
                        },
                    },
                ]
            },
            "note": {"type": ["string", "null"]},
        },
    },
    "InvoiceList": {
        "type": "object",
        "properties": {
            "data": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Invoice"},
            },
            "next_cursor": {"type": ["string", "null"]},
            "complete": {"type": "boolean"},
            "sources": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Source"},
            },
        },
    },
    "Summary": {
        "type": "object",
        "properties": {
            "totals": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/CurrencyTotals"},
            },
            "complete": {"type": "boolean"},
            "sources": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Source"},
            },
        },
    },
    "CurrencyTotals": {
        "type": "object",
        "description": "Totals of one currency. A total sums the known values only; "
        "`unknown` counts the invoices whose value is unknown, and a total over "
        "unknown values only is null (never 0.00).",
        "required": ["currency", "count", "amount", "amount_due", "amount_paid"],
        "properties": {
            "currency": {"type": ["string", "null"]},
            "count": {"type": "integer"},
            "amount": {"type": ["string", "null"]},
            "amount_due": {"type": ["string", "null"]},
            "amount_paid": {"type": ["string", "null"]},
            "unknown": {
                "type": "object",
                "additionalProperties": {"type": "integer"},
            },
            "by_status": {"type": "object"},
            "aging": {"type": "object"},
        },
    },
    "SaleAccount": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "connection": {"type": "string"},
            "remote_id": {"type": "string"},
            **SALE_FIELDS,
            "acquirer": {"type": "string"},
            "remote_acquirer": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"]},
            "updated_at": {"type": ["string", "null"]},
        },
    },
    "SaleAccountList": {
        "type": "object",
        "properties": {
            "data": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/SaleAccount"},
            }
        },
    },
    "SaleAccountCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["connection", "name", "entity_id", "acquirer", "payment_methods"],
        "properties": {"connection": {"type": "string"}, **SALE_FIELDS},
    },
    "SaleAccountChange": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": SALE_FIELDS,
    },
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "upstream": {
                            "type": "object",
                            "description": "the upstream's own field and words",
                            "properties": {
                                "field": {"type": ["string", "null"]},
                                "message": {"type": ["string", "null"]},
                            },
                        },
                    },
                },
            },
            "sources": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Source"},
            },
        },
    },
}
SCHEMAS["AuditEvent"] = {
    "type": "object",
    "required": ["id", "at", "who", "method", "route", "status", "outcome"],
    "properties": {
        "id": {"type": "string"},
        "at": {"type": "string", "format": "date-time"},
        "who": {
            "type": ["string", "null"],
            "description": "principal; null if unknown",
        },
        "kind": {"type": ["string", "null"], "enum": ["api_key", "user", None]},
        "method": {"type": "string"},
        "route": {"type": "string"},
        "resource": {"type": ["string", "null"]},
        "status": {"type": "integer"},
        "outcome": {"type": "string", "enum": ["ok", "failed", "denied"]},
        "reason": {
            "type": ["string", "null"],
            "enum": ["unauthenticated", "forbidden", "not_owner", "rate_limited", None],
        },
        "idempotency_key": {"type": ["string", "null"]},
        "request_id": {"type": "string"},
    },
}
SCHEMAS["AuditPage"] = {
    "type": "object",
    "required": ["data", "next_cursor"],
    "properties": {
        "data": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}},
        "next_cursor": {"type": ["string", "null"]},
    },
}
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
DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "invoice-gateway",
        "version": "1",
        "description": "One REST API over many billing upstreams.",
    },
    "security": [{"apiKey": []}, {"userToken": []}],
    "paths": {**PATHS, **EVENT_PATHS},
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
        "schemas": {**SCHEMAS, **EVENT_SCHEMAS},
        "responses": {
            "Problem": {
                "description": "RFC 9457 problem",
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    }
                },
            },
            "Unauthorized": {
                "description": "no valid API key or token",
                "headers": {
                    "WWW-Authenticate": {
                        "description": 'Bearer; a bad token adds error="invalid_token"',
                        "schema": {"type": "string"},
                    }
                },
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    }
                },
            },
            "TooManyRequests": {
                "description": "this caller's request budget is spent",
                "headers": {
                    "Retry-After": {"schema": {"type": "integer"}},
                    **RATE_HEADERS,
                },
                "content": {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/Problem"}
                    }
                },
            },
        },
    },
}
BODY = jsoncodec.dumps(DOCUMENT)


async def openapi_json(_request: web.Request) -> web.Response:
    """GET /openapi.json."""
    return web.Response(body=BODY, content_type="application/json")


async def docs(_request: web.Request) -> web.Response:
    """GET /docs: the routes and their parameters, readable without any JavaScript."""
    rows = []
    for path, methods in PATHS.items():
        for method, op in methods.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(op['summary'])}</td><td>{html.escape(params)}</td></tr>"
            )
    page = (
        "<!doctype html><meta charset=utf-8><title>invoice-gateway API</title>"
        "<style>body{font:14px system-ui;margin:2em}td{padding:.3em .8em;"
        "border-bottom:1px solid #ddd;vertical-align:top}</style>"
        "<h1>invoice-gateway API</h1><p>Machine-readable: <a href=/openapi.json>"
        "/openapi.json</a> (OpenAPI 3.1). Every <code>/v1</code> route needs "
        "<code>Authorization: Bearer &lt;api key or end-user token&gt;</code>; "
        "errors are RFC 9457 "
        "problem+json.</p><table><tr><th>method<th>path<th>what<th>parameters</tr>"
        + "".join(rows)
        + "</table>"
    )
    return web.Response(text=page, content_type="text/html")

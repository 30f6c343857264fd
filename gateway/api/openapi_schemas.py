"""The component schemas of the OpenAPI document, with examples.

Every object names its `required` members and closes itself (`additionalProperties:
false`) where the gateway builds every member; vocabularies come from the code that
enforces them. The test suite validates every response it provokes against these.
"""

from __future__ import annotations

from typing import Any

from gateway.events.openapi import EVENT_SCHEMAS
from gateway.invoices.accounts import ACQUIRERS, SALE_PAYMENT_METHODS
from gateway.invoices.models import InvoiceStatus, PaymentMethod

MONEY_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"
MONEY = {"type": ["string", "null"], "pattern": MONEY_PATTERN, "examples": ["10.00"]}
DATE = {"type": ["string", "null"], "format": "date", "examples": ["2026-11-30"]}
TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
TEXT = {"type": ["string", "null"]}
# Text without control characters, and (for names) not only white space.
CTRL = "\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029"
NAME_PATTERN = f"^[^{CTRL}]*[^\\s{CTRL}][^{CTRL}]*$"
DESCRIPTION_PATTERN = (
    "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
)
SOURCE_STATUSES = ["ok", "stale", "error", "timeout", "skipped"]


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def closed(
    properties: dict[str, Any], *, optional: tuple[str, ...] = (), **extra: Any
) -> dict[str, Any]:
    """An object whose members are all required but `optional`, and no others allowed."""
    return {
        "type": "object",
        "required": [k for k in properties if k not in optional],
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }


INVOICE_EXAMPLE = {
    "id": "hubsoft:acme-isp:1099-44612",
    "provider": "hubsoft",
    "connection": "acme-isp",
    "remote_id": "1099-44612",
    "number": "274764",
    "customer": {"remote_id": "1099", "document": "12345678909", "name": "Maria Silva"},
    "status": "overdue",
    "remote_status": None,
    "currency": "BRL",
    "amount": "10.00",
    "amount_paid": None,
    "amount_due": "10.00",
    "issue_date": "2018-08-01",
    "due_date": "2018-08-31",
    "paid_date": None,
    "billing_period": None,
    "payment": {
        "method": "boleto",
        "boleto": {
            "digitable_line": "75691.31662 01006.726101 27476.400018 2 76380000001023",
            "barcode": None,
            "our_number": "0274764-0",
            "url": None,
        },
        "pix_code": None,
    },
    "lines": [{"description": "Cobrança SCM", "amount": "10.00"}],
}
SOURCE_EXAMPLE = {
    "connection": "acme-isp",
    "provider": "hubsoft",
    "status": "ok",
    "from_cache": True,
    "fetched_at": "2026-11-20T15:00:00Z",
    "age_s": 12,
    "latency_ms": 0.0,
    "count": 1,
    "complete": True,
    "error": None,
    "note": None,
}
SALE_ACCOUNT_EXAMPLE = {
    "id": "fintera:fin:12",
    "provider": "fintera",
    "connection": "fin",
    "remote_id": "12",
    "entity_id": 3798,
    "name": "Stone - loja",
    "description": None,
    "acquirer": "stone",
    "remote_acquirer": "stone",
    "payment_methods": ["credit_card", "debit_card"],
    "consolidate": False,
    "category_id": None,
    "person_id": None,
    "classification_center_id": None,
    "custom_classifications": [],
    "classification_center_classifications": [],
    "created_at": "2026-11-20T12:00:00-03:00",
    "updated_at": "2026-11-20T12:00:00-03:00",
}
PROBLEM_EXAMPLE = {
    "type": "urn:invoice-gateway:problem:invalid-request",
    "title": "Invalid request",
    "status": 400,
    "detail": "invalid input: limit",
    "errors": [{"field": "limit", "message": "must be an integer from 1 to 200"}],
}

CLASSIFICATION_IN = {
    "type": "object",
    "additionalProperties": False,
    "required": ["classifier_id", "name"],
    "properties": {
        "classifier_id": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
        "name": {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": NAME_PATTERN,
        },
        "amount": {**MONEY, "type": ["string", "number", "null"]},
        "percentage": {**MONEY, "type": ["string", "number", "null"]},
    },
}
CLASSIFICATION_OUT = closed(
    {
        "classifier_id": {"type": "integer"},
        "name": {"type": "string"},
        "amount": MONEY,
        "percentage": MONEY,
    }
)
ID_FIELD = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
SALE_FIELDS = {
    "name": {
        "type": "string",
        "minLength": 1,
        "maxLength": 255,
        "pattern": NAME_PATTERN,
    },
    "description": {
        "type": "string",
        "maxLength": 2000,
        "pattern": DESCRIPTION_PATTERN,
    },
    "entity_id": ID_FIELD,
    "acquirer": {"type": "string", "enum": sorted(ACQUIRERS)},
    "payment_methods": {
        "type": "array",
        "minItems": 1,
        "uniqueItems": True,
        "items": {"type": "string", "enum": sorted(SALE_PAYMENT_METHODS)},
    },
    "consolidate": {"type": "boolean"},
    "category_id": ID_FIELD,
    "person_id": ID_FIELD,
    "classification_center_id": ID_FIELD,
    "custom_classifications": {
        "type": "array",
        "maxItems": 50,
        "items": CLASSIFICATION_IN,
    },
    "classification_center_classifications": {
        "type": "array",
        "maxItems": 50,
        "items": CLASSIFICATION_IN,
    },
}
SOURCE = closed(
    {
        "connection": {"type": "string"},
        "provider": {"type": "string"},
        "status": {"type": "string", "enum": SOURCE_STATUSES},
        "from_cache": {"type": "boolean"},
        "fetched_at": TIMESTAMP,
        "age_s": {"type": ["integer", "null"], "minimum": 0},
        "latency_ms": {"type": "number", "minimum": 0},
        "count": {"type": "integer", "minimum": 0},
        "complete": {"type": "boolean"},
        "error": {
            "description": "why the source failed or is stale; never a secret",
            "oneOf": [
                {"type": "null"},
                closed(
                    {
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
                    }
                ),
            ],
        },
        "note": {
            "type": ["string", "null"],
            "description": "what to know about an answer that is not an error "
            "(why skipped, rows left out, a page cap)",
        },
    },
    examples=[SOURCE_EXAMPLE],
)


def totals(*names: str) -> dict[str, Any]:
    """Counts and sums; `unknown` counts the invoices whose value is unknown, per sum."""
    return closed(
        {
            "count": {"type": "integer", "minimum": 0},
            **dict.fromkeys(names, MONEY),
            "unknown": closed(
                {name: {"type": "integer", "minimum": 0} for name in names}
            ),
        }
    )


CURRENCY_TOTAL = {
    **totals("amount", "amount_due", "amount_paid"),
    "description": "Totals of one currency. A total sums the known values only; "
    "`unknown` counts the invoices whose value is unknown, and a total over unknown "
    "values only is null (never 0.00).",
}
CURRENCY_TOTAL["properties"] = {
    "currency": TEXT,
    **CURRENCY_TOTAL["properties"],
    "by_status": {
        "type": "object",
        "propertyNames": {"enum": [s.value for s in InvoiceStatus]},
        "additionalProperties": totals("amount"),
    },
    "aging": closed(
        dict.fromkeys(("0-30", "31-60", "61-90", "90+"), totals("amount_due"))
    ),
}
CURRENCY_TOTAL["required"] = list(CURRENCY_TOTAL["properties"])
CONNECTION = closed(
    {
        "id": {"type": "string"},
        "provider": {"type": "string"},
        "health": {"type": "string", "enum": ["unknown", "up", "down"]},
        "last_ok_at": TIMESTAMP,
        "last_error_at": TIMESTAMP,
        "last_error": TEXT,
        "consecutive_failures": {"type": "integer"},
        "breaker": {
            "type": ["object", "null"],
            "required": ["state", "consecutive_failures"],
            "properties": {
                "state": {"type": "string", "enum": ["closed", "open", "half_open"]},
                "consecutive_failures": {"type": "integer"},
                "recent_calls": {"type": "integer"},
                "recent_failures": {"type": "integer"},
                "probe_in_s": {"type": "number"},
            },
            "additionalProperties": False,
        },
        "token": closed(
            {
                "present": {"type": "boolean"},
                "expires_in_s": {"type": ["number", "null"]},
                "refreshes": {"type": "integer"},
            }
        ),
    }
)
CACHE_STATE = {
    "type": "object",
    "required": ["backend"],
    "properties": {
        "backend": {"type": "string", "enum": ["memory", "redis"]},
        "redis": {"type": "string", "enum": ["up", "down"]},
    },
    "additionalProperties": False,
}

SCHEMAS: dict[str, Any] = {
    **EVENT_SCHEMAS,
    "DeadLetters": {
        **EVENT_SCHEMAS["DeadLetters"],
        "required": ["webhook", "recent", "dead_letters"],
    },
    "Invoice": closed(
        {
            "id": {"type": "string"},
            "provider": {"type": "string"},
            "connection": {"type": "string"},
            "remote_id": {"type": "string"},
            "number": TEXT,
            "customer": closed(
                {"remote_id": TEXT, "document": TEXT, "name": TEXT},
            ),
            "status": {"type": "string", "enum": [s.value for s in InvoiceStatus]},
            "remote_status": TEXT,
            "currency": {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"},
            "amount": MONEY,
            "amount_paid": MONEY,
            "amount_due": MONEY,
            "issue_date": DATE,
            "due_date": DATE,
            "paid_date": DATE,
            "billing_period": {
                "type": ["object", "null"],
                "required": ["start", "end"],
                "properties": {
                    "start": {"type": "string", "format": "date"},
                    "end": {"type": "string", "format": "date"},
                },
                "additionalProperties": False,
            },
            "payment": {
                "type": ["object", "null"],
                "required": ["method", "boleto", "pix_code"],
                "additionalProperties": False,
                "properties": {
                    "method": {
                        "type": ["string", "null"],
                        "enum": [*(m.value for m in PaymentMethod), None],
                    },
                    "boleto": {
                        "type": ["object", "null"],
                        "required": ["digitable_line", "barcode", "our_number", "url"],
                        "additionalProperties": False,
                        "properties": {
                            "digitable_line": TEXT,
                            "barcode": TEXT,
                            "our_number": TEXT,
                            "url": TEXT,
                        },
                    },
                    "pix_code": TEXT,
                },
            },
            "lines": {
                "type": "array",
                "items": closed({"description": {"type": "string"}, "amount": MONEY}),
            },
            "remote": {
                "type": ["object", "null"],
                "description": "the upstream record untouched (`include=remote` only)",
            },
        },
        optional=("remote",),
        examples=[INVOICE_EXAMPLE],
    ),
    "Source": SOURCE,
    "InvoiceList": closed(
        {
            "data": {"type": "array", "items": ref("Invoice")},
            "next_cursor": TEXT,
            "complete": {"type": "boolean"},
            "sources": {"type": "array", "items": ref("Source")},
        },
        examples=[
            {
                "data": [INVOICE_EXAMPLE],
                "next_cursor": None,
                "complete": True,
                "sources": [SOURCE_EXAMPLE],
            }
        ],
    ),
    "Summary": closed(
        {
            "totals": {"type": "array", "items": ref("CurrencyTotals")},
            "complete": {"type": "boolean"},
            "sources": {"type": "array", "items": ref("Source")},
        }
    ),
    "CurrencyTotals": CURRENCY_TOTAL,
    "SaleAccount": closed(
        {
            "id": {"type": "string"},
            "provider": {"type": "string"},
            "connection": {"type": "string"},
            "remote_id": {"type": "string"},
            "entity_id": {"type": ["integer", "null"]},
            "name": {"type": "string"},
            "description": TEXT,
            "acquirer": {"type": "string", "enum": sorted(ACQUIRERS)},
            "remote_acquirer": TEXT,
            "payment_methods": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": sorted({*SALE_PAYMENT_METHODS, "other"}),
                },
            },
            "consolidate": {"type": "boolean"},
            "category_id": {"type": ["integer", "null"]},
            "person_id": {"type": ["integer", "null"]},
            "classification_center_id": {"type": ["integer", "null"]},
            "custom_classifications": {"type": "array", "items": CLASSIFICATION_OUT},
            "classification_center_classifications": {
                "type": "array",
                "items": CLASSIFICATION_OUT,
            },
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
        },
        examples=[SALE_ACCOUNT_EXAMPLE],
    ),
    "SaleAccountList": closed(
        {"data": {"type": "array", "items": ref("SaleAccount")}},
        examples=[{"data": [SALE_ACCOUNT_EXAMPLE]}],
    ),
    "SaleAccountCreate": {
        "type": "object",
        "additionalProperties": False,
        "required": ["connection", "name", "entity_id", "acquirer", "payment_methods"],
        "properties": {
            "connection": {"type": "string", "minLength": 1, "maxLength": 63},
            **SALE_FIELDS,
        },
        "examples": [
            {
                "connection": "fin",
                "name": "Stone - loja",
                "entity_id": 3798,
                "acquirer": "stone",
                "payment_methods": ["credit_card", "debit_card"],
            }
        ],
    },
    "SaleAccountChange": {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": SALE_FIELDS,
        "examples": [{"name": "Stone - loja 2", "consolidate": True}],
    },
    "DeletionScheduled": closed(
        {"status": {"const": "deletion scheduled"}, "id": {"type": "string"}},
        examples=[{"status": "deletion scheduled", "id": "fintera:fin:12"}],
    ),
    "ConnectionList": closed(
        {"data": {"type": "array", "items": CONNECTION}, "cache": CACHE_STATE}
    ),
    "Health": closed({"status": {"const": "ok"}}, examples=[{"status": "ok"}]),
    "Readiness": closed(
        {
            "status": {"const": "ready"},
            "cache": CACHE_STATE,
            "connections": {
                "type": "object",
                "additionalProperties": {
                    "type": "string",
                    "enum": ["unknown", "up", "down"],
                },
            },
        }
    ),
    "AuditEvent": closed(
        {
            "id": {"type": "string"},
            "at": {"type": "string", "format": "date-time"},
            "who": {
                "type": ["string", "null"],
                "description": "principal; null if unknown",
            },
            "kind": {"type": ["string", "null"], "enum": ["api_key", "user", None]},
            "method": {"type": "string"},
            "route": {"type": "string"},
            "resource": TEXT,
            "status": {"type": "integer"},
            "outcome": {"type": "string", "enum": ["ok", "failed", "denied"]},
            "reason": {
                "type": ["string", "null"],
                "enum": [
                    "unauthenticated",
                    "forbidden",
                    "not_owner",
                    "rate_limited",
                    None,
                ],
            },
            "idempotency_key": TEXT,
            "request_id": {"type": "string"},
        },
        optional=("kind", "resource", "reason", "idempotency_key"),
    ),
    "AuditPage": closed(
        {"data": {"type": "array", "items": ref("AuditEvent")}, "next_cursor": TEXT}
    ),
    "Problem": {
        "type": "object",
        "required": ["type", "title", "status", "detail"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "items": closed(
                    {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                        "upstream": {
                            **closed({"field": TEXT, "message": TEXT}),
                            "description": "the upstream's own field and words",
                        },
                    },
                    optional=("upstream",),
                ),
            },
            "sources": {"type": "array", "items": ref("Source")},
            "connection": {"type": "string"},
            "request_id": {"type": "string"},
        },
        "additionalProperties": False,
        "examples": [PROBLEM_EXAMPLE],
    },
}

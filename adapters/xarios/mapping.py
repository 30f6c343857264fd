"""Xarios billingdata -> canonical `Invoice`. Pure: no I/O, no clock, no logging.

Xarios says nothing of currency, due date, payment status, paid date or payment method, so
none is invented: status is `unknown`, amounts due/paid are null, currency comes from the
connection (or stays null). The list spells the id `invoiceid` and the name
`customerName`; the detail JSON (inside a ZIP) spells them `invoiceId` and `accountName`.
Timestamps carry up to 7 fractional digits, with or without an offset; billing periods
are taken as the calendar dates written, with no time-zone conversion.

Xarios documents the detail JSON in camelCase in its example (`invoiceItems`) and in
lowercase in its schema table (`invoiceitems`), and spells one key both ways within one
API (`invoiceid`/`invoiceId`). Keys of the detail and of its items are therefore read
case-insensitively, ignoring `_`, `-` and spaces, so every documented variant maps alike.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from datetime import date
from decimal import Decimal
from typing import Any

from gateway.invoices.models import (
    BillingPeriod,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)

PROVIDER = "xarios"
MAX_DETAIL_JSON_BYTES = 20 * 1024 * 1024
_TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,7})?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_MONEY_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_FOLD_RE = re.compile(r"[\s_-]")


class MappingError(ValueError):
    """A payload of a shape the Xarios contract does not allow."""


def parse_day(raw: Any) -> date | None:
    """The calendar date written in a .NET-style timestamp (7 fraction digits allowed)."""
    if raw is None:
        return None
    match = _TIMESTAMP_RE.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise MappingError(f"unreadable timestamp {raw!r}")
    try:
        return date(*map(int, match.groups()))
    except ValueError as err:
        raise MappingError(f"impossible date {raw!r}") from err


def parse_money(raw: Any) -> Decimal | None:
    """A JSON number (a double upstream) or a dotted string; `200,0` is refused."""
    if raw is None:
        return None
    if isinstance(raw, bool):
        raise MappingError(f"money is a boolean: {raw!r}")
    if isinstance(raw, int | float):
        return Decimal(repr(raw))
    if isinstance(raw, str) and _MONEY_RE.fullmatch(raw):
        return Decimal(raw)
    raise MappingError(f"unreadable amount {raw!r}")


def folded(raw: dict[str, Any]) -> dict[str, Any]:
    """The object with its keys folded (`invoiceItems`, `invoice_items` -> `invoiceitems`).

    The first spelling met wins when an object carries two.
    """
    out: dict[str, Any] = {}
    for key, value in raw.items():
        out.setdefault(_FOLD_RE.sub("", str(key)).lower(), value)
    return out


def invoice_id(raw: dict[str, Any]) -> str:
    """`invoiceid` (list, get) or `invoiceId` (detail)."""
    value = raw.get("invoiceid", raw.get("invoiceId"))
    if not isinstance(value, str) or not value:
        raise MappingError("invoice without invoiceid/invoiceId")
    return value


def to_lines(items: Any) -> tuple[InvoiceLine, ...]:
    """Detail `invoiceItems` as lines: product tag (and quantity when not 1) and value."""
    if not isinstance(items, list):
        raise MappingError("invoiceItems is not a list")
    lines = []
    for entry in items:
        if not isinstance(entry, dict):
            raise MappingError("an invoiceItems entry is not an object")
        item = folded(entry)
        name = str(item.get("producttagname") or f"item {item.get('id', '?')}")
        quantity = item.get("quantity")
        if isinstance(quantity, int | float) and quantity != 1:
            name = f"{name} x {quantity:g}"
        lines.append(InvoiceLine(name, parse_money(item.get("value"))))
    return tuple(lines)


def to_invoice(
    raw: dict[str, Any],
    *,
    connection: str,
    currency: str | None,
    document: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Invoice:
    """Map a list/get item, enriched by the detail JSON when it was fetched."""
    start, end = (
        parse_day(raw.get("billingPeriodStart")),
        parse_day(raw.get("billingPeriodEnd")),
    )
    name = raw.get("customerName") or raw.get("accountName")
    facts = folded(detail) if detail is not None else {}
    name = name or facts.get("accountname")
    tenant = raw.get("tenantId")
    return Invoice(
        provider=PROVIDER,
        connection=connection,
        remote_id=invoice_id(raw),
        number=_text(raw.get("invoiceNumber")),
        customer=Customer(remote_id=_text(tenant), document=document, name=_text(name)),
        status=InvoiceStatus.UNKNOWN,
        currency=currency,
        amount=parse_money(raw.get("invoiceValue")),
        issue_date=parse_day(facts.get("invoicedate")),
        billing_period=BillingPeriod(start, end) if start and end else None,
        lines=to_lines(facts.get("invoiceitems")) if detail is not None else (),
        remote=raw if detail is None else {**raw, "detail": detail},
    )


def parse_detail_zip(data: bytes) -> dict[str, Any]:
    """The detail JSON out of the detail ZIP (which also holds a simplified CSV)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [
            m for m in archive.infolist() if m.filename.lower().endswith(".json")
        ]
        if len(members) != 1:
            raise MappingError(
                f"detail ZIP holds {len(members)} JSON files, expected 1"
            )
        if members[0].file_size > MAX_DETAIL_JSON_BYTES:
            raise MappingError("detail JSON is larger than the cap")  # zip bomb guard
        payload = json.loads(archive.read(members[0]))
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        KeyError,
        zlib.error,  # a corrupt deflate stream
        NotImplementedError,  # an unknown compression method
        RuntimeError,  # the encrypted flag (a password is required)
        OSError,
    ) as err:
        raise MappingError(
            f"detail is not a readable ZIP ({type(err).__name__})"
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MappingError("detail JSON is malformed") from err
    if not isinstance(payload, dict) or not isinstance(
        folded(payload).get("invoiceitems"), list
    ):
        raise MappingError("detail JSON lacks invoiceItems")
    return payload


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str | int) and not isinstance(raw, bool):
        return str(raw) or None
    raise MappingError(f"expected text, got {type(raw).__name__}")

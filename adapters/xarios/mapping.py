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
import zipfile
import zlib
from datetime import date
from typing import cast

from adapters.xarios.payloads import BillingItem, Detail, FoldedDetail, FoldedItem
from gateway.invoices.models import (
    BillingPeriod,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
)
from gateway.upstream.kit.parse import MappingError, day, folded, money, objects, text

PROVIDER = "xarios"
MAX_DETAIL_JSON_BYTES = 20 * 1024 * 1024


def parse_day(raw: object, field: str) -> date | None:
    """The calendar date written in a .NET-style timestamp (7 fraction digits allowed)."""
    return day(raw, field)


def invoice_id(raw: BillingItem) -> str:
    """`invoiceid` (list, get) or `invoiceId` (detail)."""
    value = raw.get("invoiceid", raw.get("invoiceId"))
    if not isinstance(value, str) or not value:
        raise MappingError("invoiceid", "missing (nor invoiceId)")
    return value


def to_lines(items: object) -> tuple[InvoiceLine, ...]:
    """Detail `invoiceItems` as lines: product tag (and quantity when not 1) and value."""
    lines = []
    for entry in objects(items, "invoiceItems"):
        item = cast("FoldedItem", folded(entry))
        name = str(item.get("producttagname") or f"item {item.get('id', '?')}")
        quantity = item.get("quantity")
        if isinstance(quantity, int | float) and quantity != 1:
            name = f"{name} x {quantity:g}"
        lines.append(InvoiceLine(name, money(item.get("value"), "invoiceItems.value")))
    return tuple(lines)


def to_invoice(
    raw: BillingItem,
    *,
    connection: str,
    currency: str | None,
    document: str | None = None,
    detail: Detail | None = None,
) -> Invoice:
    """Map a list/get item, enriched by the detail JSON when it was fetched."""
    start = parse_day(raw.get("billingPeriodStart"), "billingPeriodStart")
    end = parse_day(raw.get("billingPeriodEnd"), "billingPeriodEnd")
    name = raw.get("customerName") or raw.get("accountName")
    facts = cast("FoldedDetail", folded(detail) if detail is not None else {})
    name = name or facts.get("accountname")
    return Invoice(
        provider=PROVIDER,
        connection=connection,
        remote_id=invoice_id(raw),
        number=text(raw.get("invoiceNumber"), "invoiceNumber"),
        customer=Customer(
            remote_id=text(raw.get("tenantId"), "tenantId"),
            document=document,
            name=text(name, "customerName"),
        ),
        status=InvoiceStatus.UNKNOWN,
        currency=currency,
        amount=money(raw.get("invoiceValue"), "invoiceValue"),
        issue_date=parse_day(facts.get("invoicedate"), "invoiceDate"),
        billing_period=BillingPeriod(start, end) if start and end else None,
        lines=to_lines(facts.get("invoiceitems")) if detail is not None else (),
        remote={**raw} if detail is None else {**raw, "detail": detail},
    )


def parse_detail_zip(data: bytes) -> Detail:
    """The detail JSON out of the detail ZIP (which also holds a simplified CSV)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [
            m for m in archive.infolist() if m.filename.lower().endswith(".json")
        ]
        if len(members) != 1:
            raise MappingError(
                "detail", f"the ZIP holds {len(members)} JSON files, expected 1"
            )
        if members[0].file_size > MAX_DETAIL_JSON_BYTES:
            raise MappingError("detail", "the JSON is larger than the cap")  # zip bomb
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
            "detail", f"not a readable ZIP ({type(err).__name__})"
        ) from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MappingError("detail", "the JSON is malformed") from err
    if not isinstance(payload, dict) or not isinstance(
        folded(payload).get("invoiceitems"), list
    ):
        raise MappingError("invoiceItems", "missing from the detail JSON")
    return payload

"""What an event is, and how a change between two looks at an invoice is named.

`classify` is the detector's whole decision, pure: given what the last snapshot held for
an invoice (status and content hash) and the invoice as read now, it names the event, or
None when nothing changed. A snapshot mark is `<status>|<sha256 of the canonical JSON>|<due
date>`.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway import jsoncodec
from gateway.invoices.models import Invoice, InvoiceStatus

CREATED = "invoice.created"
UPDATED = "invoice.updated"
PAID = "invoice.paid"
OVERDUE = "invoice.overdue"
CANCELLED = "invoice.cancelled"
EVENT_TYPES = frozenset({CREATED, UPDATED, PAID, OVERDUE, CANCELLED})
STATUS_EVENTS = {
    InvoiceStatus.PAID: PAID,
    InvoiceStatus.OVERDUE: OVERDUE,
    InvoiceStatus.CANCELLED: CANCELLED,
}
EVENT_ID_RE = re.compile(r"^\d{1,20}-\d{1,20}$")


def mark(invoice: Invoice) -> str:
    """The snapshot form of an invoice: its status and a hash of its content."""
    body = jsoncodec.dumps(invoice.to_dict(include_remote=False))
    due = invoice.due_date.isoformat() if invoice.due_date else ""
    return f"{invoice.status.value}|{hashlib.sha256(body).hexdigest()}|{due}"


def parse_mark(value: str) -> tuple[str, date | None]:
    """The status and due date a mark records."""
    parts = value.split("|")
    due = parts[2] if len(parts) > 2 else ""  # noqa: PLR2004 - status|hash|due
    return parts[0], date.fromisoformat(due) if due else None


def classify(previous: str | None, invoice: Invoice) -> str | None:
    """The event an invoice's change calls for, or None when it is unchanged."""
    if previous is None:
        return CREATED
    now = mark(invoice)
    if previous == now:
        return None
    old_status = previous.split("|", 1)[0]
    if old_status != invoice.status.value:
        return STATUS_EVENTS.get(invoice.status, UPDATED)
    return UPDATED


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event the detector is about to record (the log gives it its id)."""

    type: str
    connection: str
    invoice: Invoice
    occurred_at: str  # ISO 8601 with offset

    def data(self) -> bytes:
        """The stored body: the canonical invoice."""
        return jsoncodec.dumps(self.invoice.to_dict(include_remote=False))


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as read back from the log."""

    id: str
    type: str
    connection: str
    invoice_id: str
    occurred_at: str
    data: bytes  # the canonical invoice, JSON

    def invoice(self) -> Invoice:
        """The canonical invoice the event is about."""
        return Invoice.from_dict(jsoncodec.loads(self.data))

    def to_dict(self) -> dict[str, Any]:
        """The JSON form served by the feed and posted to webhooks."""
        return {
            "id": self.id,
            "type": self.type,
            "timestamp": self.occurred_at,
            "connection": self.connection,
            "data": jsoncodec.loads(self.data),
        }

    def fields(self) -> dict[str, str | bytes]:
        """Flat form for a stream entry (the id is the entry's own)."""
        return {
            "type": self.type,
            "connection": self.connection,
            "invoice": self.invoice_id,
            "at": self.occurred_at,
            "data": self.data,
        }

    @classmethod
    def of(cls, entry_id: str, fields: dict[str, Any]) -> StoredEvent:
        """Read a stream entry's fields back (bytes or str values alike)."""

        def text(name: str) -> str:
            value = fields[name]
            return value.decode() if isinstance(value, bytes) else str(value)

        raw = fields["data"]
        return cls(
            id=entry_id,
            type=text("type"),
            connection=text("connection"),
            invoice_id=text("invoice"),
            occurred_at=text("at"),
            data=raw if isinstance(raw, bytes) else str(raw).encode(),
        )

"""Following unpaid invoices whose due date slid out of the detector's window.

Such an invoice can still be paid or cancelled, but the window listing no longer shows
it. It stays in the snapshot and is read one by one (`get_invoice`), a bounded number
per sync, rotating through them. Only a status change is reported — an item read may
be shaped a little differently from a listing row, and that is no news — and once an
invoice is paid or cancelled it leaves the snapshot for good.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gateway.errors import NotFoundError, UpstreamError, UpstreamNotFoundError
from gateway.events.model import NewEvent, classify, mark, parse_mark
from gateway.invoices.listing import Connection
from gateway.invoices.models import InvoiceStatus

UNPAID = {InvoiceStatus.OPEN.value, InvoiceStatus.OVERDUE.value}
FINAL = {InvoiceStatus.PAID, InvoiceStatus.CANCELLED}


def aged_unpaid(value: str, window_from: date) -> bool:
    """Whether a snapshot mark is an unpaid invoice due before the window."""
    status, due = parse_mark(value)
    return status in UNPAID and due is not None and due < window_from


@dataclass
class FollowUp:
    """What following some aged invoices found."""

    events: list[NewEvent] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


async def follow(
    conn: Connection, previous: dict[str, str], ids: list[str], at: str
) -> FollowUp:
    """Read each invoice; report status changes; drop the settled and the vanished."""
    out = FollowUp()
    for invoice_id in ids:
        remote_id = invoice_id.split(":", 2)[2]
        try:
            invoice = await conn.adapter.get_invoice(remote_id)
        except (NotFoundError, UpstreamNotFoundError):
            out.dropped.append(invoice_id)
            continue
        except UpstreamError:
            continue  # try again on a later sync
        old_status, _ = parse_mark(previous[invoice_id])
        if invoice.status.value != old_status:
            kind = classify(previous[invoice_id], invoice)
            if kind is not None:
                out.events.append(NewEvent(kind, conn.id, invoice, at))
        if invoice.status in FINAL:
            out.dropped.append(invoice_id)
        else:
            out.marks[invoice_id] = mark(invoice)
    return out


def rotation(ids: list[str], offset: int, limit: int) -> list[str]:
    """`limit` ids starting at `offset` (wrapping), so every one gets its turn."""
    if not ids or limit <= 0:
        return []
    ordered = sorted(ids)
    start = offset % len(ordered)
    return (ordered[start:] + ordered[:start])[:limit]

"""Totals of a merged invoice list: per currency, per status, and overdue aging buckets.

Money is only ever added within one currency (`null` currency is its own group). A total
never invents a number: an invoice whose amount is unknown (`null`) adds nothing to the
total and is counted under `unknown` beside it, and a total over invoices that are all
unknown is itself `null`, not `0.00`. Nothing paid yet on an open, overdue or cancelled
invoice is a known zero; on an invoice whose status is unknown it is unknown. Aging
counts the days an overdue invoice is past its due date, in its connection's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from gateway.invoices.models import Invoice, InvoiceStatus, format_money

AGING = (("0-30", 30), ("31-60", 60), ("61-90", 90), ("90+", None))
UNPAID = frozenset({InvoiceStatus.OPEN, InvoiceStatus.OVERDUE, InvoiceStatus.CANCELLED})


@dataclass(slots=True)
class Total:
    """A sum over the known values, and how many values were unknown."""

    known: Decimal = Decimal(0)
    known_count: int = 0
    unknown: int = 0

    def add(self, value: Decimal | None) -> None:
        """Add a value, or count it as unknown."""
        if value is None:
            self.unknown += 1
        else:
            self.known += value
            self.known_count += 1

    def render(self, currency: str | None) -> str | None:
        """The total, or null when no value was known."""
        if self.known_count == 0 and self.unknown:
            return None
        return format_money(self.known, currency)


@dataclass(slots=True)
class Group:
    """Running totals of one currency, or of one status or aging bucket in it."""

    count: int = 0
    amount: Total = field(default_factory=Total)
    amount_due: Total = field(default_factory=Total)
    amount_paid: Total = field(default_factory=Total)


def _bucket(days: int) -> str:
    for name, limit in AGING:
        if limit is None or days <= limit:
            return name
    raise AssertionError("unreachable")  # pragma: no cover


def paid_so_far(invoice: Invoice) -> Decimal | None:
    """What was paid: the stated value, a known zero while unpaid, else unknown."""
    if invoice.amount_paid is not None:
        return invoice.amount_paid
    return Decimal(0) if invoice.status in UNPAID else None


def summarize(
    invoices: list[Invoice], today_of: Callable[[str], date]
) -> list[dict[str, Any]]:
    """One entry per currency: counts and sums by status, amount due, aging of overdue."""
    groups: dict[str | None, tuple[Group, dict[str, Group], dict[str, Group]]] = {}
    for inv in invoices:
        group, by_status, aging = groups.setdefault(
            inv.currency, (Group(), {}, {name: Group() for name, _ in AGING})
        )
        paid = paid_so_far(inv)
        touched = [group, by_status.setdefault(inv.status.value, Group())]
        if inv.status is InvoiceStatus.OVERDUE and inv.due_date is not None:
            touched.append(
                aging[_bucket((today_of(inv.connection) - inv.due_date).days)]
            )
        for g in touched:
            g.count += 1
            g.amount.add(inv.amount)
            g.amount_due.add(inv.amount_due)
            g.amount_paid.add(paid)
    return [
        {
            "currency": currency,
            **_render(group, currency),
            "by_status": {
                name: _render(s, currency, only=("amount",))
                for name, s in sorted(by_status.items())
            },
            "aging": {
                name: _render(b, currency, only=("amount_due",))
                for name, b in aging.items()
            },
        }
        for currency, (group, by_status, aging) in sorted(
            groups.items(), key=lambda item: (item[0] is None, item[0] or "")
        )
    ]


def _render(
    group: Group,
    currency: str | None,
    only: tuple[str, ...] = ("amount", "amount_due", "amount_paid"),
) -> dict[str, Any]:
    totals = {name: getattr(group, name) for name in only}
    return {
        "count": group.count,
        **{name: total.render(currency) for name, total in totals.items()},
        "unknown": {name: total.unknown for name, total in totals.items()},
    }

"""Totals of a merged invoice list: per currency, per status, and overdue aging buckets.

Money is only ever added within one currency (`null` currency is its own group). Aging
counts the days an overdue invoice is past its due date, in its connection's time zone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Any

from gateway.models import Invoice, InvoiceStatus, format_money

AGING = (("0-30", 30), ("31-60", 60), ("61-90", 90), ("90+", None))


def _bucket(days: int) -> str:
    for name, limit in AGING:
        if limit is None or days <= limit:
            return name
    raise AssertionError("unreachable")  # pragma: no cover


def summarize(
    invoices: list[Invoice], today_of: Callable[[str], date]
) -> list[dict[str, Any]]:
    """One entry per currency: counts and sums by status, amount due, aging of overdue."""
    groups: dict[str | None, dict[str, Any]] = {}
    for inv in invoices:
        group = groups.setdefault(
            inv.currency,
            {
                "count": 0,
                "amount": Decimal(0),
                "amount_due": Decimal(0),
                "amount_paid": Decimal(0),
                "by_status": {},
                "aging": {
                    name: {"count": 0, "amount_due": Decimal(0)} for name, _ in AGING
                },
            },
        )
        group["count"] += 1
        group["amount"] += inv.amount or 0
        group["amount_due"] += inv.amount_due or 0
        group["amount_paid"] += inv.amount_paid or 0
        status = group["by_status"].setdefault(
            inv.status.value, {"count": 0, "amount": Decimal(0)}
        )
        status["count"] += 1
        status["amount"] += inv.amount or 0
        if inv.status is InvoiceStatus.OVERDUE and inv.due_date is not None:
            days = (today_of(inv.connection) - inv.due_date).days
            bucket = group["aging"][_bucket(days)]
            bucket["count"] += 1
            bucket["amount_due"] += inv.amount_due or 0
    return [
        _render(currency, group)
        for currency, group in sorted(groups.items(), key=_order)
    ]


def _order(item: tuple[str | None, dict[str, Any]]) -> tuple[bool, str]:
    return item[0] is None, item[0] or ""


def _render(currency: str | None, group: dict[str, Any]) -> dict[str, Any]:
    def money(value: Decimal) -> str | None:
        return format_money(value, currency)

    return {
        "currency": currency,
        "count": group["count"],
        "amount": money(group["amount"]),
        "amount_due": money(group["amount_due"]),
        "amount_paid": money(group["amount_paid"]),
        "by_status": {
            name: {"count": s["count"], "amount": money(s["amount"])}
            for name, s in sorted(group["by_status"].items())
        },
        "aging": {
            name: {"count": b["count"], "amount_due": money(b["amount_due"])}
            for name, b in group["aging"].items()
        },
    }

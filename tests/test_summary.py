"""Summary totals: sums of what is known, unknowns counted apart, never invented."""

from __future__ import annotations

from datetime import date

from gateway.invoices.models import Invoice
from gateway.invoices.summary import summarize

TODAY = date(2026, 12, 1)


def invoice(ident, *, status, amount, due=None, paid=None, currency="BRL"):
    """A canonical invoice with just what the summary reads."""
    return Invoice.from_dict(
        {
            "id": f"p:c:{ident}",
            "provider": "p",
            "connection": "c",
            "remote_id": str(ident),
            "number": None,
            "customer": {"remote_id": None, "document": None, "name": None},
            "status": status,
            "remote_status": None,
            "currency": currency,
            "amount": amount,
            "amount_paid": paid,
            "amount_due": due,
            "issue_date": None,
            "due_date": "2026-11-01",
            "paid_date": None,
            "billing_period": None,
            "payment": None,
            "lines": [],
        }
    )


def test_known_amounts_are_summed_and_unknown_ones_counted_apart():
    """One open, one paid, one unknown: totals of the known, unknowns counted, no zeros."""
    (brl,) = summarize(
        [
            invoice(1, status="overdue", amount="10.00", due="10.00"),
            invoice(2, status="paid", amount="20.00", due="0.00", paid="20.00"),
            invoice(3, status="unknown", amount="5.00"),
        ],
        lambda _conn: TODAY,
    )
    assert brl["count"] == 3
    assert brl["amount"] == "35.00"
    assert brl["amount_due"] == "10.00"
    assert brl["amount_paid"] == "20.00"
    assert brl["unknown"] == {"amount": 0, "amount_due": 1, "amount_paid": 1}
    assert brl["by_status"]["unknown"] == {
        "count": 1,
        "amount": "5.00",
        "unknown": {"amount": 0},
    }
    assert brl["aging"]["0-30"] == {
        "count": 1,
        "amount_due": "10.00",
        "unknown": {"amount_due": 0},
    }


def test_a_total_over_unknowns_only_is_null():
    """Every amount unknown: the totals are null and the unknown counts say why."""
    (usd,) = summarize(
        [invoice(i, status="unknown", amount=None, currency="USD") for i in range(3)],
        lambda _conn: TODAY,
    )
    assert usd["amount"] is None
    assert usd["amount_due"] is None
    assert usd["amount_paid"] is None
    assert usd["unknown"] == {"amount": 3, "amount_due": 3, "amount_paid": 3}
    assert usd["by_status"]["unknown"]["amount"] is None


def test_an_empty_group_of_known_zeros_is_zero():
    """An open invoice with nothing paid yet adds a known zero to amount_paid."""
    (brl,) = summarize(
        [invoice(1, status="open", amount="7.50", due="7.50")], lambda _conn: TODAY
    )
    assert brl["amount_paid"] == "0.00"
    assert brl["unknown"]["amount_paid"] == 0

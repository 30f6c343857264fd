"""The shared mapping rules that are not about one value: overdue, and an upstream word.

DESIGN.md section 5 decides them once for every adapter: an invoice is overdue when it is
unpaid and its due date is before today in the connection's time zone (`today` is given,
so mapping stays pure); an upstream status word the vocabulary does not know is
`unknown`, never a guess.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from datetime import date
from typing import TypeVar

from gateway.invoices.models import InvoiceStatus

K = TypeVar("K", bound=Hashable)


def overdue_rule(status: InvoiceStatus, due: date | None, today: date) -> InvoiceStatus:
    """`open` becomes `overdue` once the due date has passed; any other status stays."""
    if status is InvoiceStatus.OPEN and due is not None and due < today:
        return InvoiceStatus.OVERDUE
    return status


def status_word(
    word: K | None, vocabulary: Mapping[K, InvoiceStatus], due: date | None, today: date
) -> InvoiceStatus:
    """An upstream status word through its vocabulary (else `unknown`), then overdue."""
    status = InvoiceStatus.UNKNOWN if word is None else vocabulary.get(word)
    return overdue_rule(status or InvoiceStatus.UNKNOWN, due, today)

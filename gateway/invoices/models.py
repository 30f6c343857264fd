"""Canonical models: the public schema every adapter maps into and the API serves.

Frozen, slotted dataclasses; money is `Decimal` (never float), dates are `date`. Each
model converts to a JSON-ready dict (`to_dict`, money as strings with the currency's
minor digits) and back (`from_dict`, used by the cache), so the wire format is defined
in exactly one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeAlias

Money: TypeAlias = Decimal
JSONDict: TypeAlias = dict[str, Any]

# ISO 4217 minor units for the currencies we meet; anything else is served as written.
CURRENCY_MINOR_DIGITS: dict[str, int] = {
    "BRL": 2,
    "USD": 2,
    "EUR": 2,
    "GBP": 2,
    "AUD": 2,
    "JPY": 0,
    "CLP": 0,
}


class InvoiceStatus(StrEnum):
    """Where an invoice stands; `unknown` when the upstream does not say."""

    OPEN = "open"
    OVERDUE = "overdue"
    PAID = "paid"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class PaymentMethod(StrEnum):
    """How an invoice is meant to be paid; `other` for anything unmapped."""

    BOLETO = "boleto"
    PIX = "pix"
    DIRECT_DEBIT = "direct_debit"
    CREDIT_CARD = "credit_card"
    DEBIT_CARD = "debit_card"
    BANK_TRANSFER = "bank_transfer"
    CASH = "cash"
    CHEQUE = "cheque"
    OTHER = "other"


def format_money(amount: Money | None, currency: str | None) -> str | None:
    """Render money as a decimal string with the currency's minor digits."""
    if amount is None:
        return None
    digits = CURRENCY_MINOR_DIGITS.get(currency or "")
    if digits is not None:
        amount = amount.quantize(Decimal(1).scaleb(-digits))
    return format(amount, "f")


def _money(raw: Any) -> Money | None:
    return None if raw is None else Decimal(raw)


def _date(raw: Any) -> date | None:
    return None if raw is None else date.fromisoformat(raw)


def _iso(value: date | None) -> str | None:
    return None if value is None else value.isoformat()


@dataclass(frozen=True, slots=True)
class Customer:
    """Who owes the invoice, as the upstream knows them (document is digits only)."""

    remote_id: str | None = None
    document: str | None = None
    name: str | None = None

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "remote_id": self.remote_id,
            "document": self.document,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, raw: JSONDict) -> Customer:
        """Inverse of `to_dict`."""
        return cls(raw["remote_id"], raw["document"], raw["name"])


@dataclass(frozen=True, slots=True)
class Boleto:
    """A Brazilian bank slip: what a payer types, scans or downloads."""

    digitable_line: str | None = None
    barcode: str | None = None
    our_number: str | None = None
    url: str | None = None

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "digitable_line": self.digitable_line,
            "barcode": self.barcode,
            "our_number": self.our_number,
            "url": self.url,
        }

    @classmethod
    def from_dict(cls, raw: JSONDict) -> Boleto:
        """Inverse of `to_dict`."""
        return cls(raw["digitable_line"], raw["barcode"], raw["our_number"], raw["url"])


@dataclass(frozen=True, slots=True)
class Payment:
    """How to pay: the method plus whatever instruments the upstream gave."""

    method: PaymentMethod | None = None
    boleto: Boleto | None = None
    pix_code: str | None = None

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "method": self.method.value if self.method else None,
            "boleto": self.boleto.to_dict() if self.boleto else None,
            "pix_code": self.pix_code,
        }

    @classmethod
    def from_dict(cls, raw: JSONDict) -> Payment:
        """Inverse of `to_dict`."""
        method = raw["method"]
        boleto = raw["boleto"]
        return cls(
            PaymentMethod(method) if method else None,
            Boleto.from_dict(boleto) if boleto else None,
            raw["pix_code"],
        )


@dataclass(frozen=True, slots=True)
class BillingPeriod:
    """The calendar dates an invoice covers, as the upstream wrote them."""

    start: date
    end: date

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}

    @classmethod
    def from_dict(cls, raw: JSONDict) -> BillingPeriod:
        """Inverse of `to_dict`."""
        return cls(date.fromisoformat(raw["start"]), date.fromisoformat(raw["end"]))


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    """One charge inside an invoice."""

    description: str
    amount: Money | None

    def to_dict(self, currency: str | None) -> JSONDict:
        """JSON-ready form, money in the invoice's currency."""
        return {
            "description": self.description,
            "amount": format_money(self.amount, currency),
        }

    @classmethod
    def from_dict(cls, raw: JSONDict) -> InvoiceLine:
        """Inverse of `to_dict`."""
        return cls(raw["description"], _money(raw["amount"]))


@dataclass(frozen=True, slots=True)
class Invoice:
    """One invoice or receivable in the canonical schema (DESIGN.md section 5)."""

    provider: str
    connection: str
    remote_id: str
    status: InvoiceStatus
    customer: Customer
    currency: str | None
    amount: Money | None
    number: str | None = None
    remote_status: str | None = None
    amount_paid: Money | None = None
    amount_due: Money | None = None
    issue_date: date | None = None
    due_date: date | None = None
    paid_date: date | None = None
    billing_period: BillingPeriod | None = None
    payment: Payment | None = None
    lines: tuple[InvoiceLine, ...] = ()
    remote: JSONDict | None = field(default=None, compare=False)
    # Served forms, built once per instance: cached invoices are served many times.
    _served: dict[bool, JSONDict] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def id(self) -> str:
        """Canonical id: `provider:connection:remote_id`."""
        return f"{self.provider}:{self.connection}:{self.remote_id}"

    def to_dict(self, *, include_remote: bool = False) -> JSONDict:
        """JSON-ready form as served; `remote` only when asked for. Do not mutate it."""
        served = self._served.get(include_remote)
        if served is None:
            served = self._served[include_remote] = self._build_dict(include_remote)
        return served

    def _build_dict(self, include_remote: bool) -> JSONDict:
        cur = self.currency
        out: JSONDict = {
            "id": self.id,
            "provider": self.provider,
            "connection": self.connection,
            "remote_id": self.remote_id,
            "number": self.number,
            "customer": self.customer.to_dict(),
            "status": self.status.value,
            "remote_status": self.remote_status,
            "currency": cur,
            "amount": format_money(self.amount, cur),
            "amount_paid": format_money(self.amount_paid, cur),
            "amount_due": format_money(self.amount_due, cur),
            "issue_date": _iso(self.issue_date),
            "due_date": _iso(self.due_date),
            "paid_date": _iso(self.paid_date),
            "billing_period": self.billing_period.to_dict()
            if self.billing_period
            else None,
            "payment": self.payment.to_dict() if self.payment else None,
            "lines": [line.to_dict(cur) for line in self.lines],
        }
        if include_remote:
            out["remote"] = self.remote
        return out

    @classmethod
    def from_dict(cls, raw: JSONDict) -> Invoice:
        """Inverse of `to_dict(include_remote=True)` (the cache's format)."""
        period = raw["billing_period"]
        payment = raw["payment"]
        return cls(
            provider=raw["provider"],
            connection=raw["connection"],
            remote_id=raw["remote_id"],
            status=InvoiceStatus(raw["status"]),
            customer=Customer.from_dict(raw["customer"]),
            currency=raw["currency"],
            amount=_money(raw["amount"]),
            number=raw["number"],
            remote_status=raw["remote_status"],
            amount_paid=_money(raw["amount_paid"]),
            amount_due=_money(raw["amount_due"]),
            issue_date=_date(raw["issue_date"]),
            due_date=_date(raw["due_date"]),
            paid_date=_date(raw["paid_date"]),
            billing_period=BillingPeriod.from_dict(period) if period else None,
            payment=Payment.from_dict(payment) if payment else None,
            lines=tuple(InvoiceLine.from_dict(x) for x in raw["lines"]),
            remote=raw.get("remote"),
        )


def settle_amounts(
    status: InvoiceStatus, amount: Money | None, paid: Money | None
) -> tuple[Money | None, Money | None]:
    """Return `(amount_paid, amount_due)` by the shared rules of DESIGN.md section 5.

    Paid: the upstream's paid value, else the amount; nothing is due (a discount leaves no
    debt). Unpaid: nothing paid, the amount is due. Unknown status: neither is claimed.
    """
    if status is InvoiceStatus.PAID:
        return (paid if paid is not None else amount), Decimal(0)
    if status is InvoiceStatus.UNKNOWN:
        return paid, None
    if status is InvoiceStatus.CANCELLED:
        return paid, Decimal(0)
    return None, amount

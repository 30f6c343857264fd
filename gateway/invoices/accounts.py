"""Canonical sale accounts (where card/boleto/PIX receipts are collected) and their drafts.

`SaleAccount` is what the API serves; `SaleAccountDraft` is a validated write body (every
field optional, so the same type serves create and partial update). Vocabularies are the
gateway's own: acquirers by their usual names, payment methods in the canonical words,
with `credit_card_installments` for instalment credit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from gateway.invoices.models import JSONDict

ACQUIRERS = frozenset(
    {
        "bank_account",
        "cash_register",
        "cielo",
        "getnet",
        "pagseguro",
        "redecard",
        "safrapay",
        "stone",
        "ticket",
        "vero",
        "other",
    }
)
SALE_PAYMENT_METHODS = frozenset(
    {
        "boleto",
        "cash",
        "cheque",
        "credit_card",
        "credit_card_installments",
        "debit_card",
        "bank_transfer",
        "pix",
    }
)


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


@dataclass(frozen=True, slots=True)
class Classification:
    """A classifier applied to the receivables an account generates."""

    classifier_id: int
    name: str
    amount: Decimal | None = None
    percentage: Decimal | None = None

    def to_dict(self) -> JSONDict:
        """JSON-ready form."""
        return {
            "classifier_id": self.classifier_id,
            "name": self.name,
            "amount": _dec(self.amount),
            "percentage": _dec(self.percentage),
        }

    @classmethod
    def from_dict(cls, raw: JSONDict) -> Classification:
        """Inverse of `to_dict`."""
        amount, pct = raw.get("amount"), raw.get("percentage")
        return cls(
            int(raw["classifier_id"]),
            str(raw["name"]),
            None if amount is None else Decimal(str(amount)),
            None if pct is None else Decimal(str(pct)),
        )


@dataclass(frozen=True, slots=True)
class SaleAccountDraft:
    """A validated write body; None means 'not given' (partial update)."""

    name: str | None = None
    description: str | None = None
    entity_id: int | None = None
    acquirer: str | None = None
    payment_methods: tuple[str, ...] | None = None
    consolidate: bool | None = None
    category_id: int | None = None
    person_id: int | None = None
    classification_center_id: int | None = None
    custom_classifications: tuple[Classification, ...] | None = None
    classification_center_classifications: tuple[Classification, ...] | None = None

    def given(self) -> dict[str, Any]:
        """The fields that were given, by name."""
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if getattr(self, name) is not None
        }

    def fingerprint_source(self) -> JSONDict:
        """A JSON-ready form for hashing (same body, same fingerprint)."""
        out: JSONDict = {}
        for name, value in sorted(self.given().items()):
            if isinstance(value, tuple):
                out[name] = [
                    v.to_dict() if isinstance(v, Classification) else v for v in value
                ]
            else:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class SaleAccount:
    """A sale account as served."""

    provider: str
    connection: str
    remote_id: str
    entity_id: int | None
    name: str
    description: str | None
    acquirer: str
    remote_acquirer: str | None
    payment_methods: tuple[str, ...]
    consolidate: bool
    category_id: int | None = None
    person_id: int | None = None
    classification_center_id: int | None = None
    custom_classifications: tuple[Classification, ...] = ()
    classification_center_classifications: tuple[Classification, ...] = ()
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def id(self) -> str:
        """Canonical id: `provider:connection:remote_id`."""
        return f"{self.provider}:{self.connection}:{self.remote_id}"

    def to_dict(self) -> JSONDict:
        """JSON-ready form as served."""
        return {
            "id": self.id,
            "provider": self.provider,
            "connection": self.connection,
            "remote_id": self.remote_id,
            "entity_id": self.entity_id,
            "name": self.name,
            "description": self.description,
            "acquirer": self.acquirer,
            "remote_acquirer": self.remote_acquirer,
            "payment_methods": list(self.payment_methods),
            "consolidate": self.consolidate,
            "category_id": self.category_id,
            "person_id": self.person_id,
            "classification_center_id": self.classification_center_id,
            "custom_classifications": [
                c.to_dict() for c in self.custom_classifications
            ],
            "classification_center_classifications": [
                c.to_dict() for c in self.classification_center_classifications
            ],
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }

    @classmethod
    def from_dict(cls, raw: JSONDict) -> SaleAccount:
        """Inverse of `to_dict` (the cache's format)."""
        created, updated = raw.get("created_at"), raw.get("updated_at")
        return cls(
            provider=raw["provider"],
            connection=raw["connection"],
            remote_id=raw["remote_id"],
            entity_id=raw["entity_id"],
            name=raw["name"],
            description=raw["description"],
            acquirer=raw["acquirer"],
            remote_acquirer=raw["remote_acquirer"],
            payment_methods=tuple(raw["payment_methods"]),
            consolidate=raw["consolidate"],
            category_id=raw["category_id"],
            person_id=raw["person_id"],
            classification_center_id=raw["classification_center_id"],
            custom_classifications=tuple(
                Classification.from_dict(c) for c in raw["custom_classifications"]
            ),
            classification_center_classifications=tuple(
                Classification.from_dict(c)
                for c in raw["classification_center_classifications"]
            ),
            created_at=datetime.fromisoformat(created) if created else None,
            updated_at=datetime.fromisoformat(updated) if updated else None,
        )

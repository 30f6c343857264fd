"""Fintera records as decoded, typed at the boundary: the fields the mapping reads.

Lists are bare arrays of `{"<resource>": {...}}` (`mapping.unwrap` takes the inner
object). Scalar fields carry the vendor's documented types (money as decimal strings), but
nothing is trusted: each is read through the kit's parsers, which take any value and refuse
a wrong shape by name; a field whose type the mapping checks itself is `object`.
"""

from __future__ import annotations

from typing import TypedDict


class Receivable(TypedDict, total=False):
    """A receivable account (conta a receber): an invoice."""

    id: int
    entity_id: int
    person_id: int | None
    status: object  # 1 unpaid, 2 received, 3 received and reconciled; checked
    status_name: str | None
    amount: str
    total_amount: str | None
    due_date: str
    occurred_at: str | None
    document: str | None
    document_emission_date: str | None
    competency_month: str | None  # "2016-01"
    description: str | None


class Person(TypedDict, total=False):
    """A person (the customer of a receivable)."""

    id: int
    name: str
    federation_subscription_number: str  # formatted, "123.456.789-09"
    federation_subscription_number_only_numbers: str


class SaleAccountRecord(TypedDict, total=False):
    """A sale account (conta de recebível)."""

    id: int
    entity_id: int | None
    name: str
    description: str | None
    provider: str  # the acquirer
    payment_methods: str  # comma-joined
    consolidate: bool
    category_id: int | None
    person_id: int | None
    classification_center_id: int | None
    custom_classifications: object  # a list, checked by the mapping
    classification_center_classifications: object
    created_at: str | None
    updated_at: str | None

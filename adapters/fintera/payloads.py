"""Fintera records as decoded, typed at the boundary: the fields the mapping reads.

Lists are bare arrays of `{"<resource>": {...}}` (`mapping.unwrap` takes the inner
object). Values are `object`: the JSON (or XML) is not trusted, and the kit's parsers read
each field and refuse a wrong shape by name.
"""

from __future__ import annotations

from typing import TypedDict


class Receivable(TypedDict, total=False):
    """A receivable account (conta a receber): an invoice."""

    id: object
    entity_id: object
    person_id: object
    status: object  # 1 unpaid, 2 received, 3 received and reconciled
    status_name: object
    amount: object
    total_amount: object
    due_date: object
    occurred_at: object
    document: object
    document_emission_date: object
    competency_month: object
    description: object


class Person(TypedDict, total=False):
    """A person (the customer of a receivable)."""

    id: object
    name: object
    federation_subscription_number: object
    federation_subscription_number_only_numbers: object


class SaleAccountRecord(TypedDict, total=False):
    """A sale account (conta de recebível)."""

    id: object
    entity_id: object
    name: object
    description: object
    provider: object
    payment_methods: object
    consolidate: object
    category_id: object
    person_id: object
    classification_center_id: object
    custom_classifications: object
    classification_center_classifications: object
    created_at: object
    updated_at: object

"""Xarios records as decoded, typed at the boundary: the fields the mapping reads.

Scalar fields carry the vendor's documented types, but nothing is trusted: each is read
through the kit's parsers, which take any value and refuse a wrong shape by name. The list
and the get item spell the id `invoiceid`, the detail `invoiceId`; the detail's keys are
read folded (`invoiceItems`, `invoice_items` -> `invoiceitems`), so its type names the
folded keys.
"""

from __future__ import annotations

from typing import TypeAlias, TypedDict

Detail: TypeAlias = dict[str, object]
"""The detail JSON (inside the detail ZIP) as decoded, keys as written."""


class BillingItem(TypedDict, total=False):
    """One `/billingdata` entry (list or get)."""

    invoiceid: str
    invoiceId: str  # the vendor spells both
    invoiceNumber: str | None
    invoiceValue: float  # a double upstream; no currency is ever given
    tenantId: str | int
    customerName: str | None
    accountName: str | None
    billingPeriodStart: str  # .NET timestamps, up to 7 fraction digits
    billingPeriodEnd: str


class FoldedDetail(TypedDict, total=False):
    """The detail JSON (inside the detail ZIP), keys folded."""

    accountname: str | None
    invoicedate: str | None
    invoiceitems: object  # a list of FoldedItem, checked by the mapping


class FoldedItem(TypedDict, total=False):
    """One detail line, keys folded."""

    id: int | str
    producttagname: str | None
    quantity: object  # a number; the mapping checks it
    value: float | str | None

"""Xarios records as decoded, typed at the boundary: the fields the mapping reads.

Values are `object` (the JSON is not trusted; the kit's parsers read each field and refuse
a wrong shape by name). The list and the get item spell the id `invoiceid`, the detail
`invoiceId`; the detail's keys are read folded (`invoiceItems`, `invoice_items` ->
`invoiceitems`), so its type names the folded keys.
"""

from __future__ import annotations

from typing import TypedDict


class BillingItem(TypedDict, total=False):
    """One `/billingdata` entry (list or get)."""

    invoiceid: object
    invoiceId: object  # the vendor spells both
    invoiceNumber: object
    invoiceValue: object
    tenantId: object
    customerName: object
    accountName: object
    billingPeriodStart: object
    billingPeriodEnd: object


class FoldedDetail(TypedDict, total=False):
    """The detail JSON (inside the detail ZIP), keys folded."""

    accountname: object
    invoicedate: object
    invoiceitems: object  # a list of FoldedItem


class FoldedItem(TypedDict, total=False):
    """One detail line, keys folded."""

    id: object
    producttagname: object
    quantity: object
    value: object

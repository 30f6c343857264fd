"""Fintera payloads <-> canonical models. Pure: no I/O, no clock, no logging.

Receivable accounts (contas a receber) become invoices: status 1 is unpaid (open, or
overdue by the due date), 2 received and 3 received and reconciled are paid, whatever
`occurred_at` says; money arrives as strings; `competency_month` is the billing period.
Sale accounts translate both ways: `provider` is the acquirer, `payment_methods` a
comma-joined string upstream and a list here, classifications keep `name` (the deprecated
`value` is ignored).
"""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import date, datetime
from typing import Any, cast

from adapters.fintera.payloads import Person, Receivable, SaleAccountRecord
from gateway.invoices.accounts import Classification, SaleAccount, SaleAccountDraft
from gateway.invoices.models import (
    BillingPeriod,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    JSONDict,
    settle_amounts,
)
from gateway.upstream.kit.parse import (
    MappingError,
    day,
    digits,
    integer,
    money,
    required_text,
    text,
)
from gateway.upstream.kit.rules import status_word

PROVIDER = "fintera"
STATUS_MAP = {1: InvoiceStatus.OPEN, 2: InvoiceStatus.PAID, 3: InvoiceStatus.PAID}
# Fintera's documented `provider` list; each is also a canonical acquirer of that name.
UPSTREAM_PROVIDERS = frozenset(
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
ACQUIRER_MAP = {name: name for name in UPSTREAM_PROVIDERS}
METHOD_TO_CANONICAL = {
    "billet": "boleto",
    "cash": "cash",
    "cheque": "cheque",
    "credit": "credit_card",
    "parcelled": "credit_card_installments",
    "debit": "debit_card",
    "transfer": "bank_transfer",
    "pix": "pix",
}
METHOD_TO_UPSTREAM = {v: k for k, v in METHOD_TO_CANONICAL.items()}


def format_document(digits: str) -> str:
    """CPF/CNPJ as Fintera stores and searches it (`123.456.789-09`, `11.222.333/0001-81`)."""
    if len(digits) == 11:  # noqa: PLR2004 - CPF
        return f"{digits[:3]}.{digits[3:6]}.{digits[6:9]}-{digits[9:]}"
    return f"{digits[:2]}.{digits[2:5]}.{digits[5:8]}/{digits[8:12]}-{digits[12:]}"


def instant(raw: object, field: str) -> datetime | None:
    """An ISO timestamp with offset (`created_at`, `updated_at`)."""
    if raw is None or raw == "":
        return None
    try:
        return datetime.fromisoformat(str(raw))
    except ValueError as err:
        raise MappingError(field, "unreadable timestamp") from err


def competency(raw: object) -> BillingPeriod | None:
    """`"2016-01"` -> the whole month."""
    if raw is None or raw == "":
        return None
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", str(raw))
    if match is None or not 1 <= int(match.group(2)) <= 12:  # noqa: PLR2004
        raise MappingError("competency_month", "not a year-month")
    year, month = int(match.group(1)), int(match.group(2))
    return BillingPeriod(
        date(year, month, 1), date(year, month, monthrange(year, month)[1])
    )


def unwrap(item: object, key: str) -> JSONDict:
    """`{"<resource>": {...}}` -> the inner object."""
    inner = item.get(key) if isinstance(item, dict) else None
    if not isinstance(inner, dict):
        raise MappingError(key, "expected an object wrapped in this key")
    return inner


def receivable(item: object) -> Receivable:
    """`{"receivable_account": {...}}` -> the receivable."""
    return cast("Receivable", unwrap(item, "receivable_account"))


def person_of(item: object) -> Person:
    """`{"person": {...}}` -> the person."""
    return cast("Person", unwrap(item, "person"))


def to_customer(person: Person | None, person_id: object) -> Customer:
    """A person (customer) record, or just its id when it was not looked up."""
    if person is None:
        return Customer(remote_id=None if person_id is None else str(person_id))
    found = text(
        person.get("federation_subscription_number_only_numbers"),
        "federation_subscription_number_only_numbers",
    ) or digits(
        person.get("federation_subscription_number"), "federation_subscription_number"
    )
    return Customer(
        str(person.get("id", person_id)), found, text(person.get("name"), "name")
    )


def to_invoice(
    raw: Receivable,
    *,
    connection: str,
    today: date,
    person: Person | None,
    currency: str | None = "BRL",
) -> Invoice:
    """Map one receivable account."""
    remote_id = "-".join(
        required_text(raw.get(key), key) for key in ("entity_id", "id")
    )
    code = raw.get("status")
    due = day(raw.get("due_date"), "due_date")
    status = status_word(
        code if isinstance(code, int) else None, STATUS_MAP, due, today
    )
    amount = money(raw.get("amount"), "amount")
    paid, owed = settle_amounts(
        status, amount, money(raw.get("total_amount"), "total_amount")
    )
    description = text(raw.get("description"), "description")
    paid_on = day(raw.get("occurred_at"), "occurred_at")
    return Invoice(
        provider=PROVIDER,
        connection=connection,
        remote_id=remote_id,
        number=text(raw.get("document"), "document"),
        customer=to_customer(person, raw.get("person_id")),
        status=status,
        remote_status=text(raw.get("status_name"), "status_name")
        or (None if code is None else str(code)),
        currency=currency,
        amount=amount,
        amount_paid=paid,
        amount_due=owed,
        issue_date=day(raw.get("document_emission_date"), "document_emission_date"),
        due_date=due,
        paid_date=paid_on if status is InvoiceStatus.PAID else None,
        billing_period=competency(raw.get("competency_month")),
        lines=(InvoiceLine(description, amount),) if description else (),
        remote=cast("JSONDict", raw),
    )


def _classifications(raw: Any, id_key: str) -> tuple[Classification, ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        Classification(
            int(item[id_key]),
            str(item.get("name") or ""),
            money(item.get("amount"), "classifications.amount"),
            money(item.get("percentage"), "classifications.percentage"),
        )
        for item in raw
        if isinstance(item, dict) and item.get(id_key) is not None
    )


def to_sale_account(item: object, *, connection: str) -> SaleAccount:
    """Map one `{"sale_account": {...}}` item."""
    raw = cast("SaleAccountRecord", unwrap(item, "sale_account"))
    remote = str(raw.get("provider") or "")
    methods = [m for m in str(raw.get("payment_methods") or "").split(",") if m]
    return SaleAccount(
        provider=PROVIDER,
        connection=connection,
        remote_id=required_text(raw.get("id"), "id"),
        entity_id=integer(raw.get("entity_id"), "entity_id"),
        name=str(raw.get("name") or ""),
        description=text(raw.get("description"), "description"),
        acquirer=ACQUIRER_MAP.get(remote, "other"),
        remote_acquirer=remote or None,
        payment_methods=tuple(METHOD_TO_CANONICAL.get(m, "other") for m in methods),
        consolidate=bool(raw.get("consolidate")),
        category_id=integer(raw.get("category_id"), "category_id"),
        person_id=integer(raw.get("person_id"), "person_id"),
        classification_center_id=integer(
            raw.get("classification_center_id"), "classification_center_id"
        ),
        custom_classifications=_classifications(
            raw.get("custom_classifications"), "custom_classifier_id"
        ),
        classification_center_classifications=_classifications(
            raw.get("classification_center_classifications"), "classification_center_id"
        ),
        created_at=instant(raw.get("created_at"), "created_at"),
        updated_at=instant(raw.get("updated_at"), "updated_at"),
    )


def to_upstream(draft: SaleAccountDraft) -> dict[str, Any]:
    """A draft as Fintera's `{"sale_account": {...}}` body (only the given fields)."""
    body: dict[str, Any] = {}
    given = draft.given()
    for name in (
        "name",
        "description",
        "entity_id",
        "consolidate",
        "category_id",
        "person_id",
        "classification_center_id",
    ):
        if name in given:
            body[name] = given[name]
    if draft.acquirer is not None:
        body["provider"] = draft.acquirer
    if draft.payment_methods is not None:
        body["payment_methods"] = ",".join(
            METHOD_TO_UPSTREAM[m] for m in draft.payment_methods
        )
    if draft.custom_classifications is not None:
        body["custom_classifications"] = [
            {
                "custom_classifier_id": c.classifier_id,
                "name": c.name,
                **_numbers(c, as_text=False),
            }
            for c in draft.custom_classifications
        ]
    if draft.classification_center_classifications is not None:
        body["classification_center_classifications"] = [
            {
                "classification_center_id": c.classifier_id,
                "name": c.name,
                **_numbers(c, as_text=True),
            }
            for c in draft.classification_center_classifications
        ]
    return {"sale_account": body}


def _numbers(c: Classification, *, as_text: bool) -> dict[str, Any]:
    """Amounts as Fintera expects them: numbers here, strings there (its own quirk)."""
    out: dict[str, Any] = {}
    for key, value in (("amount", c.amount), ("percentage", c.percentage)):
        if value is not None:
            out[key] = format(value, "f") if as_text else float(value)
    return out


def matches(account: SaleAccount, draft: SaleAccountDraft) -> bool:
    """Whether an existing account is what `draft` would have created."""
    return (
        account.name == draft.name
        and account.entity_id == draft.entity_id
        and account.acquirer == draft.acquirer
        and set(account.payment_methods) == set(draft.payment_methods or ())
    )

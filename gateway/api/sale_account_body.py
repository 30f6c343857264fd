"""Sale-account write bodies: JSON in, a validated `SaleAccountDraft` out, or a 400.

Every field is checked against the documented vocabularies and types, every problem is
reported at once, each naming its field (nested ones as `custom_classifications[0].name`),
and unknown fields are refused rather than silently dropped.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from gateway.api.fields import bounded_decimal
from gateway.errors import FieldError, InvalidRequestError
from gateway.invoices.accounts import (
    ACQUIRERS,
    SALE_PAYMENT_METHODS,
    Classification,
    SaleAccountDraft,
)

MAX_NAME = 255
MAX_DESCRIPTION = 2000
MAX_CLASSIFICATIONS = 50
MAX_PERCENT = Decimal(100)
MAX_CONNECTION_ID = 63
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
LINE_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # \t \n \r kept
MAX_ID = 2**63  # what Fintera's ids (bigint) can hold
# Amounts are in the account's currency (2 places); percentages go to Fintera with 2 too.
DECIMAL_SCALE = 2
WRITABLE = frozenset(SaleAccountDraft.__dataclass_fields__)
REQUIRED_ON_CREATE = ("name", "entity_id", "acquirer", "payment_methods")


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def fail(self, field: str, message: str) -> None:
        self.errors.append(FieldError(field, message))

    def text(self, raw: Any, field: str, limit: int, *, empty_ok: bool) -> str | None:
        controls = LINE_CONTROL_RE if empty_ok else CONTROL_RE
        if (
            not isinstance(raw, str)
            or (not empty_ok and not raw.strip())
            or len(raw) > limit
            or controls.search(raw)
        ):
            need = "text" if empty_ok else "non-empty text"
            self.fail(
                field,
                f"must be {need} of at most {limit} characters, "
                "without control characters",
            )
            return None
        return raw.strip() if not empty_ok else raw

    def ident(self, raw: Any, field: str) -> int | None:
        # JSON Schema's "integer" admits 42.0; an integral float is taken as that int.
        if isinstance(raw, float) and raw.is_integer() and abs(raw) < MAX_ID:
            raw = int(raw)
        if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw < MAX_ID:
            self.fail(field, f"must be a positive integer id below {MAX_ID}")
            return None
        return raw

    def decimal(
        self, raw: Any, field: str, maximum: Decimal | None = None
    ) -> Decimal | None:
        if raw is None:
            return None
        value = bounded_decimal(raw, scale=DECIMAL_SCALE)
        if value is None:
            self.fail(
                field,
                f"must be a decimal number with at most {DECIMAL_SCALE} decimal places "
                'and 15 integer digits (a string such as "36.00" is best)',
            )
            return None
        if value < 0 or (maximum is not None and value > maximum):
            self.fail(field, f"must be between 0 and {maximum or 'any amount'}")
            return None
        return value

    def classifications(
        self, raw: Any, field: str
    ) -> tuple[Classification, ...] | None:
        if not isinstance(raw, list) or len(raw) > MAX_CLASSIFICATIONS:
            self.fail(field, f"must be a list of at most {MAX_CLASSIFICATIONS} objects")
            return None
        out = []
        for i, item in enumerate(raw):
            where = f"{field}[{i}]"
            if not isinstance(item, dict):
                self.fail(where, "must be an object")
                continue
            for extra in sorted(
                set(item) - {"classifier_id", "name", "amount", "percentage"}
            ):
                self.fail(f"{where}.{extra}", "unknown field")
            before = len(self.errors)
            cid = self.ident(item.get("classifier_id"), f"{where}.classifier_id")
            name = self.text(
                item.get("name"), f"{where}.name", MAX_NAME, empty_ok=False
            )
            amount = self.decimal(item.get("amount"), f"{where}.amount")
            pct = self.decimal(
                item.get("percentage"), f"{where}.percentage", MAX_PERCENT
            )
            if len(self.errors) == before and cid is not None and name is not None:
                out.append(Classification(cid, name, amount, pct))
        return tuple(out)


def parse_sale_account(
    raw: Any, *, create: bool
) -> tuple[str | None, SaleAccountDraft]:
    """Validate a POST (`create`) or PUT body; return (connection, draft) or raise a 400."""
    c = _Checker()
    if not isinstance(raw, dict):
        raise InvalidRequestError([FieldError("body", "must be a JSON object")])
    allowed = WRITABLE | ({"connection"} if create else set())
    for extra in sorted(set(raw) - allowed):
        c.fail(extra, "unknown field" if extra != "connection" else "cannot be changed")
    if create:
        for name in REQUIRED_ON_CREATE:
            if raw.get(name) is None:
                c.fail(name, "required")
    elif not set(raw) & WRITABLE:
        c.fail("body", "give at least one field to change")
    _refuse_nulls(c, raw, set(REQUIRED_ON_CREATE) if create else set())
    connection = raw.get("connection")
    if create and (
        not isinstance(connection, str) or not 1 <= len(connection) <= MAX_CONNECTION_ID
    ):
        c.fail(
            "connection", "required: the id of the connection to create the account in"
        )
    fields: dict[str, Any] = {}
    _check_fields(c, raw, fields)
    if c.errors:
        raise InvalidRequestError(c.errors)
    return (connection if isinstance(connection, str) else None), SaleAccountDraft(
        **fields
    )


def _refuse_nulls(c: _Checker, raw: dict[str, Any], required: set[str]) -> None:
    """Null would read as "clear it", which cannot be honoured: refuse, never ignore."""
    for name in sorted((set(raw) & WRITABLE) - required):
        if raw[name] is None:
            c.fail(name, "must not be null; leave the field out to keep it unchanged")


def _check_fields(c: _Checker, raw: dict[str, Any], fields: dict[str, Any]) -> None:
    if raw.get("name") is not None:
        fields["name"] = c.text(raw["name"], "name", MAX_NAME, empty_ok=False)
    if raw.get("description") is not None:
        fields["description"] = c.text(
            raw["description"], "description", MAX_DESCRIPTION, empty_ok=True
        )
    for name in ("entity_id", "category_id", "person_id", "classification_center_id"):
        if raw.get(name) is not None:
            fields[name] = c.ident(raw[name], name)
    _check_choices(c, raw, fields)
    for name in ("custom_classifications", "classification_center_classifications"):
        if raw.get(name) is not None:
            fields[name] = c.classifications(raw[name], name)


def _check_choices(c: _Checker, raw: dict[str, Any], fields: dict[str, Any]) -> None:
    if raw.get("acquirer") is not None:
        # Type first: a list or object is unhashable and must not reach `in`.
        if isinstance(raw["acquirer"], str) and raw["acquirer"] in ACQUIRERS:
            fields["acquirer"] = raw["acquirer"]
        else:
            c.fail("acquirer", f"must be one of {', '.join(sorted(ACQUIRERS))}")
    if raw.get("payment_methods") is not None:
        methods = raw["payment_methods"]
        if (
            not isinstance(methods, list)
            or not methods
            or not all(isinstance(m, str) for m in methods)
            or len(set(methods)) != len(methods)
            or not set(methods) <= SALE_PAYMENT_METHODS
        ):
            c.fail(
                "payment_methods",
                "must be a non-empty list without repeats of "
                + ", ".join(sorted(SALE_PAYMENT_METHODS)),
            )
        else:
            fields["payment_methods"] = tuple(methods)
    if raw.get("consolidate") is not None:
        if isinstance(raw["consolidate"], bool):
            fields["consolidate"] = raw["consolidate"]
        else:
            c.fail("consolidate", "must be true or false")

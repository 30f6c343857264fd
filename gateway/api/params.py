"""Query-string parsing for the list route: every problem found, each naming its field.

Unknown parameters are refused too: a typo such as `staus=paid` silently widening a
query is worse than a 400.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import date

from multidict import MultiMapping

from gateway.api.fields import ascii_int
from gateway.errors import FieldError, InvalidRequestError
from gateway.invoices.listing import SORTS, ListRequest
from gateway.invoices.models import InvoiceStatus
from gateway.upstream.providers import InvoiceQuery

LIST_PARAMS = frozenset(
    {
        "customer_document",
        "customer_id",
        "contract_id",
        "status",
        "due_from",
        "due_to",
        "period_from",
        "period_to",
        "provider",
        "connection",
        "sort",
        "limit",
        "cursor",
        "include",
    }
)
SUMMARY_PARAMS = LIST_PARAMS - {"sort", "limit", "cursor", "include"}
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
MAX_VALUE_LEN = 512
REMOTE_ID_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
CURSOR_RE = re.compile(r"[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{1,64}")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
DOCUMENT_RE = re.compile(r"[0-9]{11}|[0-9]{14}")
CPF_LEN = 11
CNPJ_LEN = 14


def document_digits(raw: str) -> str | None:
    """Digits of a valid CPF or CNPJ (punctuation allowed), else None."""
    if len(raw) > 2 * CNPJ_LEN:
        return None
    digits = re.sub(r"[./ -]", "", raw)
    if not DOCUMENT_RE.fullmatch(digits):  # ASCII digits only: `int("²")` would raise
        return None
    if len(set(digits)) == 1:
        return None
    if len(digits) == CPF_LEN:
        weights = [list(range(10, 1, -1)), list(range(11, 1, -1))]
    else:
        first = [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]
        weights = [first, [6, *first]]
    body = len(digits) - 2
    for i, w in enumerate(weights):
        total = sum(int(d) * k for d, k in zip(digits[: body + i], w, strict=True))
        check = 0 if total % 11 < 2 else 11 - total % 11  # noqa: PLR2004 - mod-11 rule
        if int(digits[body + i]) != check:
            return None
    return digits


class _Reader:
    """Collects field errors while reading single-valued parameters."""

    def __init__(self, params: MultiMapping[str]) -> None:
        self.params = params
        self.errors: list[FieldError] = []

    def fail(self, name: str, message: str) -> None:
        self.errors.append(FieldError(name, message))

    def one(self, name: str) -> str | None:
        values = self.params.getall(name, [])
        if not values:
            return None
        if len(values) > 1:
            self.fail(name, "given more than once")
            return None
        if len(values[0]) > MAX_VALUE_LEN:
            self.fail(name, f"longer than {MAX_VALUE_LEN} characters")
            return None
        if CONTROL_RE.search(values[0]):
            # `10\n` is not `10`: a value is taken whole or refused, never trimmed.
            self.fail(name, "must not contain control characters")
            return None
        value = values[0].strip(" ")
        if not value:
            self.fail(name, "is empty")
            return None
        return value

    def date(self, name: str) -> date | None:
        raw = self.one(name)
        if raw is None:
            return None
        try:
            if not ISO_DATE_RE.fullmatch(raw):
                raise ValueError(raw)  # noqa: TRY301 - one message for both failures
            return date.fromisoformat(raw)
        except ValueError:
            self.fail(name, "must be a date as YYYY-MM-DD")
            return None

    def choices(self, name: str, allowed: Collection[str]) -> frozenset[str] | None:
        raw = self.one(name)
        if raw is None:
            return None
        items = {part.strip() for part in raw.split(",")}
        bad = sorted(items - set(allowed))
        if bad or "" in items:
            self.fail(
                name,
                f"unknown value(s) {', '.join(bad) or '(empty)'}; "
                f"allowed: {', '.join(sorted(allowed))}",
            )
            return None
        return frozenset(items)


def parse_list_request(
    params: MultiMapping[str],
    *,
    providers: Collection[str],
    connections: Collection[str],
    no_cache: bool = False,
    allowed: frozenset[str] = LIST_PARAMS,
) -> ListRequest:
    """Validate `GET /v1/invoices` parameters into a `ListRequest`, or raise a 400."""
    r = _Reader(params)
    for name in sorted(set(params) - allowed):
        r.fail(name, "unknown parameter")
    raw_document = r.one("customer_document")
    document = document_digits(raw_document) if raw_document else None
    if raw_document and document is None:
        r.fail(
            "customer_document", "must be a valid CPF (11 digits) or CNPJ (14 digits)"
        )
    customer_id = _remote_id(r, "customer_id")
    contract_id = _remote_id(r, "contract_id")
    statuses = r.choices("status", [s.value for s in InvoiceStatus])
    due_from, due_to = r.date("due_from"), r.date("due_to")
    if due_from and due_to and due_from > due_to:
        r.fail("due_to", "is before due_from")
    period_from, period_to = r.date("period_from"), r.date("period_to")
    if period_from and period_to and period_from > period_to:
        r.fail("period_to", "is before period_from")
    provider = r.choices("provider", providers)
    connection = r.choices("connection", connections)
    if (customer_id or contract_id) and connection is None:
        field = "customer_id" if customer_id else "contract_id"
        r.fail(field, "is only meaningful inside one upstream: also give `connection`")
    sort = r.one("sort") or "due_date"
    if sort not in SORTS:
        r.fail("sort", f"must be one of {', '.join(SORTS)}")
    limit = _limit(r)
    include = r.choices("include", ["remote"]) or frozenset()
    cursor = r.one("cursor")
    if cursor is not None and not CURSOR_RE.fullmatch(cursor):
        r.fail("cursor", "is not a cursor this gateway issued")
        cursor = None
    if r.errors:
        raise InvalidRequestError(r.errors)
    query = InvoiceQuery(
        customer_document=document,
        customer_id=customer_id,
        contract_id=contract_id,
        statuses=frozenset(InvoiceStatus(s) for s in statuses or ()),
        due_from=due_from,
        due_to=due_to,
        period_from=period_from,
        period_to=period_to,
    )
    return ListRequest(
        query=query,
        providers=provider,
        connections=connection,
        sort=sort,
        limit=limit,
        cursor=cursor,
        include_remote="remote" in include,
        force_refresh=no_cache,
    )


def _remote_id(r: _Reader, name: str) -> str | None:
    value = r.one(name)
    if value is not None and not REMOTE_ID_RE.fullmatch(value):
        r.fail(name, "must be 1-64 letters, digits, '.', '_' or '-'")
        return None
    return value


def _limit(r: _Reader) -> int:
    raw = r.one("limit")
    if raw is None:
        return DEFAULT_LIMIT
    value = ascii_int(raw, low=1, high=MAX_LIMIT)
    if value is None:
        r.fail("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        return DEFAULT_LIMIT
    return value

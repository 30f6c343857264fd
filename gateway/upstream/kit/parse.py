"""Reading upstream values: money, calendar dates, text; a bad one is a `MappingError`.

Every adapter's mapping reads the same few shapes out of vendor JSON, and must refuse the
same way: a value of a shape its contract does not allow raises `MappingError` naming the
field (never the payload), which the row path turns into a dropped-and-counted row on a
list or a 502 on an item (`gateway.upstream.kit.rows`). Pure: no
I/O, no clock. Money is `Decimal`, never float; a locale form (`200,0`) is refused rather
than guessed; a date is the calendar date written, with no time-zone conversion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

_MONEY_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_ISO_DAY_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,7})?)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_DAY_FIRST_RE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")
_FOLD_RE = re.compile(r"[\s_-]")
_SHOWN = 40


class MappingError(ValueError):
    """A field of an upstream record holds a value its contract does not allow.

    `field` is the upstream's own name for it (or a short path such as `cliente.nome`);
    the message never carries more than a short, cut excerpt of the value.
    """

    def __init__(self, field: str, reason: str) -> None:
        """Name the field and say what is wrong with it."""
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _shown(raw: object) -> str:
    text = repr(raw)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def money(raw: object, field: str) -> Decimal | None:
    """A JSON number or a dotted decimal string; null or blank is unknown (None).

    Refused: booleans, non-finite numbers, locale forms (`200,0`, `R$ 10`), exponents and
    anything that is not a number.
    """
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise MappingError(field, "money is a boolean")
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw):
            raise MappingError(field, "money is not a finite number")
        return Decimal(repr(raw))
    if isinstance(raw, str) and _MONEY_RE.fullmatch(raw.strip()):
        return Decimal(raw.strip())
    raise MappingError(field, f"unreadable amount {_shown(raw)}")


def day(raw: object, field: str, *, day_first: bool = False) -> date | None:
    """The calendar date written; null or blank is None.

    ISO `yyyy-mm-dd`, alone or opening a timestamp (`T` or a space, seconds with up to
    seven fraction digits, `Z` or an offset). `day_first` also admits `dd/mm/yyyy`.
    """
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise MappingError(field, f"date is not text: {type(raw).__name__}")
    text = raw.strip()
    if day_first and (match := _DAY_FIRST_RE.fullmatch(text)):
        dd, mm, yyyy = match.groups()
    elif match := _ISO_DAY_RE.fullmatch(text):
        yyyy, mm, dd = match.groups()
    else:
        raise MappingError(field, f"unreadable date {_shown(raw)}")
    try:
        return date(int(yyyy), int(mm), int(dd))
    except ValueError as err:
        raise MappingError(field, f"impossible date {_shown(raw)}") from err


def text(raw: object, field: str) -> str | None:
    """A string (trimmed; blank is None) or an integer as its digits; null is None."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.strip() or None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise MappingError(field, f"expected text, got {type(raw).__name__}")


def required_text(raw: object, field: str) -> str:
    """Like `text`, but a missing or blank value is refused (an id, say)."""
    value = text(raw, field)
    if value is None:
        raise MappingError(field, "missing")
    return value


def integer(raw: object, field: str) -> int | None:
    """A JSON integer (an upstream id, say); null is None, anything else refused."""
    if raw is None:
        return None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    raise MappingError(field, f"expected an integer, got {type(raw).__name__}")


def digits(raw: object, field: str) -> str | None:
    """Only the ASCII digits of a text (a formatted CPF/CNPJ, say); none is None."""
    value = text(raw, field)
    found = re.sub(r"[^0-9]", "", value) if value else ""
    return found or None


def objects(raw: object, field: str, *, lone: bool = False) -> list[dict[str, object]]:
    """A JSON array of objects (null is empty); `lone` also takes one bare object."""
    if raw is None:
        return []
    items = [raw] if lone and isinstance(raw, dict) else raw
    if not isinstance(items, list):
        raise MappingError(field, "not an array" + (" nor an object" if lone else ""))
    if not all(isinstance(item, dict) for item in items):
        raise MappingError(field, "an entry is not an object")
    return items


def folded(raw: Mapping[str, object]) -> dict[str, object]:
    """The object with its keys folded (`invoiceItems`, `invoice_items` -> `invoiceitems`).

    For upstreams that spell one key several ways; the first spelling met wins.
    """
    out: dict[str, object] = {}
    for key, value in raw.items():
        out.setdefault(_FOLD_RE.sub("", str(key)).lower(), value)
    return out

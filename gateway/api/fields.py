"""The one parsing discipline for what callers send: ids, numbers, decimals, tokens.

Every check is a full-string match over ASCII (`re.fullmatch`, never `^...$`, whose `$`
also matches before a final newline; never `str.isdigit`, which accepts `²`), bounded in
length before any conversion, and type-checked before any hashing or lookup. A refusal
is a `FieldError` naming the field; the callers gather them into one 400.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from gateway.errors import FieldError, InvalidRequestError

# provider:connection:remote_id, each part from a small ASCII alphabet.
CANONICAL_ID_RE = re.compile(
    r"[a-z][a-z0-9_]{0,31}:[a-z0-9][a-z0-9_-]{0,62}:[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
)
CANONICAL_ID_HINT = (
    "must look like provider:connection:remote_id (ASCII letters, digits, . _ -)"
)
# A decimal as text: bounded digits, an optional short exponent. Checked before Decimal().
DECIMAL_TEXT_RE = re.compile(r"-?[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,2})?")
MAX_DECIMAL_INTEGER_DIGITS = 15  # 10^15 of anything is not a sale-account figure


def ascii_int(raw: str, *, low: int, high: int) -> int | None:
    """`raw` as an int in [low, high] when it is 1..len(str(high)) ASCII digits, else None."""
    if not re.fullmatch(r"[0-9]{1,%d}" % len(str(high)), raw):  # noqa: UP031 - a quantifier
        return None
    value = int(raw)
    return value if low <= value <= high else None


def canonical_id(raw: str, field: str = "id") -> str:
    """A canonical `provider:connection:remote_id`, or a 400 naming `field`."""
    if not CANONICAL_ID_RE.fullmatch(raw):
        raise InvalidRequestError([FieldError(field, CANONICAL_ID_HINT)])
    return raw


def bounded_decimal(raw: Any, *, scale: int) -> Decimal | None:
    """A finite decimal with at most `scale` fraction digits and a sane magnitude, or None.

    Text is matched (digits and exponent bounded) before `Decimal` sees it, so a value
    such as `1e-1000000000` never expands into a gigabyte of zeros; JSON numbers arrive
    as int or float and are judged by the same rules.
    """
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        return None
    text = raw if isinstance(raw, str) else repr(raw)
    if not DECIMAL_TEXT_RE.fullmatch(text):
        return None
    value = Decimal(text)  # the pattern admits only finite, valid text
    if not value:
        return Decimal(0)  # `0e-20` is zero, not twenty decimal places of it
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # noqa: S101 - finite, so never 'n', 'N' or 'F'
    if value.adjusted() >= MAX_DECIMAL_INTEGER_DIGITS or -exponent > scale:
        return None
    return value


def printable_ascii(raw: str, *, max_len: int) -> bool:
    """True when `raw` is 1..max_len visible ASCII characters (no space, no control)."""
    return bool(re.fullmatch(r"[\x21-\x7e]{1,%d}" % max_len, raw))  # noqa: UP031

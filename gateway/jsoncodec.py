"""The one place that owns JSON: orjson options and the hook for types orjson lacks.

Decimals leave as strings (money is never a float on the wire); everything else orjson
already knows (dates, dataclasses, enums). Decoding errors surface as `ValueError`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Serialise to compact UTF-8 JSON bytes."""
    return orjson.dumps(value, default=_default, option=_OPTIONS)


def dumps_str(value: Any) -> str:
    """Serialise to a JSON text (for aiohttp's `dumps=` hooks)."""
    return dumps(value).decode()


def loads(data: bytes | str) -> Any:
    """Parse JSON; raises `ValueError` (orjson.JSONDecodeError) on malformed input."""
    return orjson.loads(data)

"""Schemathesis hooks of the fuzz run (loaded through tests/schemathesis.toml).

A caller's `X-Deadline-Ms` of 50 ms is valid, and the demo's upstreams need longer on a
cold cache, so the gateway rightly answers 504. The run gives every *valid* deadline at
least 5 s, so a 5xx in it can only be a gateway fault; invalid values (below 50, not
digits) are sent as generated. The 504 itself is pinned by the deadline tests.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

from gateway.api.handlers import MIN_DEADLINE_MS

HEADER = "X-Deadline-Ms"
FLOOR_MS = 5000


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Raise a valid but tight deadline to the floor; leave anything else alone."""
    del ctx, kwargs
    value = (case.headers or {}).get(HEADER)
    digits = isinstance(value, str) and re.fullmatch(r"[0-9]{1,7}", value)
    if digits and MIN_DEADLINE_MS <= int(value) < FLOOR_MS:
        case.headers[HEADER] = str(FLOOR_MS)

"""Schemathesis hooks of the fuzz run (loaded through tests/schemathesis.toml).

Loaded only inside the fuzzer's own process. Besides the deadline floor below, it works
around a CPython 3.11.7 bug: hypothesis describes filter lambdas by parsing their source
with `ast.parse`, which on this interpreter sometimes raises `SystemError: AST
constructor recursion depth mismatch`; the fuzzer then reports a runtime error for an
operation it never tested. The description is only a label, so the fallback is one.

A caller's `X-Deadline-Ms` of 50 ms is valid, and the demo's upstreams need longer on a
cold cache, so the gateway rightly answers 504. The run gives every *valid* deadline at
least 5 s, so a 5xx in it can only be a gateway fault; invalid values (below 50, not
digits) are sent as generated. The 504 itself is pinned by the deadline tests. A valid
`wait_s` of the events feed is sent as 0: a long-poll would only idle the run.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis.internal import lambda_sources

from gateway.api.deadlines import MIN_DEADLINE_MS

HEADER = "X-Deadline-Ms"
FLOOR_MS = 5000


_describe = lambda_sources.lambda_description


def _label_or_placeholder(f: Any) -> str:
    try:
        return str(_describe(f))
    except SystemError:
        return "lambda: <unknown>"


lambda_sources.lambda_description = _label_or_placeholder


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Raise a valid but tight deadline to the floor; leave anything else alone."""
    del ctx, kwargs
    value = (case.headers or {}).get(HEADER)
    digits = isinstance(value, str) and re.fullmatch(r"[0-9]{1,7}", value)
    if digits and MIN_DEADLINE_MS <= int(value) < FLOOR_MS:
        case.headers[HEADER] = str(FLOOR_MS)
    wait = (case.query or {}).get("wait_s")
    if isinstance(wait, int | str) and re.fullmatch(r"[0-9]{1,2}", str(wait)):
        case.query["wait_s"] = 0  # a valid long-poll would only idle the run

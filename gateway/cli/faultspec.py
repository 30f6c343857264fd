"""`demo --fault PROVIDER=FAULT[:VALUE][@RATIO]`: parsed strictly, before anything starts.

An unknown provider, a value that is not a number or a ratio outside (0, 1] is refused
here with what would be accepted; the simulator then refuses a fault it does not know or a
value it cannot use (an HTTP status outside 400-599) before it serves a request.
"""

from __future__ import annotations

import math
from collections.abc import Collection

from gateway.errors import ConfigError

FAULT_ALIASES: dict[str, tuple[str, object]] = {
    "slow": ("latency", 3.0),
    "down": ("status", 503),
    "hang": ("hang", True),
    "garbage": ("malformed", True),
}
FORMAT = "PROVIDER=FAULT[:VALUE][@RATIO]"
HELP = (
    "inject a simulator fault (repeatable). Aliases: slow (3 s latency), down (status 503), "
    "hang (never answers), garbage (truncated JSON). Or any simulator fault: latency:SECONDS, "
    "status:CODE, hang, unauthorized, rate_limited:SECONDS, malformed, html, huge:BYTES, "
    "trickle:SECONDS, reset, and the vendor's own (hubsoft: envelope_error; xarios: "
    "bad_zip; fintera: overdue, no_api, slow_create:SECONDS). @RATIO in (0, 1] hits that "
    "share of requests. E.g. hubsoft=slow fintera=status:503@0.5"
)

Fault = tuple[str, object, float]


def parse_faults(
    specs: list[str], known_providers: Collection[str]
) -> dict[str, list[Fault]]:
    """Every spec as (fault, value, ratio) per provider; all bad specs raised together."""
    out: dict[str, list[Fault]] = {}
    problems: list[str] = []
    for spec in specs:
        try:
            provider, fault = _parse_one(spec, known_providers)
        except ValueError as err:
            problems.append(f"--fault {spec!r}: {err}")
            continue
        out.setdefault(provider, []).append(fault)
    if problems:
        raise ConfigError(problems)
    return out


def _parse_one(spec: str, known_providers: Collection[str]) -> tuple[str, Fault]:
    provider, eq, rest = spec.partition("=")
    if provider not in known_providers:
        raise ValueError(
            f"unknown provider {provider!r}; known: {', '.join(sorted(known_providers))}"
        )
    rest, at, raw_ratio = rest.partition("@")
    name, colon, raw_value = rest.partition(":")
    if not eq or not name or (colon and not raw_value) or (at and not raw_ratio):
        raise ValueError(f"use {FORMAT}")
    fault, value = FAULT_ALIASES.get(name, (name, True))
    if raw_value:
        value = _number(raw_value, "VALUE")
    ratio = _number(raw_ratio, "RATIO") if raw_ratio else 1.0
    if not 0 < ratio <= 1:
        raise ValueError(f"RATIO {raw_ratio} is outside (0, 1]")
    return provider, (fault, value, float(ratio))


def _number(raw: str, what: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        number = float(raw)
    except ValueError:
        raise ValueError(f"{what} {raw!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{what} {raw!r} is not a finite number")
    return number

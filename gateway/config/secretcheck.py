"""Judging secret values: placeholders, too short, too guessable.

Our own secrets (the cursor key) must be long and random; credentials an upstream issued are
the vendor's business, but a value copied from an example file (`change-me`, `<password>`)
is a mistake whoever issued it. Messages never quote the value.
"""

from __future__ import annotations

import math
import re
from collections import Counter

MIN_ENTROPY_BITS = 80.0
# Words that example files and templates put where a secret belongs.
PLACEHOLDER_RE = re.compile(
    r"change[-_ ]?me|replace[-_ ]?(me|with|this)|placeholder|your[-_ ]\w+[-_ ]here"
    r"|^<.*>$|^\$\{.*\}$|^(password|passwd|secret|todo|fixme|xxx+|\.\.\.|none|null)$",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """True for a value that an example file or template left where a secret belongs."""
    return PLACEHOLDER_RE.search(value.strip()) is not None


def entropy_bits(value: str) -> float:
    """Shannon entropy of the value's own characters, times its length.

    An estimate from above: a random key scores high; a repeated character, a short
    repeated pattern or a tiny alphabet scores low.
    """
    counts = Counter(value)
    n = len(value)
    return -sum(c * math.log2(c / n) for c in counts.values())


def own_secret_problem(value: str, min_length: int) -> str | None:
    """Why a secret this gateway relies on (never typed by a person) is unusable, or None."""
    if not value:
        return "not set"
    if is_placeholder(value):
        return "is a placeholder from an example; generate one (openssl rand -hex 32)"
    if len(value) < min_length:
        return f"needs at least {min_length} characters (openssl rand -hex 32)"
    if entropy_bits(value) < MIN_ENTROPY_BITS:
        return "is too predictable (repeated characters or a pattern); use a random one"
    return None

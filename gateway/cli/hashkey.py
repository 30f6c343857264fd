"""`invoice-gateway hash-key`: the SHA-256 an `[[api_keys]]` entry stores.

The key is read from stdin or a prompt, never from the command line (shell history and
`ps` keep arguments), and a key too weak to stay secret behind its hash is refused.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import secrets
import sys

from gateway.config.secretcheck import entropy_bits, is_placeholder

MIN_API_KEY_CHARS = 20
MIN_API_KEY_BITS = 64.0


def cmd_hash_key(args: argparse.Namespace) -> int:
    """Print the SHA-256 of an API key (read from stdin or a prompt, never argv)."""
    if args.generate:
        key = secrets.token_urlsafe(32)
        print(f"key:    {key}\nsha256: {hashlib.sha256(key.encode()).hexdigest()}")
        return 0
    if sys.stdin.isatty():
        key = getpass.getpass("API key (not echoed): ").strip()
    else:
        key = sys.stdin.readline().strip()
    if (problem := _weak_key(key)) is not None:
        print(f"invoice-gateway hash-key: {problem}", file=sys.stderr)
        return 2
    print(hashlib.sha256(key.encode()).hexdigest())
    return 0


def _weak_key(key: str) -> str | None:
    """Why a key must not be used (a hash of it would be guessed), or None."""
    if not key:
        return "no key given (pipe it on stdin, or type it at the prompt)"
    if is_placeholder(key):
        return "that is a placeholder, not a key; try --generate"
    if len(key) < MIN_API_KEY_CHARS or entropy_bits(key) < MIN_API_KEY_BITS:
        return (
            f"too short or predictable (at least {MIN_API_KEY_CHARS} random characters); "
            "try --generate"
        )
    return None

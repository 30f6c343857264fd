"""Opaque, HMAC-signed keyset cursors for merged lists.

A cursor holds the sort position of the last item served (its sort key and canonical id)
and a fingerprint of the query that produced it. It is base64url(JSON) + "." +
signature; a cursor that was altered, signed with another secret, or made for another
query is rejected, and the caller gets a 400 naming `cursor`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from gateway import jsoncodec
from gateway.config.settings import Secret
from gateway.errors import FieldError, InvalidRequestError

VERSION = 2  # 2: the sort key carries the currency group
SIG_BYTES = 16
KEY_PARTS = 3  # (missing-last flag, currency group, value)


@dataclass(frozen=True, slots=True)
class Position:
    """Where the previous page ended in the merged order."""

    key: list[Any]  # the sort key of the last item, JSON-safe
    id: str


def fingerprint(query_key: str) -> str:
    """A short digest of a normalised query (filters + sort, not limit)."""
    return hashlib.sha256(query_key.encode()).hexdigest()[:16]


class CursorCodec:
    """Signs and verifies cursors with one secret."""

    def __init__(self, secret: Secret) -> None:
        """Derive the MAC key from the configured secret."""
        self._key = hashlib.sha256(b"cursor:" + secret.reveal().encode()).digest()

    def encode(self, position: Position, query_fingerprint: str) -> str:
        """Opaque text for `next_cursor`."""
        payload = jsoncodec.dumps(
            {"v": VERSION, "k": position.key, "i": position.id, "f": query_fingerprint}
        )
        body = base64.urlsafe_b64encode(payload).rstrip(b"=")
        return (body + b"." + self._sign(body)).decode()

    def decode(self, cursor: str, query_fingerprint: str) -> Position:
        """Verify and unpack, or raise a 400 naming `cursor`."""
        body, _, sig = cursor.encode().partition(b".")
        if not body or not hmac.compare_digest(sig, self._sign(body)):
            raise _bad("is not a cursor this gateway issued (altered or foreign)")
        try:
            payload = jsoncodec.loads(
                base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
            )
            key, ident, fp = payload["k"], payload["i"], payload["f"]
        except (ValueError, KeyError, TypeError) as err:
            raise _bad("is malformed") from err
        if (
            payload.get("v") != VERSION
            or not isinstance(key, list)
            or len(key) != KEY_PARTS
            or not isinstance(ident, str)
        ):
            raise _bad("is malformed")
        if fp != query_fingerprint:
            raise _bad("belongs to a different query; repeat the same filters and sort")
        return Position(key, ident)

    def _sign(self, body: bytes) -> bytes:
        mac = hmac.new(self._key, body, hashlib.sha256).digest()[:SIG_BYTES]
        return base64.urlsafe_b64encode(mac).rstrip(b"=")


def _bad(message: str) -> InvalidRequestError:
    return InvalidRequestError([FieldError("cursor", message)])

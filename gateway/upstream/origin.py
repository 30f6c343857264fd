"""Where an upstream call may go: the connection's own origin, and listed document hosts.

Every URL the funnel sends to is built here, from one of two things:

- an adapter's endpoint path (`"/api/v1/..."`), appended to the connection's base URL;
- a `Link` the upstream handed us (a next page, a document, a redirect's `Location`),
  resolved by RFC 3986 against the base (or the URL that answered).

The result's scheme, host and port are then compared with the connection's, so a link
can only ever send the connection's credentials back where they came from. Documents may
also come from the origins a connection lists (`document_origins`); those calls never
carry credentials. Links whose reading differs between parsers (backslashes, control
characters, spaces, non-ASCII, percent-encoded separators, user info) are refused
outright rather than interpreted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from yarl import URL

# Control characters, spaces, backslashes and anything outside ASCII have no place in a
# URL an upstream sends (RFC 3986); parsers that "fix" them disagree on the result.
UNSAFE_CHARS_RE = re.compile(r"[\x00-\x20\x7f-\U0010ffff\\]")
# An encoded slash, backslash, at-sign or dot before the query can turn into a separator
# (or a dot-segment) once someone decodes it.
ENCODED_SEPARATOR_RE = re.compile(r"%(2f|5c|40|2e|3a)", re.IGNORECASE)
DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_LINK_CHARS = 4096


class LinkRefusedError(ValueError):
    """A URL the funnel will not call; the reason never quotes the URL itself."""


@dataclass(frozen=True, slots=True)
class Link:
    """A URL reference that came from upstream data: never trusted, always resolved.

    `context` is the URL it was found at (a `Link` header is relative to the request
    that answered it); without one it is resolved against the connection's base URL.
    """

    raw: str
    context: URL | None = None


@dataclass(frozen=True, slots=True)
class Origin:
    """Scheme, host and port: what credentials are bound to (RFC 6454)."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: URL) -> Origin:
        """The origin of an absolute http(s) URL without user info, else refused."""
        scheme = (url.scheme or "").lower()
        if scheme not in DEFAULT_PORTS:
            raise LinkRefusedError("not an http(s) URL")
        if not url.raw_host:
            raise LinkRefusedError("no host")
        if url.raw_user is not None or url.raw_password is not None:
            raise LinkRefusedError("user info in the URL")
        port = url.port if url.explicit_port is not None else DEFAULT_PORTS[scheme]
        return cls(scheme, url.raw_host.lower().rstrip("."), port or 0)

    @classmethod
    def parse(cls, text: str) -> Origin:
        """An origin written in configuration (`https://cdn.example.com[:port]`)."""
        if UNSAFE_CHARS_RE.search(text):
            raise LinkRefusedError("unsafe characters")
        url = URL(text)
        if url.path not in ("", "/") or url.raw_query_string or url.raw_fragment:
            raise LinkRefusedError("an origin has no path, query or fragment")
        return cls.of(url)

    def __str__(self) -> str:
        """`scheme://host:port`, for messages (an origin holds no secret)."""
        return f"{self.scheme}://{self.host}:{self.port}"


def base_url(text: str) -> URL:
    """A connection's base URL, checked once: absolute http(s), no user info."""
    url = URL(text.rstrip("/"))
    Origin.of(url)
    return url


def endpoint(base: URL, path: str, params: Mapping[str, str] | None = None) -> URL:
    """An adapter's endpoint: `path` under the base URL's own path, `params` as query."""
    if not path.startswith("/") or path.startswith("//"):
        raise LinkRefusedError("an endpoint path starts with a single '/'")
    if any(part in {".", ".."} for part in path.split("/")):
        raise LinkRefusedError("dot segments in an endpoint path")
    url = base.with_path(base.path.rstrip("/") + path)
    return url.with_query(dict(params)) if params else url


def resolve(base: URL, link: Link, params: Mapping[str, str] | None = None) -> URL:
    """A link resolved (RFC 3986 section 5) against its context or `base`, `params` merged."""
    raw = link.raw
    if not raw or len(raw) > MAX_LINK_CHARS:
        raise LinkRefusedError("empty or oversized link")
    if UNSAFE_CHARS_RE.search(raw):
        raise LinkRefusedError("unsafe characters in the link")
    if ENCODED_SEPARATOR_RE.search(raw.split("?", 1)[0]):
        raise LinkRefusedError("percent-encoded separator in the link")
    try:
        url = (link.context or base).join(URL(raw))
    except ValueError as err:
        raise LinkRefusedError("unparseable link") from err
    url = url.with_fragment(None)
    return url.update_query(dict(params)) if params else url


def check(url: URL, allowed: Iterable[Origin]) -> Origin:
    """The URL's origin if it is one of `allowed`; refused otherwise."""
    origin = Origin.of(url)
    if origin not in set(allowed):
        raise LinkRefusedError("the link leaves the connection's origin")
    return origin

"""The shapes of a list request and its answer, and how results are cached and ordered.

`ListRequest` is a validated query; `SourceOutcome` and `ListResult` are what the fan-out
produces; `sort_key` is the merged order (missing values last, canonical id breaking
ties) that the keyset cursor relies on; `encode_result`/`decode_result` are a source
result's cache form and `list_key` its cache key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from gateway import jsoncodec
from gateway.config.settings import ConnectionSettings
from gateway.errors import ErrorType, UpstreamError
from gateway.invoices.models import Invoice
from gateway.state.cache import Encoded, Lookup
from gateway.upstream.http import UpstreamClient
from gateway.upstream.providers import InvoiceProvider, InvoiceQuery, SourceResult

SORTS = ("due_date", "-due_date", "amount", "-amount")
SortKey = tuple[int, str, Decimal, str]
NO_CURRENCY = "~"  # sorts after every ISO 4217 code
# How a source fared: answered fresh, served from a stale copy, failed, ran out of time,
# or was not asked (it cannot answer this query).
SourceStatus = Literal["ok", "stale", "error", "timeout", "skipped"]


@dataclass(frozen=True, slots=True)
class Connection:
    """A configured connection at run time: its settings, adapter and funnel."""

    settings: ConnectionSettings
    adapter: InvoiceProvider
    http: UpstreamClient

    @property
    def id(self) -> str:
        """The connection id."""
        return self.settings.id


@dataclass(frozen=True, slots=True)
class ListRequest:
    """A validated `GET /v1/invoices`."""

    query: InvoiceQuery
    providers: frozenset[str] | None = None
    connections: frozenset[str] | None = None
    sort: str = "due_date"
    limit: int = 50
    cursor: str | None = None
    include_remote: bool = False
    force_refresh: bool = False
    deadline_s: float | None = None  # a caller's tighter deadline (never a looser one)


@dataclass(frozen=True, slots=True)
class SourceError:
    """Why a source failed or is stale: a `type` to act on and a human `detail`.

    `type` is an `ErrorType`; `detail` names the connection and call, never a secret or
    query string.
    """

    type: ErrorType
    detail: str

    @classmethod
    def of(cls, err: UpstreamError) -> SourceError:
        """The caller-facing form of an upstream failure."""
        return cls(err.error_type, str(err))

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"type": self.type, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class SourceOutcome:
    """One connection's part in a response (`sources[]`).

    `error` says why the source failed (or why its data is stale); `note` carries what a
    caller should know about an answer that is not an error: why the source was skipped,
    rows left out, a page cap reached.
    """

    connection: str
    provider: str
    status: SourceStatus
    from_cache: bool = False
    fetched_at: float | None = None
    latency_ms: float = 0.0
    count: int = 0
    error: SourceError | None = None
    complete: bool = True
    note: str | None = None
    # Not shown: the cache entry the answer came from and until when it is fresh, so an
    # answer built from it can be reused while that very entry is still held and fresh.
    key: str | None = None
    fresh_until: float | None = None

    @property
    def log_entry(self) -> str:
        """`connection:status`, as the request's access line lists its sources."""
        return f"{self.connection}:{self.status}"

    def to_dict(self, now: float) -> dict[str, Any]:
        """JSON-ready form; age is computed at serving time."""
        fetched = None
        age = None
        if self.fetched_at is not None:
            fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.fetched_at))
            age = max(0, int(now - self.fetched_at))
        return {
            "connection": self.connection,
            "provider": self.provider,
            "status": self.status,
            "from_cache": self.from_cache,
            "fetched_at": fetched,
            "age_s": age,
            "latency_ms": round(self.latency_ms, 1),
            "count": self.count,
            "complete": self.complete,
            "error": None if self.error is None else self.error.to_dict(),
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of the merged list and how each source fared."""

    invoices: list[Invoice]
    next_cursor: str | None
    sources: list[SourceOutcome]

    @property
    def complete(self) -> bool:
        """True only when every source answered fresh and whole."""
        return all_complete(self.sources)

    @property
    def answered(self) -> bool:
        """Whether any source answered, or none was asked (nothing failed)."""
        return any_answered(self.sources)


def all_complete(sources: list[SourceOutcome]) -> bool:
    """True only when every source answered fresh and whole."""
    return all(s.status == "ok" and s.complete for s in sources)


def any_answered(sources: list[SourceOutcome]) -> bool:
    """Whether any source answered, or none was asked (nothing failed)."""
    tried = [s for s in sources if s.status != "skipped"]
    return not tried or any(s.status in {"ok", "stale"} for s in tried)


def list_key(connection: str, query: InvoiceQuery) -> str:
    """The cache key of a connection's answer to `query`.

    The query is a Redis Cluster hash tag: every source of one query sits in one slot,
    so their versions are read in one round trip.
    """
    return f"{connection}:invoices:{{{query.cache_key()}}}"


def sort_key(invoice: Invoice, sort: str) -> SortKey:
    """Merged order: missing values last in both directions, then canonical id.

    Amounts are only compared within a currency: an amount sort groups invoices by
    currency (ISO code ascending, unknown currency last), then orders the amounts in the
    direction asked. Adding 10 BRL to 31.50 USD is meaningless, and so is ranking them.
    """
    if sort.lstrip("-") == "due_date":
        group = ""
        value = (
            None if invoice.due_date is None else Decimal(invoice.due_date.toordinal())
        )
    else:
        group = invoice.currency or NO_CURRENCY
        value = invoice.amount
    if value is None:
        return (1, group, Decimal(0), invoice.id)
    return (0, group, -value if sort.startswith("-") else value, invoice.id)


def encode_result(result: SourceResult) -> bytes:
    """Cache form of a source's result."""
    return jsoncodec.dumps(
        {
            "i": [inv.to_dict(include_remote=True) for inv in result.invoices],
            "c": result.complete,
            "n": result.note,
        }
    )


def encoded(result: SourceResult, ttl: tuple[float, float] | None) -> Encoded:
    """A loader's answer: the cache form, the result itself and its own lifetime."""
    if ttl is None:
        return Encoded(encode_result(result), result)
    return Encoded(encode_result(result), result, *ttl)


def result_of(lookup: Lookup) -> SourceResult:
    """The result a lookup holds: the loader's own when it just ran, else decoded."""
    if isinstance(lookup.decoded, SourceResult):
        return lookup.decoded
    return decode_result(lookup.value)


def decode_result(data: bytes) -> SourceResult:
    """Inverse of `encode_result`."""
    raw = jsoncodec.loads(data)
    return SourceResult(
        tuple(Invoice.from_dict(i) for i in raw["i"]), raw["c"], raw["n"]
    )

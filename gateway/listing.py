"""The shapes of a list request and its answer, and how results are cached and ordered.

`ListRequest` is a validated query; `SourceOutcome` and `ListResult` are what the fan-out
produces; `sort_key` is the merged order (missing values last, canonical id breaking
ties) that the keyset cursor relies on; `encode_result`/`decode_result` are a source
result's cache form.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from gateway import jsoncodec
from gateway.http import UpstreamClient
from gateway.models import Invoice
from gateway.providers import InvoiceProvider, InvoiceQuery, SourceResult
from gateway.settings import ConnectionSettings

SORTS = ("due_date", "-due_date", "amount", "-amount")
SortKey = tuple[int, Decimal, str]


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
class SourceOutcome:
    """One connection's part in a response (`sources[]`)."""

    connection: str
    provider: str
    status: str  # ok | stale | error | timeout | skipped
    from_cache: bool = False
    fetched_at: float | None = None
    latency_ms: float = 0.0
    count: int = 0
    error: str | None = None
    complete: bool = True

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
            "error": self.error,
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
        return all(s.status == "ok" and s.complete for s in self.sources)

    @property
    def answered(self) -> bool:
        """Whether any source answered, or none was asked (nothing failed)."""
        tried = [s for s in self.sources if s.status != "skipped"]
        return not tried or any(s.status in {"ok", "stale"} for s in tried)


def sort_key(invoice: Invoice, sort: str) -> SortKey:
    """Merged order: missing values last in both directions, then canonical id."""
    if sort.lstrip("-") == "due_date":
        value = (
            None if invoice.due_date is None else Decimal(invoice.due_date.toordinal())
        )
    else:
        value = invoice.amount
    if value is None:
        return (1, Decimal(0), invoice.id)
    return (0, -value if sort.startswith("-") else value, invoice.id)


def encode_result(result: SourceResult) -> bytes:
    """Cache form of a source's result."""
    return jsoncodec.dumps(
        {
            "i": [inv.to_dict(include_remote=True) for inv in result.invoices],
            "c": result.complete,
            "n": result.note,
        }
    )


def decode_result(data: bytes) -> SourceResult:
    """Inverse of `encode_result`."""
    raw = jsoncodec.loads(data)
    return SourceResult(
        tuple(Invoice.from_dict(i) for i in raw["i"]), raw["c"], raw["n"]
    )

"""The row path: upstream records to invoices, one or many, the same way for every adapter.

An adapter hands its decoded records and its pure `to_invoice`; the kit narrows each JSON
object to the adapter's row type (a TypedDict) at this one boundary and maps it. A record
that fails (`MappingError`, any `ValueError`) costs only itself: on a list it is dropped,
counted, logged and the source marked incomplete (`map_rows`); alone, it is a 502 naming
the connection and the field, never its value (`map_one`). `settled_ttl` is the shared
cache rule for data that no longer changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar, cast

from gateway.errors import UpstreamProtocolError
from gateway.invoices.models import Invoice, InvoiceStatus
from gateway.upstream.kit.parse import MappingError
from gateway.upstream.providers import ProviderContext, SourceResult

Row = TypeVar("Row", bound=Mapping[str, object])
"""An upstream record as its adapter types it (a TypedDict of the vendor's fields)."""


def _record(row: object) -> dict[str, object]:
    """A decoded JSON object, or a `MappingError` (a list of rows may hold anything)."""
    if not isinstance(row, dict):
        raise MappingError("record", "is not an object")
    return row


def map_rows(
    rows: Sequence[object],
    to_invoice: Callable[[Row], Invoice],
    ctx: ProviderContext,
    note: str | None = None,
    *,
    belongs: Callable[[Row], bool] | None = None,
) -> SourceResult:
    """Map upstream rows; a row that fails (`ValueError`) is left out, counted and logged.

    One unreadable row must not cost the caller every other invoice of the source, nor
    pass silently: the result is then marked incomplete and says how many were dropped.
    `belongs` re-checks that a row is the asked customer's: an upstream is never trusted
    to have filtered, and a row of someone else is dropped, counted and logged, never
    served (the source is then incomplete too: its filter cannot be trusted).
    """
    invoices, bad, foreign = [], 0, 0
    for row in rows:
        try:
            # The decode boundary: a JSON object is taken as the adapter's row type here;
            # its fields are then read through the kit's parsers, which refuse bad shapes.
            record = cast("Row", _record(row))
            if belongs is not None and not belongs(record):
                foreign += 1
                continue
            invoices.append(to_invoice(record))
        except ValueError as err:
            bad += 1
            ctx.log.warning(
                "row_unreadable", connection=ctx.settings.id, reason=str(err)
            )
    notes = [note]
    if foreign:
        ctx.log.warning("rows_of_others", connection=ctx.settings.id, count=foreign)
        notes.append(f"{foreign} row(s) of other customers left out")
    if bad:
        notes.append(f"{bad} row(s) unreadable and left out")
    note = "; ".join(filter(None, notes)) or None
    return SourceResult(tuple(invoices), complete=note is None, note=note)


def map_one(
    row: object,
    to_invoice: Callable[[Row], Invoice],
    ctx: ProviderContext,
    path: str,
) -> Invoice:
    """Map one upstream record through the same path as a list (`map_rows`).

    Where a list leaves an unreadable row out, a single record has nothing else to
    give: it becomes an `UpstreamProtocolError` (a 502 naming the connection and the
    field, never its value), never an uncaught mapping exception.
    """
    try:
        return to_invoice(cast("Row", _record(row)))
    except ValueError as err:
        ctx.log.warning("row_unreadable", connection=ctx.settings.id, reason=str(err))
        field = f" ({err.field})" if isinstance(err, MappingError) else ""
        raise UpstreamProtocolError(
            ctx.settings.id, "GET", path, f"the record is unreadable{field}"
        ) from err


PAID_OR_FINAL = (3600.0, 7 * 86400.0)


def settled_ttl(kind: str, result: SourceResult) -> tuple[float, float] | None:
    """A shared policy: one invoice already paid or cancelled changes rarely; cache it long."""
    finished = {InvoiceStatus.PAID, InvoiceStatus.CANCELLED}
    if kind == "invoice" and result.invoices and result.invoices[0].status in finished:
        return PAID_OR_FINAL
    return None

"""Pure mapping of Xarios billingdata payloads and the detail ZIP (no I/O)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.xarios.mapping import parse_day, parse_detail_zip, to_invoice
from gateway.invoices.models import BillingPeriod, InvoiceStatus
from gateway.upstream.kit.parse import MappingError, money

FIXTURES = Path(__file__).parent / "fixtures"


def load(name: str):
    """A fixture file's JSON."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def zipped(members: dict[str, bytes]) -> bytes:
    """A ZIP archive with the given members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_list_item_maps_without_inventing_anything():
    """No status, due date, payment or currency is invented; the period is as written."""
    raw = load("billingdata_list.json")["data"][1]
    inv = to_invoice(raw, connection="rs", currency=None)
    assert inv.id == "xarios:rs:0b8a1f5e-1111-4c3e-9d7a-000000000002"
    assert inv.status is InvoiceStatus.UNKNOWN
    assert (inv.due_date, inv.paid_date, inv.issue_date, inv.payment) == (
        None,
        None,
        None,
        None,
    )
    assert (inv.amount, inv.amount_due, inv.amount_paid) == (
        Decimal("200.0"),
        None,
        None,
    )
    assert inv.currency is None
    assert inv.to_dict()["amount"] == "200.0"
    assert inv.billing_period == BillingPeriod(date(2020, 2, 1), date(2020, 2, 29))
    assert inv.customer.remote_id == "7d0c7f1e-aaaa-4bbb-8ccc-0000000000aa"
    assert inv.customer.name == "Reseller 1"
    assert inv.number == "9000002"
    assert inv.lines == ()


def test_currency_comes_from_the_connection():
    """A configured currency is used and formats money with its digits."""
    raw = load("billingdata_list.json")["data"][0]
    assert (
        to_invoice(raw, connection="rs", currency="GBP").to_dict()["amount"] == "200.00"
    )


def test_detail_adds_lines_issue_date_and_accepts_camel_case_id():
    """Detail JSON: `invoiceId`, `accountName`, 7-digit fractions without offset, items."""
    detail = load("billingdata_detail.json")
    inv = to_invoice(detail, connection="rs", currency="USD", detail=detail)
    assert inv.remote_id == "0b8a1f5e-1111-4c3e-9d7a-000000000004"
    assert inv.customer.name == "Reseller 1"
    assert inv.issue_date == date(2020, 5, 1)
    assert inv.billing_period == BillingPeriod(date(2020, 4, 1), date(2020, 4, 30))
    assert [(line.description, line.amount) for line in inv.lines] == [
        ("Essential User #XDM00001", Decimal("10.0")),
        ("Analytics Add-on x 3", Decimal("7.5")),
    ]
    assert inv.remote["detail"]["invoiceItems"][0]["operatorUsed"] == "PRICE"


def test_detail_zip_is_read_and_bad_zips_are_mapping_errors():
    """The JSON member is found; a broken archive or JSON is a MappingError."""
    detail = load("billingdata_detail.json")
    good = zipped(
        {"invoice_9000004.json": json.dumps(detail).encode(), "invoice.csv": b"a,b\n"}
    )
    assert parse_detail_zip(good)["invoiceId"] == detail["invoiceId"]
    for bad in (
        b"PK\x03\x04 not a zip",
        zipped({"only.csv": b"a,b"}),
        zipped({"x.json": b"{not json"}),
        zipped({"x.json": b'{"invoiceItems": 3}'}),
        zipped({"a.json": b"{}", "b.json": b"{}"}),
    ):
        with pytest.raises(MappingError):
            parse_detail_zip(bad)


@pytest.mark.parametrize(
    ("raw", "day"),
    [
        ("2020-01-31T23:59:59.999+00:00", date(2020, 1, 31)),
        ("2020-04-01T00:00:00.0000000", date(2020, 4, 1)),
        ("2019-05-01T10:00:00.2890319Z", date(2019, 5, 1)),
        ("2020-04-30T23:59:59.9999999-03:00", date(2020, 4, 30)),
        ("2020-04-30", date(2020, 4, 30)),
    ],
)
def test_timestamps_keep_the_calendar_date_written(raw, day):
    """No time-zone conversion: the date part is the date."""
    assert parse_day(raw, "billingPeriodStart") == day


@pytest.mark.parametrize(
    "raw",
    ["2020-13-01T00:00:00", "yesterday", 20200101, "2020-01-01T00:00:00.12345678"],
)
def test_bad_timestamps_are_mapping_errors(raw):
    """Impossible or unknown timestamp shapes are refused."""
    with pytest.raises(MappingError, match="billingPeriodStart"):
        parse_day(raw, "billingPeriodStart")


@pytest.mark.parametrize("raw", ["200,0", True, {"v": 1}])
def test_machine_translated_money_is_refused(raw):
    """The seed's translated `200,0` must never be read as money."""
    with pytest.raises(MappingError, match="invoiceValue"):
        money(raw, "invoiceValue")


def test_item_without_id_is_refused():
    """An invoice needs `invoiceid` or `invoiceId`."""
    with pytest.raises(MappingError):
        to_invoice(
            {"tenantId": "t", "invoiceValue": 1.0}, connection="rs", currency=None
        )

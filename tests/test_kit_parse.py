"""The adapter kit's pure parts: parsers, the overdue rule, factory checks, the row path."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import aiohttp
import pytest

from gateway.config.settings import ConnectionSettings, Secret
from gateway.errors import ConfigError, NotFoundError, UpstreamProtocolError
from gateway.invoices.models import Customer, Invoice, InvoiceStatus
from gateway.state.tokens import LocalTokenProvider
from gateway.upstream.http import UpstreamClient
from gateway.upstream.kit import checks
from gateway.upstream.kit.parse import (
    MappingError,
    day,
    digits,
    folded,
    integer,
    money,
    objects,
    required_text,
    text,
)
from gateway.upstream.kit.rows import map_one, map_rows
from gateway.upstream.kit.rules import overdue_rule, status_word
from gateway.upstream.providers import ProviderContext
from tests.support import NOW

TODAY = date(2026, 11, 20)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (10, Decimal(10)),
        (54.95, Decimal("54.95")),
        ("150.99", Decimal("150.99")),
        (" -3.5 ", Decimal("-3.5")),
        (None, None),
        ("", None),
    ],
)
def test_money_reads_numbers_and_dotted_strings(raw, value):
    """JSON numbers and dotted strings are read exactly; null and blank are unknown."""
    assert money(raw, "valor") == value


@pytest.mark.parametrize(
    "raw",
    [
        "200,0",
        "R$ 10",
        "1e5",
        "1.",
        ".5",
        "١٢",
        True,
        [1],
        {"v": 1},
        float("nan"),
        1e999,
    ],
)
def test_bad_money_is_refused_naming_the_field(raw):
    """A locale form, an exponent, a boolean, a non-finite number: refused, field named."""
    with pytest.raises(MappingError) as caught:
        money(raw, "invoiceValue")
    assert caught.value.field == "invoiceValue"
    assert str(caught.value).startswith("invoiceValue: ")


def test_a_refusal_quotes_only_a_cut_excerpt_of_the_value():
    """A huge bad value is not copied whole into logs and errors."""
    with pytest.raises(MappingError) as caught:
        money("x" * 5000, "valor")
    assert len(str(caught.value)) < 100


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("2018-08-31", date(2018, 8, 31)),
        ("2018-08-31 00:00:00", date(2018, 8, 31)),
        ("2017-03-06T18:24:43-03:00", date(2017, 3, 6)),
        ("2021-06-15T08:30:00.1234567+02:00", date(2021, 6, 15)),
        ("2022-12-31T23:59Z", date(2022, 12, 31)),
        (None, None),
        ("", None),
    ],
)
def test_dates_keep_the_calendar_date_written(raw, value):
    """ISO dates, alone or opening a timestamp: the date as written, no zone shift."""
    assert day(raw, "due_date") == value


def test_day_first_dates_only_where_asked():
    """`dd/mm/yyyy` is read for an upstream that writes it, and refused elsewhere."""
    assert day("10/11/2026", "data_vencimento", day_first=True) == date(2026, 11, 10)
    assert day("2026-11-10", "data_vencimento", day_first=True) == date(2026, 11, 10)
    with pytest.raises(MappingError, match="data_vencimento"):
        day("10/11/2026", "data_vencimento")


@pytest.mark.parametrize(
    "raw",
    [
        "31/02/2026",
        "2026-02-31",
        "2020-01-01T00:00:00.12345678",
        "yesterday",
        "2026-11-20garbage",
        20261120,
        True,
    ],
)
def test_bad_dates_are_refused_naming_the_field(raw):
    """An impossible or unreadable date, or one that is not text: refused by name."""
    with pytest.raises(MappingError) as caught:
        day(raw, "data_vencimento", day_first=True)
    assert caught.value.field == "data_vencimento"


def test_text_ids_digits_and_integers():
    """Text is trimmed (blank is None), ids are required, digits are ASCII only."""
    assert text("  Maria ", "nome") == "Maria"
    assert text("   ", "nome") is None
    assert text(1099, "codigo_cliente") == "1099"
    with pytest.raises(MappingError, match="nome"):
        text(["Maria"], "nome")
    with pytest.raises(MappingError, match="id_fatura: missing"):
        required_text(None, "id_fatura")
    assert digits("123.456.789-09", "cpf_cnpj") == "12345678909"
    assert digits("١٢٣", "cpf_cnpj") is None  # look-alike digits are not digits
    assert integer(5, "entity_id") == 5
    with pytest.raises(MappingError, match="entity_id"):
        integer(True, "entity_id")  # noqa: FBT003 - the boolean is the bad input
    with pytest.raises(MappingError, match="entity_id"):
        integer("5", "entity_id")


def test_objects_and_folded_keys():
    """Arrays of objects (one bare object where allowed); keys folded across spellings."""
    assert objects(None, "items") == []
    assert objects({"a": 1}, "detalhamento", lone=True) == [{"a": 1}]
    with pytest.raises(MappingError, match="detalhamento"):
        objects({"a": 1}, "detalhamento")
    with pytest.raises(MappingError, match="an entry is not an object"):
        objects([{"a": 1}, 2], "invoiceItems")
    assert folded({"invoiceItems": 1, "invoice_items": 2}) == {"invoiceitems": 1}


@pytest.mark.parametrize(
    ("status", "due", "expected"),
    [
        (InvoiceStatus.OPEN, date(2026, 11, 19), InvoiceStatus.OVERDUE),
        (InvoiceStatus.OPEN, TODAY, InvoiceStatus.OPEN),
        (InvoiceStatus.OPEN, None, InvoiceStatus.OPEN),
        (InvoiceStatus.PAID, date(2020, 1, 1), InvoiceStatus.PAID),
        (InvoiceStatus.UNKNOWN, date(2020, 1, 1), InvoiceStatus.UNKNOWN),
        (InvoiceStatus.CANCELLED, date(2020, 1, 1), InvoiceStatus.CANCELLED),
    ],
)
def test_overdue_rule(status, due, expected):
    """Overdue = open and due strictly before today; nothing else changes."""
    assert overdue_rule(status, due, TODAY) is expected


def test_status_words_fall_back_to_unknown_then_the_overdue_rule():
    """A word the vocabulary lacks (or none) is `unknown`; an open one may be overdue."""
    vocabulary = {1: InvoiceStatus.OPEN, 2: InvoiceStatus.PAID}
    late = date(2026, 1, 1)
    assert status_word(1, vocabulary, late, TODAY) is InvoiceStatus.OVERDUE
    assert status_word(2, vocabulary, late, TODAY) is InvoiceStatus.PAID
    assert status_word(9, vocabulary, late, TODAY) is InvoiceStatus.UNKNOWN
    assert status_word(None, vocabulary, late, TODAY) is InvoiceStatus.UNKNOWN


def test_factory_checks_name_every_problem():
    """Missing secrets and a wrong URL option are all named at once, never a value."""
    settings = ConnectionSettings(
        id="c",
        provider="p",
        base_url="http://127.0.0.1:1",
        secrets={"client_id": Secret("id-value")},
        options={"auth_url": "ftp://x"},
    )
    problems = checks.missing_secrets(settings, "p", ("client_id", "client_secret"))
    url, wrong = checks.http_url(settings, "auth_url", "https://login.example")
    assert problems == ["secrets.client_secret: required by p"]
    assert (url, wrong) == (
        "https://login.example",
        ["options.auth_url: must be an http(s) URL"],
    )
    with pytest.raises(ConfigError) as caught:
        checks.raise_problems(problems + wrong)
    assert len(caught.value.problems) == 2
    checks.raise_problems([])  # nothing to say: no error


def test_remote_ids_are_matched_whole():
    """An id of another shape does not exist upstream (never sent into a URL)."""
    pattern = re.compile(r"([0-9]+)-([0-9]+)")
    assert checks.match_remote_id(pattern, "1-2", "thing").groups() == ("1", "2")
    with pytest.raises(NotFoundError, match="no thing"):
        checks.match_remote_id(pattern, "1-2\n", "thing")


def to_invoice(row) -> Invoice:
    """A minimal mapping over the kit's parsers."""
    return Invoice(
        provider="p",
        connection="c",
        remote_id=required_text(row.get("id"), "id"),
        number=None,
        customer=Customer(text(row.get("customer"), "customer")),
        status=InvoiceStatus.OPEN,
        currency=None,
        amount=money(row.get("amount"), "amount"),
    )


@pytest.fixture
async def ctx():
    """A provider context (its funnel is never called by the row path)."""
    async with aiohttp.ClientSession() as session:
        settings = ConnectionSettings(
            id="c", provider="p", base_url="http://127.0.0.1:1"
        )
        http = UpstreamClient(session, "c", settings.base_url, 1.0)
        yield ProviderContext(settings, http, LocalTokenProvider(), now=lambda: NOW)


async def test_a_list_drops_and_counts_unreadable_and_foreign_rows(ctx):
    """Bad rows cost only themselves; the source says how many and is incomplete."""
    rows = [
        {"id": "1", "customer": "a", "amount": "1.00"},
        {"id": "2", "customer": "a", "amount": "1,00"},
        "not an object",
        {"id": "3", "customer": "b", "amount": "3.00"},
    ]
    result = map_rows(rows, to_invoice, ctx, belongs=lambda row: row["customer"] == "a")
    assert [i.remote_id for i in result.invoices] == ["1"]
    assert not result.complete
    assert result.note == (
        "1 row(s) of other customers left out; 2 row(s) unreadable and left out"
    )


async def test_one_unreadable_record_is_a_502_naming_the_field_not_the_value(ctx):
    """An item that cannot be mapped is the connection's protocol error, field named."""
    with pytest.raises(UpstreamProtocolError) as caught:
        map_one({"id": "9", "amount": "R$ 12,50"}, to_invoice, ctx, "/things/{id}")
    message = str(caught.value)
    assert caught.value.connection == "c"
    assert "(amount)" in message
    assert "12,50" not in message
    assert map_one({"id": "9"}, to_invoice, ctx, "/things/{id}").remote_id == "9"

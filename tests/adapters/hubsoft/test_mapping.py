"""Pure mapping of recorded-shape Hubsoft payloads (no I/O)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.hubsoft.mapping import to_invoice
from gateway.invoices.models import Customer, Invoice, InvoiceStatus, PaymentMethod
from gateway.upstream.kit.parse import MappingError, money

FIXTURES = Path(__file__).parent / "fixtures"
TODAY = date(2026, 11, 20)


def rows(name: str) -> list[dict]:
    """The `faturas` of a fixture file."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))["faturas"]


def mapped(
    name: str, searched: Customer | None = None, scope=("codigo_cliente", "1099")
):
    """Every row of a fixture file, mapped."""
    searched = searched or Customer(remote_id="1099")
    return [
        to_invoice(r, connection="acme", today=TODAY, searched=searched, scope=scope)
        for r in rows(name)
    ]


def test_seed_example_maps_every_invoice_as_documented():
    """The vendor's own example (object `detalhamento`, `suscess`, dd/mm/yyyy) maps whole."""
    invs = {inv.remote_id: inv for inv in mapped("cliente_financeiro_seed.json")}
    paid = invs["1099-36398"]
    assert paid.status is InvoiceStatus.PAID
    assert paid.paid_date == date(2018, 7, 9)
    assert paid.due_date == date(2017, 10, 10)
    assert (paid.amount, paid.amount_paid, paid.amount_due) == (
        Decimal("132.5"),
        Decimal("132.5"),
        Decimal(0),
    )
    assert paid.payment.method is PaymentMethod.DIRECT_DEBIT
    assert paid.payment.boleto is None
    assert [line.description for line in paid.lines] == [
        "(+) Taxa de Instalação (1/12) | R$ 12.50"
    ]
    boleto = invs["1099-44612"]
    assert boleto.status is InvoiceStatus.OVERDUE
    assert boleto.amount_due == Decimal(10)
    assert boleto.amount_paid is None
    assert boleto.number == "274764"
    assert boleto.payment.boleto.our_number == "0274764-0"
    assert boleto.payment.boleto.digitable_line.startswith("75691.31662")
    assert boleto.customer == Customer(remote_id="1099")
    assert boleto.id == "hubsoft:acme:1099-44612"


def test_current_shape_array_lines_customer_block_and_pix():
    """Array `detalhamento`, `cliente` block, PIX under `pix_copia_cola`, string line value."""
    inv = mapped("cliente_financeiro_current.json")[0]
    assert inv.status is InvoiceStatus.OPEN
    assert inv.customer == Customer("1099", "12345678909", "Maria Silva")
    assert inv.issue_date == date(2026, 11, 21)  # data_documento beats data_cadastro
    assert [line.amount for line in inv.lines] == [Decimal("42.45"), Decimal("12.50")]
    assert inv.payment.pix_code.startswith("000201")
    assert inv.payment.boleto.barcode == "75697733800000010001316601006726102721000001"
    assert inv.payment.boleto.url.endswith("/pdf/fatura/3f9a2c")
    assert inv.remote["id_fatura"] == 52001
    assert inv.to_dict()["amount"] == "54.95"


def test_observed_status_fields_win_and_unknown_words_stay_unknown():
    """Undocumented `status`/`valor_pago` are used; an unknown word maps to unknown."""
    invs = mapped("cliente_financeiro_current.json")
    paid, open_word, strange = invs[1], invs[2], invs[3]
    assert paid.status is InvoiceStatus.PAID
    assert paid.remote_status == "quitado"
    assert paid.amount_paid == Decimal("240.41")  # interest: paid more than billed
    assert paid.amount_due == Decimal(0)
    assert paid.customer.document == "12345678909"  # formatted CPF normalised to digits
    assert paid.due_date == date(2026, 10, 10)  # ISO date on this route too
    assert open_word.status is InvoiceStatus.OVERDUE  # "Em Aberto" but due before today
    assert open_word.payment.method is PaymentMethod.OTHER  # "carne" is not in our map
    assert strange.status is InvoiceStatus.UNKNOWN
    assert strange.remote_status == "negociado"
    assert strange.amount_due is None


def test_row_without_customer_block_keeps_the_searched_customer():
    """Old rows without `cliente` keep who was searched; the id says how to find it again."""
    searched = Customer(document="12345678909")
    inv = mapped("cliente_financeiro_seed.json", searched, ("cpf_cnpj", "12345678909"))[
        0
    ]
    assert inv.customer == searched
    assert inv.remote_id == "doc12345678909-36398"


def test_tenant_route_shape():
    """`/financeiro/fatura`: ISO dates, string `valor`, `pix_copia_e_cola`, `cobrancas`."""
    inv = mapped("financeiro_fatura_detalhado.json")[0]
    assert inv.remote_id == "3021-1190"
    assert inv.customer == Customer("3021", "11222333000181", "Padaria Pão Quente Ltda")
    assert inv.status is InvoiceStatus.PAID
    assert inv.amount == Decimal("199.90")
    assert inv.amount_paid == Decimal("240.41")
    assert inv.issue_date == date(2017, 9, 14)
    assert inv.payment.pix_code.endswith("BEEF")
    assert [line.description for line in inv.lines] == ["Plano 1GB", "IP fixo"]


def test_unpaid_due_today_is_open_not_overdue():
    """Overdue means due strictly before today."""
    row = {
        "id_fatura": 1,
        "valor": 5,
        "data_vencimento": "20/11/2026",
        "data_pagamento": None,
    }
    inv = to_invoice(
        row, connection="c", today=TODAY, searched=Customer("9"), scope=("", "")
    )
    assert inv.status is InvoiceStatus.OPEN


@pytest.mark.parametrize("raw", ["200,0", "R$ 10", True, [1]])
def test_money_refuses_locale_and_wrong_types(raw):
    """Money is never guessed: locale strings and non-numbers are mapping errors."""
    with pytest.raises(MappingError, match="valor"):
        money(raw, "valor")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("data_vencimento", "31/02/2026"),
        ("data_vencimento", 20261120),
        ("detalhamento", "texto"),
        ("valor", "12,50"),
    ],
)
def test_malformed_fields_raise_mapping_error(field, value):
    """A field of an impossible shape is a MappingError, never a crash of another kind."""
    row = {"id_fatura": 1, "valor": 5, "data_vencimento": "10/11/2026", field: value}
    with pytest.raises(MappingError, match=field):
        to_invoice(
            row, connection="c", today=TODAY, searched=Customer("9"), scope=("", "")
        )


def test_round_trip_through_cache_form():
    """`from_dict(to_dict(include_remote=True))` gives back the same invoice."""
    for inv in mapped("cliente_financeiro_current.json"):
        again = Invoice.from_dict(
            json.loads(json.dumps(inv.to_dict(include_remote=True)))
        )
        assert again == inv
        assert again.remote == inv.remote

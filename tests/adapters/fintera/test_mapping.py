"""Pure mapping of Fintera payloads, both formats, and the draft translation."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.fintera import mapping, xmlcodec
from gateway.invoices.accounts import Classification, SaleAccountDraft
from gateway.invoices.models import BillingPeriod, InvoiceStatus
from gateway.upstream.kit.parse import MappingError, money

FIXTURES = Path(__file__).parent / "fixtures"
TODAY = date(2026, 11, 20)
PERSON = {
    "id": 1001,
    "name": "Maria Silva",
    "federation_subscription_number": "123.456.789-09",
}


def receivables():
    """The recorded receivable accounts, unwrapped."""
    rows = json.loads((FIXTURES / "receivable_accounts.json").read_text())
    return [mapping.unwrap(r, "receivable_account") for r in rows]


def invoice(raw):
    """Map one receivable for connection `fin`."""
    return mapping.to_invoice(raw, connection="fin", today=TODAY, person=PERSON)


def test_unreceived_is_open_or_overdue_by_due_date():
    """Status 1 is open before the due date, overdue after it; money from strings."""
    future, past = invoice(receivables()[0]), invoice(receivables()[1])
    assert (future.status, past.status) == (InvoiceStatus.OPEN, InvoiceStatus.OVERDUE)
    assert future.remote_status == "unreceived"
    assert (future.amount, future.amount_due, future.amount_paid) == (
        Decimal("150.99"),
        Decimal("150.99"),
        None,
    )
    assert future.id == "fintera:fin:3798-1235046"
    assert future.number == "NF-77"
    assert future.issue_date == date(2026, 11, 20)
    assert future.billing_period == BillingPeriod(date(2026, 12, 1), date(2026, 12, 31))
    assert future.customer.document == "12345678909"  # formatted upstream, digits here
    assert future.currency == "BRL"
    assert future.to_dict()["amount"] == "150.99"


def test_received_and_reconciled_are_paid_whatever_the_dates_say():
    """Status 2/3 is paid; total_amount (with interest) is what was paid."""
    reconciled, received = invoice(receivables()[2]), invoice(receivables()[3])
    assert reconciled.status is InvoiceStatus.PAID
    assert reconciled.remote_status == "reconciled"
    assert reconciled.amount_paid == Decimal("103.50")
    assert reconciled.paid_date == date(2026, 9, 12)
    assert received.status is InvoiceStatus.PAID  # no occurred_at, still paid
    assert received.amount_paid == Decimal("100.0")
    assert received.amount_due == Decimal(0)


def test_unknown_status_code_is_unknown():
    """A status code the docs do not list maps to unknown, never to a guess."""
    inv = invoice(receivables()[4])
    assert inv.status is InvoiceStatus.UNKNOWN
    assert inv.amount_due is None


def test_seed_sale_account_json_and_xml_map_alike():
    """The doc's JSON and XML list examples map; unknown acquirers become `other`."""
    from_json = [
        mapping.to_sale_account(r, connection="fin")
        for r in json.loads((FIXTURES / "sale_accounts_seed.json").read_text())
    ]
    from_xml = [
        mapping.to_sale_account(r, connection="fin")
        for r in xmlcodec.loads((FIXTURES / "sale_accounts_seed.xml").read_bytes())
    ]
    cielo, elo = from_json[0], from_xml[0]
    assert cielo.acquirer == "cielo"
    assert cielo.payment_methods == (
        "credit_card",
        "debit_card",
        "credit_card_installments",
    )
    assert cielo.custom_classifications == (
        Classification(1, "Cobrato", Decimal("36.0"), Decimal("100.0")),
    )
    assert cielo.classification_center_classifications[0].amount == Decimal("36.0")
    assert (elo.acquirer, elo.remote_acquirer, elo.remote_id) == ("other", "elo", "37")
    assert elo.consolidate is True
    assert elo.category_id is None
    assert elo.custom_classifications[0].name == "Cobrato"


def test_draft_translates_to_fintera_body():
    """List -> comma string, acquirer -> provider, the two classification kinds' quirk."""
    draft = SaleAccountDraft(
        name="Stone",
        entity_id=1,
        acquirer="stone",
        payment_methods=("credit_card_installments", "boleto", "pix"),
        custom_classifications=(Classification(1, "Zona Sul", Decimal("139.9")),),
        classification_center_classifications=(
            Classification(2, "Zona Sul", Decimal("139.9")),
        ),
    )
    body = mapping.to_upstream(draft)["sale_account"]
    assert body["provider"] == "stone"
    assert body["payment_methods"] == "parcelled,billet,pix"
    assert body["custom_classifications"] == [
        {"custom_classifier_id": 1, "name": "Zona Sul", "amount": 139.9}
    ]
    assert body["classification_center_classifications"] == [
        {"classification_center_id": 2, "name": "Zona Sul", "amount": "139.9"}
    ]
    assert "description" not in body  # only given fields go upstream


@pytest.mark.parametrize(
    ("digits", "shown"),
    [("12345678909", "123.456.789-09"), ("11222333000181", "11.222.333/0001-81")],
)
def test_documents_are_searched_formatted(digits, shown):
    """Fintera stores CPF/CNPJ with punctuation."""
    assert mapping.format_document(digits) == shown


@pytest.mark.parametrize(
    "hostile",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><x>&b;</x>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b"<unclosed>",
    ],
)
def test_hostile_or_broken_xml_is_refused(hostile):
    """Entity expansion, external entities and broken XML are errors, not data."""
    with pytest.raises(xmlcodec.XmlError):
        xmlcodec.loads(hostile)


def test_xml_round_trip_keeps_types():
    """What the simulator writes reads back as the JSON shape."""
    payload = [
        {
            "sale_account": {
                "id": 5,
                "name": "A",
                "consolidate": False,
                "category_id": None,
                "custom_classifications": [{"id": 1, "name": "x"}],
            }
        }
    ]
    assert xmlcodec.loads(xmlcodec.dumps(payload)) == payload


@pytest.mark.parametrize("raw", ["1,5", True, "abc"])
def test_bad_money_is_refused(raw):
    """Money strings with commas or non-numbers are mapping errors."""
    with pytest.raises(MappingError, match="amount"):
        money(raw, "amount")

"""Hubsoft invoice rows -> canonical `Invoice`. Pure: no I/O, no clock, no logging.

Both invoice routes are accepted: `/cliente/financeiro` (dates `dd/mm/yyyy`, `valor` a
number, `pix_copia_cola`, `detalhamento` object or array) and `/financeiro/fatura` (ISO
dates, `valor` a string, `pix_copia_e_cola`, `cobrancas`). Status follows an upstream
`status`/`quitado` field when the tenant sends one, else the payment date, else the due
date against `today` in the connection's zone. Unknown words become `unknown`/`other`.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.invoices.models import (
    Boleto,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    Payment,
    PaymentMethod,
    settle_amounts,
)

PROVIDER = "hubsoft"

STATUS_MAP: dict[str, InvoiceStatus] = {
    "quitado": InvoiceStatus.PAID,
    "quitada": InvoiceStatus.PAID,
    "pago": InvoiceStatus.PAID,
    "paga": InvoiceStatus.PAID,
    "liquidado": InvoiceStatus.PAID,
    "vencido": InvoiceStatus.OVERDUE,
    "vencida": InvoiceStatus.OVERDUE,
    "em_aberto": InvoiceStatus.OPEN,
    "aberto": InvoiceStatus.OPEN,
    "pendente": InvoiceStatus.OPEN,
    "cancelado": InvoiceStatus.CANCELLED,
    "cancelada": InvoiceStatus.CANCELLED,
}

PAYMENT_METHOD_MAP: dict[str, PaymentMethod] = {
    "boleto_bancario": PaymentMethod.BOLETO,
    "boleto": PaymentMethod.BOLETO,
    "debito_conta_corrente": PaymentMethod.DIRECT_DEBIT,
    "debito_automatico": PaymentMethod.DIRECT_DEBIT,
    "pix": PaymentMethod.PIX,
    "cartao_credito": PaymentMethod.CREDIT_CARD,
    "cartao_debito": PaymentMethod.DEBIT_CARD,
    "transferencia": PaymentMethod.BANK_TRANSFER,
    "transferencia_bancaria": PaymentMethod.BANK_TRANSFER,
    "dinheiro": PaymentMethod.CASH,
    "cheque": PaymentMethod.CHEQUE,
}

_MONEY_RE = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_BR_DATE_RE = re.compile(r"([0-9]{2})/([0-9]{2})/([0-9]{4})")


class MappingError(ValueError):
    """A row holds a value of a shape the upstream's contract does not allow."""


def parse_date(raw: Any) -> date | None:
    """`dd/mm/yyyy`, `yyyy-mm-dd` or `yyyy-mm-dd HH:MM:SS` (both routes' forms)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise MappingError(f"date is not text: {raw!r}")
    text = raw.strip()
    try:
        if match := _BR_DATE_RE.fullmatch(text):  # strptime is 10x slower than this
            day, month, year = match.groups()
            return date(int(year), int(month), int(day))
        return date.fromisoformat(text[:10])
    except ValueError as err:
        raise MappingError(f"unreadable date {raw!r}") from err


def parse_money(raw: Any) -> Decimal | None:
    """A JSON number or a dotted decimal string; locale forms like `200,0` are refused."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise MappingError(f"money is a boolean: {raw!r}")
    if isinstance(raw, int | float):
        return Decimal(str(raw))
    if isinstance(raw, str) and _MONEY_RE.fullmatch(raw.strip()):
        try:
            return Decimal(raw.strip())
        except (
            InvalidOperation
        ) as err:  # pragma: no cover - the regex admits only valid ones
            raise MappingError(f"unreadable amount {raw!r}") from err
    raise MappingError(f"unreadable amount {raw!r}")


def _text(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.strip() or None
    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)
    raise MappingError(f"expected text, got {type(raw).__name__}")


def to_lines(raw: dict[str, Any]) -> tuple[InvoiceLine, ...]:
    """`detalhamento` (object or array) or `cobrancas` as invoice lines."""
    items = raw.get("detalhamento")
    if items is None:
        items = raw.get("cobrancas") or []
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list):
        raise MappingError("detalhamento is neither an object nor an array")
    lines = []
    for item in items:
        if not isinstance(item, dict):
            raise MappingError("a detalhamento entry is not an object")
        lines.append(
            InvoiceLine(
                _text(item.get("descricao")) or "", parse_money(item.get("valor"))
            )
        )
    return tuple(lines)


def to_customer(raw: dict[str, Any], searched: Customer) -> Customer:
    """The row's `cliente` block, falling back to the customer that was searched for."""
    block = raw.get("cliente")
    if not isinstance(block, dict):
        return searched
    document = _text(block.get("cpf_cnpj"))
    return Customer(
        remote_id=_text(block.get("codigo_cliente")) or searched.remote_id,
        document=re.sub(r"\D", "", document) if document else searched.document,
        name=_text(block.get("nome_razaosocial")) or searched.name,
    )


def owned_by(
    raw: dict[str, Any],
    *,
    document: str | None = None,
    code: str | None = None,
    service: str | None = None,
) -> bool:
    """Whether the row's own `cliente` block names the customer asked for.

    Each given identifier must match where the row states it. A row without a `cliente`
    block (the older shape) states no owner and stands for the customer searched.
    """
    block = raw.get("cliente")
    if not isinstance(block, dict):
        return True
    servico = block.get("servico")
    stated = [
        (document, re.sub(r"\D", "", _text(block.get("cpf_cnpj")) or "") or None),
        (code, _text(block.get("codigo_cliente"))),
        (
            service,
            _text(servico.get("id_cliente_servico"))
            if isinstance(servico, dict)
            else None,
        ),
    ]
    return all(
        asked is None or found is None or asked == found for asked, found in stated
    )


def to_status(
    raw: dict[str, Any], due: date | None, paid_on: date | None, today: date
) -> tuple[InvoiceStatus, str | None]:
    """Status and the upstream's own word for it (research notes section 4.2)."""
    remote = _text(raw.get("status"))
    if remote is not None:
        status = STATUS_MAP.get(remote.lower().replace(" ", "_"), InvoiceStatus.UNKNOWN)
        if status is InvoiceStatus.OPEN and due is not None and due < today:
            status = InvoiceStatus.OVERDUE
        return status, remote
    if raw.get("quitado") is True or paid_on is not None:
        return InvoiceStatus.PAID, None
    if due is not None and due < today:
        return InvoiceStatus.OVERDUE, None
    return InvoiceStatus.OPEN, None


def to_payment(raw: dict[str, Any]) -> Payment:
    """Method, boleto instruments and PIX code (both spellings)."""
    kind = _text(raw.get("tipo_cobranca"))
    method = PAYMENT_METHOD_MAP.get(kind, PaymentMethod.OTHER) if kind else None
    line, barcode = _text(raw.get("linha_digitavel")), _text(raw.get("codigo_barras"))
    boleto = None
    if method is PaymentMethod.BOLETO or line or barcode:
        boleto = Boleto(
            digitable_line=line,
            barcode=barcode,
            our_number=_text(raw.get("nosso_numero_dv"))
            or _text(raw.get("nosso_numero")),
            url=_text(raw.get("link")),
        )
    pix = _text(raw.get("pix_copia_cola")) or _text(raw.get("pix_copia_e_cola"))
    return Payment(method=method, boleto=boleto, pix_code=pix)


def remote_id_for(invoice_id: str, customer: Customer, scope: tuple[str, str]) -> str:
    """`<codigo_cliente>-<id_fatura>`: Hubsoft reads invoices only through a customer.

    Without a customer code (an old payload without `cliente`, searched by document or
    service), the search scope stands in: `doc<cpf_cnpj>-<id>` or `svc<service>-<id>`.
    """
    if customer.remote_id:
        return f"{customer.remote_id}-{invoice_id}"
    busca, termo = scope
    prefix = {"cpf_cnpj": "doc", "id_cliente_servico": "svc"}.get(busca, "")
    return f"{prefix}{termo}-{invoice_id}"


def to_invoice(
    raw: dict[str, Any],
    *,
    connection: str,
    today: date,
    searched: Customer,
    scope: tuple[str, str],
    currency: str | None = "BRL",
) -> Invoice:
    """Map one invoice row of either route."""
    invoice_id = _text(raw.get("id_fatura"))
    if invoice_id is None:
        raise MappingError("row without id_fatura")
    customer = to_customer(raw, searched)
    due, paid_on = (
        parse_date(raw.get("data_vencimento")),
        parse_date(raw.get("data_pagamento")),
    )
    status, remote_status = to_status(raw, due, paid_on, today)
    amount = parse_money(raw.get("valor"))
    paid, owed = settle_amounts(status, amount, parse_money(raw.get("valor_pago")))
    return Invoice(
        provider=PROVIDER,
        connection=connection,
        remote_id=remote_id_for(invoice_id, customer, scope),
        number=_text(raw.get("nosso_numero")),
        customer=customer,
        status=status,
        remote_status=remote_status,
        currency=currency,
        amount=amount,
        amount_paid=paid,
        amount_due=owed,
        issue_date=parse_date(raw.get("data_documento"))
        or parse_date(raw.get("data_cadastro")),
        due_date=due,
        paid_date=paid_on,
        payment=to_payment(raw),
        lines=to_lines(raw),
        remote=raw,
    )

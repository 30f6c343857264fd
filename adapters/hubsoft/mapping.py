"""Hubsoft invoice rows -> canonical `Invoice`. Pure: no I/O, no clock, no logging.

Both invoice routes are accepted: `/cliente/financeiro` (dates `dd/mm/yyyy`, `valor` a
number, `pix_copia_cola`, `detalhamento` object or array) and `/financeiro/fatura` (ISO
dates, `valor` a string, `pix_copia_e_cola`, `cobrancas`). Status follows an upstream
`status`/`quitado` field when the tenant sends one, else the payment date, else the due
date against `today` in the connection's zone. Unknown words become `unknown`/`other`.
"""

from __future__ import annotations

from datetime import date
from typing import cast

from adapters.hubsoft.payloads import CustomerBlock, InvoiceRow, LineItem
from gateway.invoices.models import (
    Boleto,
    Customer,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    JSONDict,
    Payment,
    PaymentMethod,
    settle_amounts,
)
from gateway.upstream.kit.parse import (
    day,
    digits,
    money,
    objects,
    required_text,
    text,
)
from gateway.upstream.kit.rules import overdue_rule, status_word

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


def parse_date(raw: object, field: str) -> date | None:
    """`dd/mm/yyyy` (`/cliente/financeiro`) or ISO, alone or with a time (`/fatura`)."""
    return day(raw, field, day_first=True)


def to_lines(raw: InvoiceRow) -> tuple[InvoiceLine, ...]:
    """`detalhamento` (object or array) or `cobrancas` as invoice lines."""
    items = raw.get("detalhamento")
    if items is None:
        items = raw.get("cobrancas") or None
    return tuple(
        InvoiceLine(
            text(item.get("descricao"), "detalhamento.descricao") or "",
            money(item.get("valor"), "detalhamento.valor"),
        )
        for item in map(_line, objects(items, "detalhamento", lone=True))
    )


def _line(entry: dict[str, object]) -> LineItem:
    return cast("LineItem", entry)


def _block(raw: InvoiceRow) -> CustomerBlock | None:
    block = raw.get("cliente")
    return cast("CustomerBlock", block) if isinstance(block, dict) else None


def to_customer(raw: InvoiceRow, searched: Customer) -> Customer:
    """The row's `cliente` block, falling back to the customer that was searched for."""
    block = _block(raw)
    if block is None:
        return searched
    return Customer(
        remote_id=text(block.get("codigo_cliente"), "cliente.codigo_cliente")
        or searched.remote_id,
        document=digits(block.get("cpf_cnpj"), "cliente.cpf_cnpj") or searched.document,
        name=text(block.get("nome_razaosocial"), "cliente.nome_razaosocial")
        or searched.name,
    )


def owned_by(
    raw: InvoiceRow,
    *,
    document: str | None = None,
    code: str | None = None,
    service: str | None = None,
) -> bool:
    """Whether the row's own `cliente` block names the customer asked for.

    Each given identifier must match where the row states it. A row without a `cliente`
    block (the older shape) states no owner and stands for the customer searched.
    """
    block = _block(raw)
    if block is None:
        return True
    servico = block.get("servico")
    service_id = (
        servico.get("id_cliente_servico") if isinstance(servico, dict) else None
    )
    stated = [
        (document, digits(block.get("cpf_cnpj"), "cliente.cpf_cnpj")),
        (code, text(block.get("codigo_cliente"), "cliente.codigo_cliente")),
        (service, text(service_id, "cliente.servico.id_cliente_servico")),
    ]
    return all(
        asked is None or found is None or asked == found for asked, found in stated
    )


def to_status(
    raw: InvoiceRow, due: date | None, paid_on: date | None, today: date
) -> tuple[InvoiceStatus, str | None]:
    """Status and the upstream's own word for it (research notes section 4.2)."""
    remote = text(raw.get("status"), "status")
    if remote is not None:
        word = remote.lower().replace(" ", "_")
        return status_word(word, STATUS_MAP, due, today), remote
    if raw.get("quitado") is True or paid_on is not None:
        return InvoiceStatus.PAID, None
    return overdue_rule(InvoiceStatus.OPEN, due, today), None


def to_payment(raw: InvoiceRow) -> Payment:
    """Method, boleto instruments and PIX code (both spellings)."""
    kind = text(raw.get("tipo_cobranca"), "tipo_cobranca")
    method = PAYMENT_METHOD_MAP.get(kind, PaymentMethod.OTHER) if kind else None
    line = text(raw.get("linha_digitavel"), "linha_digitavel")
    barcode = text(raw.get("codigo_barras"), "codigo_barras")
    boleto = None
    if method is PaymentMethod.BOLETO or line or barcode:
        boleto = Boleto(
            digitable_line=line,
            barcode=barcode,
            our_number=text(raw.get("nosso_numero_dv"), "nosso_numero_dv")
            or text(raw.get("nosso_numero"), "nosso_numero"),
            url=text(raw.get("link"), "link"),
        )
    pix = text(raw.get("pix_copia_cola"), "pix_copia_cola") or text(
        raw.get("pix_copia_e_cola"), "pix_copia_e_cola"
    )
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
    raw: InvoiceRow,
    *,
    connection: str,
    today: date,
    searched: Customer,
    scope: tuple[str, str],
    currency: str | None = "BRL",
) -> Invoice:
    """Map one invoice row of either route."""
    invoice_id = required_text(raw.get("id_fatura"), "id_fatura")
    customer = to_customer(raw, searched)
    due = parse_date(raw.get("data_vencimento"), "data_vencimento")
    paid_on = parse_date(raw.get("data_pagamento"), "data_pagamento")
    status, remote_status = to_status(raw, due, paid_on, today)
    amount = money(raw.get("valor"), "valor")
    paid, owed = settle_amounts(
        status, amount, money(raw.get("valor_pago"), "valor_pago")
    )
    return Invoice(
        provider=PROVIDER,
        connection=connection,
        remote_id=remote_id_for(invoice_id, customer, scope),
        number=text(raw.get("nosso_numero"), "nosso_numero"),
        customer=customer,
        status=status,
        remote_status=remote_status,
        currency=currency,
        amount=amount,
        amount_paid=paid,
        amount_due=owed,
        issue_date=parse_date(raw.get("data_documento"), "data_documento")
        or parse_date(raw.get("data_cadastro"), "data_cadastro"),
        due_date=due,
        paid_date=paid_on,
        payment=to_payment(raw),
        lines=to_lines(raw),
        remote=cast("JSONDict", raw),
    )

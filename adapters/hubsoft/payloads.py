"""Hubsoft records as decoded, typed at the boundary: the fields the mapping reads.

Scalar fields carry the vendor's documented types (research notes section 1.3, 1.4), but
nothing is trusted: each is read through the kit's parsers, which take any value and
refuse a wrong shape by name. Nested blocks are `object` because the mapping checks their
shape itself. Both invoice routes share one row type (`/cliente/financeiro` with dd/mm/yyyy
dates and numeric `valor`, `/financeiro/fatura` with ISO dates and string `valor`).
"""

from __future__ import annotations

from typing import TypedDict


class CustomerBlock(TypedDict, total=False):
    """`cliente` of a row (absent in the older shape)."""

    codigo_cliente: int | str
    cpf_cnpj: str  # digits only, or formatted
    nome_razaosocial: str
    servico: object  # {"id_cliente_servico": ...}


class LineItem(TypedDict, total=False):
    """One `detalhamento` or `cobrancas` entry."""

    descricao: str
    valor: float | str | None


class InvoiceRow(TypedDict, total=False):
    """One invoice of either route."""

    id_fatura: int | str
    cliente: object  # a CustomerBlock when an object
    status: str | None  # observed, undocumented: "vencido", "em_aberto", "Pago" ...
    quitado: bool | None  # observed, undocumented
    valor: float | str
    valor_pago: float | str | None
    data_vencimento: str
    data_pagamento: str | None
    data_documento: str | None
    data_cadastro: str | None
    nosso_numero: str | int | None
    nosso_numero_dv: str | None
    tipo_cobranca: str | None
    linha_digitavel: str | None
    codigo_barras: str | None
    link: str | None
    pix_copia_cola: str | None  # /cliente/financeiro
    pix_copia_e_cola: str | None  # /financeiro/fatura
    detalhamento: object  # a LineItem, or a list of them (both shapes are served)
    cobrancas: object  # /financeiro/fatura's line items

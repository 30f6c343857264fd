"""Hubsoft records as decoded, typed at the boundary: the fields the mapping reads.

Values are `object`: the JSON is not trusted, and every field is read through the kit's
parsers (`gateway.upstream.kit.parse`), which refuse a wrong shape by name. The keys are
the contract: a misspelt one is a type error, not a silently missing value. Both invoice
routes share one row type (`/cliente/financeiro` and `/financeiro/fatura`).
"""

from __future__ import annotations

from typing import TypedDict


class CustomerBlock(TypedDict, total=False):
    """`cliente` of a row (absent in the older shape)."""

    codigo_cliente: object
    cpf_cnpj: object
    nome_razaosocial: object
    servico: object  # {"id_cliente_servico": ...}


class LineItem(TypedDict, total=False):
    """One `detalhamento` or `cobrancas` entry."""

    descricao: object
    valor: object


class InvoiceRow(TypedDict, total=False):
    """One invoice of either route."""

    id_fatura: object
    cliente: object  # CustomerBlock when an object
    status: object
    quitado: object
    valor: object
    valor_pago: object
    data_vencimento: object
    data_pagamento: object
    data_documento: object
    data_cadastro: object
    nosso_numero: object
    nosso_numero_dv: object
    tipo_cobranca: object
    linha_digitavel: object
    codigo_barras: object
    link: object
    pix_copia_cola: object  # /cliente/financeiro
    pix_copia_e_cola: object  # /financeiro/fatura
    detalhamento: object  # an object or an array of LineItem
    cobrancas: object  # /financeiro/fatura's line items

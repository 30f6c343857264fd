"""Fintera Financeiro (financial ERP) adapter: receivable accounts and sale accounts."""

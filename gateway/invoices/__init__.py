"""Invoices and sale accounts: canonical models, the service (fan-out, merge, page), writes."""

"""Xarios "billingdata" (reseller billing) adapter: client, mapping, adapter, simulator."""

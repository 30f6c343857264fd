"""Shared state: cache, idempotency, tokens, rate buckets, journal; memory and Redis apart."""

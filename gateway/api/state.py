"""Typed keys for what the app and each request carry (aiohttp `AppKey`/`RequestKey`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.api.auth import Authenticator
from gateway.api.limits import CallerLimiter
from gateway.config.settings import Settings
from gateway.invoices.principal import Principal
from gateway.invoices.service import InvoiceService
from gateway.invoices.writes import SaleAccountService
from gateway.state.tokens import TokenProvider
from gateway.telemetry.audit import AuditTrail
from gateway.telemetry.metrics import Metrics

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", InvoiceService)
SALE_ACCOUNTS = web.AppKey("sale_accounts", SaleAccountService)
TOKENS = web.AppKey("tokens", TokenProvider)
CACHE_BACKEND = web.AppKey("cache_backend", object)  # "memory" or the Redis backend

AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
CALLER_LIMITER = web.AppKey("caller_limiter", CallerLimiter)
AUDIT = web.AppKey("audit", AuditTrail)

METRICS = web.AppKey("metrics", Metrics)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
SOURCES_LOG = web.RequestKey("sources_log", list[Any])
RATE_HEADERS = web.RequestKey("rate_headers", dict[str, str])
STREAMING = web.RequestKey("streaming", web.StreamResponse)

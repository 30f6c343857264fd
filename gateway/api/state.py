"""Typed keys for what the app and each request carry (aiohttp `AppKey`/`RequestKey`)."""

from __future__ import annotations

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


class Call:
    """What the request pipeline knows of the request it is answering.

    One request slot for all of it (each `request[key] = ...` costs an ABC check).
    """

    __slots__ = ("principal", "rate_headers", "request_id", "sources")

    def __init__(self, request_id: str) -> None:
        """A request just arrived, known by its id."""
        self.request_id = request_id
        self.principal: Principal | None = None  # once authenticated (`/v1/` routes)
        self.rate_headers: dict[str, str] | None = None  # the caller's budget, if any
        self.sources: list[str] = []  # `connection:status` per source, for the log


CALL = web.RequestKey("call", Call)
STREAMING = web.RequestKey("streaming", web.StreamResponse)

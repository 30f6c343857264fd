"""Typed keys for what the app and each request carry (aiohttp `AppKey`/`RequestKey`)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.metrics import Metrics
from gateway.principal import Principal
from gateway.service import InvoiceService
from gateway.settings import ApiKey, Settings
from gateway.tokens import TokenProvider
from gateway.writes import SaleAccountService

SETTINGS = web.AppKey("settings", Settings)
SERVICE = web.AppKey("service", InvoiceService)
SALE_ACCOUNTS = web.AppKey("sale_accounts", SaleAccountService)
TOKENS = web.AppKey("tokens", TokenProvider)
API_KEYS = web.AppKey("api_keys", dict[str, ApiKey])
CACHE_BACKEND = web.AppKey("cache_backend", object)  # "memory" or the Redis backend

METRICS = web.AppKey("metrics", Metrics)
PRINCIPAL = web.RequestKey("principal", Principal)
REQUEST_ID = web.RequestKey("request_id", str)
SOURCES_LOG = web.RequestKey("sources_log", list[Any])
STREAMING = web.RequestKey("streaming", web.StreamResponse)

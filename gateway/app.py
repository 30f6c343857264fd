"""The app factory: one `ClientSession`, the connections' adapters, the service, routes.

Resources live in cleanup contexts so they open at start-up and close at shutdown, in
order. The adapters are found through the registry; a connection whose adapter refuses
its configuration fails start-up together with every other such problem.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web
from prometheus_client.core import GaugeMetricFamily, Metric

import adapters
from gateway.api.auth import Authenticator
from gateway.api.deadlines import BACKSTOPS, Backstops
from gateway.api.handlers import setup_routes
from gateway.api.limits import MemoryCallerLimiter, RedisCallerLimiter
from gateway.api.metrics_port import metrics_listener
from gateway.api.middleware import pipeline
from gateway.api.openapi import setup_docs_routes
from gateway.api.sale_accounts import setup_sale_account_routes
from gateway.api.state import (
    AUDIT,
    AUTHENTICATOR,
    CACHE_BACKEND,
    CALLER_LIMITER,
    METRICS,
    SALE_ACCOUNTS,
    SERVICE,
    SETTINGS,
    TOKENS,
)
from gateway.api.webapp import setup_app_routes
from gateway.config.keycheck import unknown_names
from gateway.config.settings import ConnectionSettings, Settings
from gateway.errors import ConfigError
from gateway.events.routes import setup_event_routes
from gateway.events.setup import running_events
from gateway.invoices.cursor import CursorCodec
from gateway.invoices.listing import Connection
from gateway.invoices.service import InvoiceService
from gateway.invoices.writes import SaleAccountService
from gateway.state.cache import Cache, CachedLoader, MemoryCache
from gateway.state.idempotency import IdempotencyStore, MemoryIdempotencyStore
from gateway.state.journal import MemoryJournal, RedisJournal, WriteJournal
from gateway.state.ratelimit import LocalRateLimiter, RateLimiter
from gateway.state.redis_cache import RedisCache, RedisHealth
from gateway.state.redis_client import RedisClient, close_redis, connect_redis
from gateway.state.redis_idempotency import RedisIdempotencyStore
from gateway.state.redis_ratelimit import RedisRateLimiter
from gateway.state.redis_token_record import RedisTokenStore
from gateway.state.redis_tokens import RedisTokenProvider
from gateway.state.tokenfile import FileTokenStore
from gateway.state.tokens import LocalTokenProvider, TokenProvider, TokenStore
from gateway.telemetry.audit import MemoryAuditTrail, RedisAuditTrail
from gateway.telemetry.metrics import (
    BREAKER_STATES,
    HEALTH_STATES,
    Metrics,
    counter,
    gauge,
)
from gateway.upstream.breaker import BreakerPolicy, CircuitBreaker
from gateway.upstream.http import UpstreamClient
from gateway.upstream.origin import Origin
from gateway.upstream.providers import ConnectionKeys, ProviderContext
from gateway.upstream.retry import RetryBudget, RetryPolicy

MAX_REQUEST_BYTES = 64 * 1024
USER_AGENT = "invoice-gateway/0.1"


LimiterFactory = Callable[[ConnectionSettings], RateLimiter]


def local_limiter(conn: ConnectionSettings) -> RateLimiter:
    """Pacing for one process: the connection's configured limit, and its headers."""
    return _local(conn)


def _local(conn: ConnectionSettings) -> LocalRateLimiter:
    return LocalRateLimiter(
        conn.rate_limit_requests, conn.rate_limit_window_s, max_pause_s=conn.max_pause_s
    )


def shared_limiter(client: RedisClient, health: RedisHealth) -> LimiterFactory:
    """Pacing shared by every replica through Redis (local pacing while it is away)."""

    def make(conn: ConnectionSettings) -> RateLimiter:
        return RedisRateLimiter(client, health, conn.id, _local(conn))

    return make


def breaker_policy(conn: ConnectionSettings) -> BreakerPolicy:
    """The connection's breaker thresholds, from its settings."""
    return BreakerPolicy(
        consecutive=conn.breaker_failures,
        window=conn.breaker_window,
        min_calls=conn.breaker_min_calls,
        failure_ratio=conn.breaker_failure_ratio,
        cooldown_s=conn.breaker_cooldown_s,
        probes=conn.breaker_probes,
    )


def build_connections(
    settings: Settings,
    session: aiohttp.ClientSession,
    tokens: TokenProvider,
    now: Callable[[], datetime],
    limiter: LimiterFactory = local_limiter,
    metrics: Metrics | None = None,
) -> dict[str, Connection]:
    """Create every connection's funnel and adapter; all refusals raised together."""
    built: dict[str, Connection] = {}
    problems: list[str] = []
    for conn in settings.connections:
        http = UpstreamClient(
            session,
            conn.id,
            conn.base_url,
            conn.timeout_s,
            settings.max_upstream_body_bytes,
            limiter=limiter(conn),
            breaker=CircuitBreaker(conn.id, breaker_policy(conn)),
            read_retry=RetryPolicy(attempts=conn.retry_attempts),
            metrics=metrics,
            retry_budget=RetryBudget(conn.retry_budget_ratio, conn.retry_budget_min),
            document_origins=frozenset(
                Origin.parse(text) for text in conn.document_origins
            ),
        )
        unknown_secrets, unknown_options = unknown_provider_keys(conn)
        problems += unknown_secrets + unknown_options
        if unknown_secrets:  # the adapter would only repeat them as "missing"
            continue
        ctx = ProviderContext(settings=conn, http=http, tokens=tokens, now=now)
        try:
            adapter = adapters.load_factory(conn.provider)(ctx)
        except ConfigError as err:
            problems.extend(f"connections.{conn.id}: {p}" for p in err.problems)
            continue
        built[conn.id] = Connection(conn, adapter, http)
    if problems:
        raise ConfigError(problems)
    return built


def unknown_provider_keys(conn: ConnectionSettings) -> tuple[list[str], list[str]]:
    """`[secrets]` and `[options]` names the connection's provider does not read."""
    keys: ConnectionKeys = adapters.load_keys(conn.provider)
    where = f"connections.{conn.id}"
    return (
        unknown_names(f"{where}.secrets.", conn.secrets, keys.secrets, "secret"),
        unknown_names(f"{where}.options.", conn.options, keys.options, "option"),
    )


@contextlib.asynccontextmanager
async def token_store(settings: Settings) -> AsyncIterator[TokenStore]:
    """Where the deployment keeps tokens: Redis when `REDIS_URL` is set, else files.

    `invoice-gateway auth` saves a new consent here, so every replica adopts it.
    """
    if settings.redis_url is None:
        assert settings.state_dir is not None  # noqa: S101 - load_settings sets it
        yield FileTokenStore(settings.state_dir)
        return
    client = connect_redis(settings.redis_url.reveal(), cluster=settings.redis_cluster)
    try:
        yield RedisTokenStore(client)
    finally:
        await close_redis(client)


def state_metrics(
    connections: dict[str, Connection], tokens: TokenProvider, redis: RedisHealth | None
) -> list[Metric]:
    """Breaker, upstream health, token refreshes and Redis, read at scrape time."""
    breaker = gauge(
        "gateway_breaker_state", "0 closed, 1 half-open, 2 open", "connection"
    )
    health = gauge(
        "gateway_upstream_up", "1 up, 0 down, -1 not called yet", "connection"
    )
    refreshes = counter("gateway_token_refreshes", "Tokens obtained", "connection")
    for cid, conn in connections.items():
        if conn.http.breaker is not None:
            breaker.add_metric([cid], BREAKER_STATES[conn.http.breaker.state])
        health.add_metric([cid], HEALTH_STATES[conn.http.health.as_status()])
        refreshes.add_metric([cid], tokens.state(cid).refreshes)
    out: list[Metric] = [breaker, health, refreshes]
    if redis is not None:
        up = GaugeMetricFamily("gateway_redis_up", "1 when the last Redis call worked")
        up.add_metric([], 1 if redis.state != "down" else 0)
        out.append(up)
    return out


def create_app(
    settings: Settings,
    *,
    cache: Cache | None = None,
    tokens: TokenProvider | None = None,
    idempotency: IdempotencyStore | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
    clock: Callable[[], float] = time.time,
) -> web.Application:
    """Build the gateway application; stores, backends and clocks are injectable."""
    app = _application(settings)
    sessions: list[aiohttp.ClientSession] = []  # the one session, once it is open
    app[AUTHENTICATOR] = Authenticator(
        settings.api_keys, settings.jwt_issuers, lambda: sessions[0]
    )
    shared = _state_backends(app, settings, cache, tokens, clock)
    app.cleanup_ctx.append(
        _resources(settings, shared, sessions, idempotency, now, clock)
    )
    if settings.metrics_port is not None:
        app.cleanup_ctx.append(metrics_listener(settings.host, settings.metrics_port))
    _routes(app)
    return app


def _application(settings: Settings) -> web.Application:
    """The bare application: middlewares, request ids, settings and metrics."""
    app = web.Application(
        middlewares=[pipeline],
        client_max_size=MAX_REQUEST_BYTES,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app[BACKSTOPS] = Backstops()
    return app


@dataclass(frozen=True, slots=True)
class SharedState:
    """Where this process keeps what it shares: Redis when configured, else memory."""

    redis: RedisClient | None
    health: RedisHealth | None
    cache: Cache
    limiter: LimiterFactory


def _state_backends(
    app: web.Application,
    settings: Settings,
    cache: Cache | None,
    tokens: TokenProvider | None,
    clock: Callable[[], float],
) -> SharedState:
    """Caller limits, audit, tokens and cache: in Redis (`REDIS_URL`) or in memory.

    Injected `cache` and `tokens` win over both.
    """
    store = FileTokenStore(settings.state_dir) if settings.state_dir else None
    local_tokens = LocalTokenProvider(clock, store)
    client: RedisClient | None = None
    health: RedisHealth | None = None
    limiter: LimiterFactory = local_limiter
    if settings.redis_url is None:
        app[CALLER_LIMITER] = MemoryCallerLimiter()
        app[AUDIT] = MemoryAuditTrail()
    else:
        client = connect_redis(
            settings.redis_url.reveal(), cluster=settings.redis_cluster
        )
        health = RedisHealth()
        limiter = shared_limiter(client, health)
        app[CALLER_LIMITER] = RedisCallerLimiter(
            client, health, MemoryCallerLimiter(), clock
        )
        app[AUDIT] = RedisAuditTrail(client, health)
        if cache is None:  # not `or`: an empty injected MemoryCache is falsy
            cache = RedisCache(client, health, clock)
        tokens = tokens or RedisTokenProvider(client, health, local_tokens, clock)
    app[TOKENS] = tokens or local_tokens
    app[CACHE_BACKEND] = "memory" if cache is None else cache
    if cache is None:
        cache = MemoryCache(
            settings.cache_max_entries, clock, max_bytes=settings.cache_max_bytes
        )
    return SharedState(client, health, cache, limiter)


def _resources(
    settings: Settings,
    shared: SharedState,
    sessions: list[aiohttp.ClientSession],
    idempotency: IdempotencyStore | None,
    now: Callable[[], datetime],
    clock: Callable[[], float],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context: session, connections, services and events, then their end."""

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with _client_session() as session:
            sessions.append(session)
            loader = CachedLoader(shared.cache, clock)
            connections = build_connections(
                settings, session, app[TOKENS], now, shared.limiter, app[METRICS]
            )
            app[METRICS].watch(
                lambda: state_metrics(connections, app[TOKENS], shared.health)
            )
            _services(
                app, settings, connections, loader, shared, idempotency, now, clock
            )
            async with running_events(
                app, settings, shared.redis, connections, loader, session, now
            ):
                yield
            await loader.close()
            await app[TOKENS].close()
            await app[SALE_ACCOUNTS].close()
            if shared.redis is not None:
                await close_redis(shared.redis)

    return resources


def _client_session() -> aiohttp.ClientSession:
    """The one outgoing session: bounded connection pool, no cookies."""
    connector = aiohttp.TCPConnector(limit=200, limit_per_host=50, ttl_dns_cache=300)
    # No cookie jar: connections on one host (two tenants of a vendor) must never
    # share a session cookie, and upstream cookies are never credentials we send.
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
    )


def _services(
    app: web.Application,
    settings: Settings,
    connections: dict[str, Connection],
    loader: CachedLoader,
    shared: SharedState,
    idempotency: IdempotencyStore | None,
    now: Callable[[], datetime],
    clock: Callable[[], float],
) -> None:
    """The invoice reads and the sale-account writes over the connections."""
    app[SERVICE] = InvoiceService(
        connections,
        loader,
        CursorCodec(settings.cursor_secret),
        deadline_s=settings.request_timeout_s,
        now=now,
    )
    if idempotency is None:
        idempotency = (
            MemoryIdempotencyStore(clock=clock)
            if shared.redis is None
            else RedisIdempotencyStore(shared.redis, clock=clock)
        )
    journal: WriteJournal = (
        MemoryJournal(clock=clock)
        if shared.redis is None or shared.health is None
        else RedisJournal(shared.redis, shared.health)
    )
    app[SALE_ACCOUNTS] = SaleAccountService(
        connections,
        loader,
        idempotency,
        journal,
        wait_s=settings.request_timeout_s,
        clock=clock,
    )


def _routes(app: web.Application) -> None:
    """Every route: the API, sale accounts, the page, events, the documents."""
    setup_routes(app)
    setup_sale_account_routes(app)
    setup_app_routes(app)
    setup_event_routes(app)
    setup_docs_routes(app)

"""Settings as value objects: the process's settings, each connection's, each API key's.

Loading them from the environment and the connections file is `gateway.config.load`'s job.
Credentials are `Secret`s, which never print themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "America/Sao_Paulo"


class Secret:
    """A credential value that never prints itself."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        """Wrap the raw value."""
        self._value = value

    def reveal(self) -> str:
        """The raw value, for the one place that must send it upstream."""
        return self._value

    def __repr__(self) -> str:
        """Redacted, so a logged settings object leaks nothing."""
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        """Compare by value (tests and config reloads)."""
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        """Hash by value, consistent with equality."""
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """One configured upstream instance, keyed by its short id."""

    id: str
    provider: str
    base_url: str
    secrets: Mapping[str, Secret] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    timeout_s: float = 10.0
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo(DEFAULT_TIMEZONE))
    currency: str | None = None
    cache_fresh_s: float = 60.0
    cache_stale_s: float = 3600.0
    rate_limit_requests: int | None = None  # the upstream's limit per window, if known
    rate_limit_window_s: float = 60.0
    retry_attempts: int = 2  # tries of an idempotent read, the first included
    retry_budget_ratio: float = 0.6  # retries per call started, over the last 10 s
    retry_budget_min: int = 10  # retries always allowed per 10 s (a quiet connection)
    breaker_failures: int = 10  # consecutive failed calls that open the circuit
    breaker_window: int = 50  # recent calls whose failure ratio is judged
    breaker_min_calls: int = 20  # calls in the window before the ratio counts
    breaker_failure_ratio: float = 0.8  # failed share of the window that opens it
    breaker_probes: int = 3  # calls let through half-open before judging again
    breaker_cooldown_s: float = 30.0
    sync_interval_s: float = 0.0  # the change detector's period; 0: not watched
    max_pause_s: float = 300.0  # cap on Retry-After / X-RateLimit-Reset waits
    max_pages: int = 200  # pages of one paged read before it stops, incomplete
    # Origins (scheme://host[:port]) documents may come from besides base_url; fetched
    # without the connection's credentials.
    document_origins: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    """One `[[webhooks]]` subscription: where, what, whose, and the signing secret."""

    name: str
    url: str
    secret: Secret  # `whsec_<base64>`, read from the environment
    types: frozenset[str]
    connections: frozenset[str] | None  # None: every connection

    def wants(self, event_type: str, connection: str) -> bool:
        """Whether an event of this type about this connection goes to this hook."""
        return event_type in self.types and (
            self.connections is None or connection in self.connections
        )


@dataclass(frozen=True, slots=True)
class EventSettings:
    """The `[events]` table: change detection, the event log and webhook delivery."""

    retention_s: float = 7 * 86400.0  # events older than this leave the log
    lookback_days: int = 90  # due dates watched: today - lookback ...
    lookahead_days: int = 45  # ... today + lookahead
    followups: int = (
        10  # unpaid invoices due before the window, read one by one per sync
    )
    lease_s: float = 5.0  # the sync leader's lease; a dead leader is replaced after it
    delivery_poll_s: float = 1.0
    claim_idle_s: float = 30.0  # a delivery untouched this long is taken over
    retry_base_s: float = 5.0  # first retry delay, doubled per attempt (jittered)
    retry_max_s: float = 3600.0
    max_delivery_age_s: float = 86400.0  # then the delivery is dead-lettered
    delivery_timeout_s: float = 10.0
    allowed_hosts: frozenset[str] = frozenset()  # `host:port` webhooks may target


@dataclass(frozen=True, slots=True)
class CallerLimit:
    """How many requests one caller may make per window (a token bucket's size and rate)."""

    requests: int
    window_s: float


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An internal caller's key, known only by its SHA-256 hash."""

    name: str
    sha256: str
    scopes: frozenset[str]
    connections: frozenset[str] | None  # None: every connection
    rate_limit: CallerLimit | None = None  # None: unlimited


@dataclass(frozen=True, slots=True)
class JwtIssuer:
    """A trusted issuer of end-user tokens (`[[jwt_issuers]]`).

    Keys come from exactly one of `jwks_url`, `jwks_file` or (HS256 only) `hs256_secret`,
    a secret read from the environment. A token's customer is named by `customer_claim`
    (a CPF/CNPJ or a list of them); its scopes by `scopes_claim`, capped by
    `allowed_scopes` (a token without the claim gets `default_scopes`).
    """

    name: str
    issuer: str
    audience: str
    algorithms: tuple[str, ...]
    jwks_url: str | None = None
    jwks_file: Path | None = None
    hs256_secret: Secret | None = None
    customer_claim: str = "customer_documents"
    scopes_claim: str | None = "scope"
    required_claims: tuple[str, ...] = ("exp", "iat", "sub")
    leeway_s: float = 30.0
    default_scopes: frozenset[str] = frozenset({"invoices:read"})
    allowed_scopes: frozenset[str] = frozenset({"invoices:read"})
    connections: frozenset[str] | None = None
    jwks_cache_s: float = 300.0  # keys are refetched after this long
    jwks_min_refetch_s: float = 30.0  # at most one fetch per this long (unknown kids)
    jwks_keep_s: float = 86400.0  # last good keys serve this long while the URL fails
    rate_limit: CallerLimit | None = None  # per token subject


@dataclass(frozen=True, slots=True)
class CorsSettings:
    """Which browser origins may call the API, and what a preflight grants them."""

    origins: frozenset[str]
    max_age_s: int = 600
    allow_credentials: bool = False


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the gateway process needs to start."""

    connections: tuple[ConnectionSettings, ...]
    api_keys: tuple[ApiKey, ...]
    cursor_secret: Secret
    host: str = "127.0.0.1"
    port: int = 8080
    request_timeout_s: float = 8.0
    log_format: str = "auto"
    log_level: str = "info"
    cache_max_entries: int = 10_000
    cache_max_bytes: int = 256 * 1024 * 1024
    max_connections: int = 4096  # client connections per process; 503 beyond
    header_timeout_s: float = 10.0  # to receive a request's head (and keep-alive idle)
    body_timeout_s: float = 10.0  # to receive a request's body
    max_upstream_body_bytes: int = 16 * 1024 * 1024
    state_dir: Path | None = None  # None: tokens are kept in memory only
    redis_url: Secret | None = None  # may hold a password: never printed
    redis_cluster: bool = False
    metrics_port: int | None = None  # None: /metrics on the main port
    jwt_issuers: tuple[JwtIssuer, ...] = ()
    cors: CorsSettings | None = None
    events: EventSettings = field(default_factory=EventSettings)
    webhooks: tuple[WebhookSettings, ...] = ()

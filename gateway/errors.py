"""The one exception tree of the gateway; every error the core or an adapter raises.

    GatewayError
    ├── ConfigError               bad settings or connections file (all problems at once)
    ├── RequestError              the caller's fault, answered 4xx
    │   ├── InvalidRequestError     400, with the offending fields
    │   ├── AuthenticationError     401, missing or unknown credentials
    │   ├── ForbiddenError          403, principal may not do this
    │   ├── NotFoundError           404
    │   │   └── NotYoursError         404 alike, audited: another customer's resource
    │   ├── RateLimitedError        429 with Retry-After: the caller's budget is spent
    │   └── IdempotencyError        422 key reused with another body, 409 still in flight
    ├── UpstreamError             an upstream's fault, never a 500 (connection, method, path)
    │   ├── UpstreamTimeoutError    no answer in time                    -> 504
    │   │   └── WriteUncertainError  a write may or may not have happened -> 504, retry w/ key
    │   ├── UpstreamUnavailableError connect error, reset, 5xx           -> 502, retriable
    │   │   ├── TokenStoreUnavailableError  shared token store away, token spent -> 502
    │   │   └── CircuitOpenError      the connection's circuit is open: no call made -> 502
    │   ├── UpstreamRateLimitedError 429 (retry_after seconds)           -> 502, retriable
    │   │   └── UpstreamPausedError  held back by a rate-limit pause past the deadline
    │   ├── UpstreamAuthError       credentials rejected by upstream     -> 502, not retried
    │   ├── UpstreamProtocolError   body not what the contract says      -> 502
    │   │   ├── UpstreamMalformedError  unreadable body (garbage, cut JSON): retriable
    │   │   └── UpstreamOriginError     a link leaving the connection's origin: refused
    │   ├── UpstreamRejectedError   upstream refused the request         -> 502
    │   │   ├── UpstreamConfigError  the connection's settings are wrong -> 502
    │   │   └── UpstreamValidationError  refused a write's fields        -> 422 with errors
    │   └── UpstreamNotFoundError   upstream says the record is absent   -> 404 at item routes
    ├── SourcesFailedError        a fan-out where no source answered     -> 502 / 504
    ├── IdempotencyUnavailableError  shared idempotency store away: no write -> 503
    └── AuditUnavailableError     the audit stream cannot be read        -> 503

Messages name the connection, method and path only: never a query string, a header or a
token, because they end up in logs and problem+json bodies.

Each class describes its own answer: `status`, `problem_type` (the problem's `type` after
`urn:invoice-gateway:problem:`) and `title` are class attributes, and the few answers that
need more say so through small methods (`problem_detail`, `problem_headers`,
`problem_fields`, `problem_extensions`); `gateway.api.problems.from_error` only reads them.

`UpstreamError.error_type` is what a caller can act on, served as `sources[].error.type`:
one of `ErrorType`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

ErrorType = Literal[
    "auth", "config", "rate_limited", "unavailable", "protocol", "timeout"
]
# Retry-After of a shared store that is away: a guess, not a promise.
RETRY_LATER_S = "5"


class GatewayError(Exception):
    """Root of every error the gateway raises on purpose.

    An error without an answer of its own (a configuration error reaching a request) is a
    500 that says nothing of its message.
    """

    status: int = 500
    problem_type: str = "internal"
    title: str = "Internal Server Error"

    def problem_detail(self) -> str:
        """The problem's `detail`: safe to show a caller."""
        return "the gateway is misconfigured"

    def problem_headers(self) -> dict[str, str] | None:
        """Headers the answer carries besides the problem itself (Retry-After, ...)."""
        return None

    def problem_fields(self) -> list[FieldError] | None:
        """The problem's `errors[]`, when the answer names fields."""
        return None

    def problem_extensions(self) -> dict[str, object]:
        """Members added after the standard ones (`connection`, `sources`)."""
        return {}


class ConfigError(GatewayError):
    """The configuration cannot be used; carries every problem found, not just the first."""

    def __init__(self, problems: list[str]) -> None:
        """Keep the full list so the CLI can print all of it."""
        self.problems = problems
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True, slots=True)
class FieldError:
    """One bad input field and why; an upstream's own words kept apart when it refused."""

    field: str
    message: str
    upstream_field: str | None = None
    upstream_message: str | None = None


class RequestError(GatewayError):
    """The caller's request cannot be served as asked."""

    status = 400
    problem_type = "bad-request"
    title = "Bad Request"

    def __init__(self, detail: str) -> None:
        """Remember the human-readable detail for the problem body."""
        self.detail = detail
        super().__init__(detail)

    def problem_detail(self) -> str:
        """The detail given when raised."""
        return self.detail


class InvalidRequestError(RequestError):
    """One or more parameters or body fields are invalid."""

    problem_type = "invalid-request"
    title = "Invalid request"

    def __init__(self, errors: list[FieldError]) -> None:
        """Keep every field error; the detail names them all."""
        self.errors = errors
        names = ", ".join(sorted({e.field for e in errors}))
        super().__init__(f"invalid input: {names}")

    def problem_fields(self) -> list[FieldError]:
        """Every offending field."""
        return self.errors


class AuthenticationError(RequestError):
    """No valid credentials were presented.

    `challenge` is the `WWW-Authenticate` value: a bad end-user token says
    `error="invalid_token"` (RFC 6750) and nothing more than expired or invalid.
    """

    status = 401
    problem_type = "unauthorized"
    title = "Unauthorized"

    def __init__(
        self, detail: str, challenge: str = 'Bearer realm="invoice-gateway"'
    ) -> None:
        """Keep the detail and the challenge for the 401 response."""
        super().__init__(detail)
        self.challenge = challenge

    def problem_headers(self) -> dict[str, str]:
        """The challenge."""
        return {"WWW-Authenticate": self.challenge}


class ForbiddenError(RequestError):
    """The principal is known but may not do this."""

    status = 403
    problem_type = "forbidden"
    title = "Forbidden"


class NotFoundError(RequestError):
    """The addressed resource does not exist (or is not visible to the caller)."""

    status = 404
    problem_type = "not-found"
    title = "Not Found"


class RateLimitedError(RequestError):
    """This caller has spent its request budget; come back after `retry_after_s`."""

    status = 429
    problem_type = "too-many-requests"
    title = "Too Many Requests"

    def __init__(self, retry_after_s: float) -> None:
        """Keep when the caller may come back."""
        super().__init__("this caller's request budget is spent; see Retry-After")
        self.retry_after_s = retry_after_s

    def problem_headers(self) -> dict[str, str]:
        """Whole seconds, at least one: coming back sooner is refused again."""
        return {"Retry-After": str(max(1, math.ceil(self.retry_after_s)))}


class NotYoursError(NotFoundError):
    """It exists but belongs to another customer: answered as the very same 404.

    Only the audit trail tells the two apart; the caller gets no hint that it exists.
    """


class UpstreamError(GatewayError):
    """An upstream failed; carries where, never credentials or query strings."""

    status = 502
    problem_type = "upstream-error"
    title = "Bad gateway"
    error_type: ErrorType = "protocol"
    retriable = False

    def __init__(
        self, connection: str, method: str, path: str, reason: str, *, status: int = 0
    ) -> None:
        """Build the message from the call site and a short reason."""
        self.connection = connection
        self.method = method
        self.path = path
        self.reason = reason
        self.upstream_status = status
        super().__init__(f"{connection}: {method} {path}: {reason}")

    def problem_detail(self) -> str:
        """Connection, method, path and reason: nothing secret."""
        return str(self)

    def problem_extensions(self) -> dict[str, object]:
        """Which connection failed."""
        return {"connection": self.connection}


class UpstreamTimeoutError(UpstreamError):
    """The upstream did not answer within the time it was given."""

    status = 504
    problem_type = "upstream-timeout"
    title = "Upstream timeout"
    error_type = "timeout"
    retriable = True


class UpstreamUnavailableError(UpstreamError):
    """Connection refused or reset, or a 5xx: worth another try later."""

    error_type = "unavailable"
    retriable = True


class TokenStoreUnavailableError(UpstreamUnavailableError):
    """The access token ran out while the shared token store is unreachable.

    A rotating refresh token is never used without the store's lock (two replicas
    presenting it would make the upstream revoke the consent), so the source fails
    until the store is back. Not retried: the store, not the upstream, is away.
    """

    retriable = False

    def __init__(self, connection: str) -> None:
        """A fixed reason that says what happened and why nothing was tried."""
        super().__init__(
            connection,
            "POST",
            "(token refresh)",
            "token store unavailable: the access token expired and a rotating "
            "refresh token is only used under the shared store's lock",
        )


class UpstreamRateLimitedError(UpstreamError):
    """The upstream throttled us (429)."""

    error_type = "rate_limited"
    retriable = True

    def __init__(
        self,
        connection: str,
        method: str,
        path: str,
        reason: str,
        *,
        status: int = 429,
        retry_after: float | None = None,
    ) -> None:
        """Also remember how long the upstream asked us to wait."""
        super().__init__(connection, method, path, reason, status=status)
        self.retry_after = retry_after


class UpstreamPausedError(UpstreamRateLimitedError):
    """A rate-limit pause outlasts the request's deadline: no call was made, none retried."""

    retriable = False


class CircuitOpenError(UpstreamUnavailableError):
    """The connection's circuit is open: no call was made."""

    retriable = False


class UpstreamAuthError(UpstreamError):
    """The upstream rejected our credentials even after a fresh login."""

    error_type = "auth"


class UpstreamProtocolError(UpstreamError):
    """The upstream answered something its contract does not allow."""


class UpstreamMalformedError(UpstreamProtocolError):
    """The body could not be read at all (cut JSON, an HTML page): worth another try."""

    retriable = True


class UpstreamOriginError(UpstreamProtocolError):
    """A URL from upstream data pointed outside the connection's origin: never called."""


class UpstreamRejectedError(UpstreamError):
    """The upstream understood and refused the request (validation, business rule)."""


class UpstreamConfigError(UpstreamRejectedError):
    """The upstream refused because of how the connection is configured (account, plan)."""

    error_type = "config"


class UpstreamNotFoundError(UpstreamError):
    """The upstream says the record does not exist."""

    status = 404
    problem_type = "not-found"
    title = "Not Found"


class SourcesFailedError(GatewayError):
    """No source could answer a fan-out: 504 when all timed out, else 502.

    `sources` is the JSON-ready `sources[]` list, served in the problem body so the caller
    sees which connection failed how.
    """

    status = 502
    problem_type = "sources-failed"
    title = "Bad gateway"

    def __init__(self, sources: list[dict[str, object]], *, all_timeouts: bool) -> None:
        """Keep the per-source outcomes for the problem body."""
        self.sources = sources
        if all_timeouts:
            self.status, self.title = 504, "Upstream timeout"
        super().__init__("no source could answer")

    def problem_detail(self) -> str:
        """A fixed message; `sources` says the rest."""
        return str(self)

    def problem_extensions(self) -> dict[str, object]:
        """How each source fared."""
        return {"sources": self.sources}


class UpstreamValidationError(UpstreamRejectedError):
    """The upstream refused a write's fields (answered 422 with `errors`)."""

    status = 422
    problem_type = "upstream-validation"
    title = "Unprocessable Content"

    def __init__(
        self, connection: str, method: str, path: str, errors: list[FieldError]
    ) -> None:
        """Keep the field errors, already in the gateway's field names."""
        self.errors = errors
        super().__init__(
            connection, method, path, "upstream refused the fields", status=422
        )

    def problem_detail(self) -> str:
        """Who refused; the fields are in `errors`."""
        return f"{self.connection} refused the fields"

    def problem_fields(self) -> list[FieldError]:
        """The refused fields, in the gateway's names."""
        return self.errors


class IdempotencyError(RequestError):
    """An Idempotency-Key reused with another body (422), or still in flight (409)."""

    problem_type = "idempotency-key-conflict"
    title = "Idempotency-Key conflict"

    def __init__(self, detail: str, *, status: int) -> None:
        """Carry the status: 422 for a different body, 409 for a request in progress."""
        self.status = status
        super().__init__(detail)


class WriteUncertainError(UpstreamTimeoutError):
    """A write's outcome is unknown (the upstream did not answer); retry with the same key."""

    problem_type = "write-uncertain"

    def problem_detail(self) -> str:
        """The reason alone: it tells the caller to retry with the same key."""
        return self.reason


class IdempotencyUnavailableError(GatewayError):
    """The shared idempotency store cannot be reached: writes are refused (503)."""

    status = 503
    problem_type = "idempotency-unavailable"
    title = "Service Unavailable"

    def __init__(self) -> None:
        """A fixed message: nothing about the store's address or credentials."""
        super().__init__(
            "the idempotency store is unavailable; the write was not attempted, retry later"
        )

    def problem_detail(self) -> str:
        """The fixed message."""
        return str(self)

    def problem_headers(self) -> dict[str, str]:
        """When to try again."""
        return {"Retry-After": RETRY_LATER_S}


class AuditUnavailableError(GatewayError):
    """The shared audit stream cannot be read right now (503); events are still logged."""

    status = 503
    problem_type = "audit-unavailable"
    title = "Service Unavailable"

    def __init__(self) -> None:
        """A fixed message: nothing about the store's address or credentials."""
        super().__init__("the audit trail cannot be read right now; retry later")

    def problem_detail(self) -> str:
        """The fixed message."""
        return str(self)

    def problem_headers(self) -> dict[str, str]:
        """When to try again."""
        return {"Retry-After": RETRY_LATER_S}

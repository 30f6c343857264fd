"""Every error answers as its class says: status, problem type, title, headers and parts.

The expectations are written out by hand: they are the answers callers already rely on
(the same bytes the isinstance ladder produced before the errors described themselves).
"""

from __future__ import annotations

import inspect

import pytest

from gateway import errors
from gateway.api.problems import from_error
from gateway.jsoncodec import loads

BASE = "urn:invoice-gateway:problem:"
FIELDS = [
    errors.FieldError("amount", "must be positive"),
    errors.FieldError("due", "bad", "venc", "x"),
]
WHERE = ("c1", "GET", "/p", "why")

# error, status, type, title, extra headers
CASES: list[tuple[errors.GatewayError, int, str, str, dict[str, str]]] = [
    (errors.ConfigError(["x"]), 500, "internal", "Internal Server Error", {}),
    (errors.RequestError("plain"), 400, "bad-request", "Bad Request", {}),
    (errors.InvalidRequestError(FIELDS), 400, "invalid-request", "Invalid request", {}),
    (
        errors.AuthenticationError("no key"),
        401,
        "unauthorized",
        "Unauthorized",
        {"WWW-Authenticate": 'Bearer realm="invoice-gateway"'},
    ),
    (errors.ForbiddenError("no"), 403, "forbidden", "Forbidden", {}),
    (errors.NotFoundError("nf"), 404, "not-found", "Not Found", {}),
    (errors.NotYoursError("nf"), 404, "not-found", "Not Found", {}),
    (
        errors.RateLimitedError(0.2),
        429,
        "too-many-requests",
        "Too Many Requests",
        {"Retry-After": "1"},
    ),
    (
        errors.RateLimitedError(3.5),
        429,
        "too-many-requests",
        "Too Many Requests",
        {"Retry-After": "4"},
    ),
    (
        errors.IdempotencyError("other body", status=422),
        422,
        "idempotency-key-conflict",
        "Idempotency-Key conflict",
        {},
    ),
    (
        errors.IdempotencyError("in flight", status=409),
        409,
        "idempotency-key-conflict",
        "Idempotency-Key conflict",
        {},
    ),
    (errors.UpstreamError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (
        errors.UpstreamTimeoutError(*WHERE),
        504,
        "upstream-timeout",
        "Upstream timeout",
        {},
    ),
    (
        errors.WriteUncertainError(*WHERE),
        504,
        "write-uncertain",
        "Upstream timeout",
        {},
    ),
    (errors.UpstreamUnavailableError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.TokenStoreUnavailableError("c1"), 502, "upstream-error", "Bad gateway", {}),
    (errors.CircuitOpenError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamRateLimitedError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamPausedError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamAuthError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamProtocolError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamMalformedError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamOriginError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamRejectedError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (errors.UpstreamConfigError(*WHERE), 502, "upstream-error", "Bad gateway", {}),
    (
        errors.UpstreamValidationError("c1", "POST", "/p", FIELDS),
        422,
        "upstream-validation",
        "Unprocessable Content",
        {},
    ),
    (errors.UpstreamNotFoundError(*WHERE), 404, "not-found", "Not Found", {}),
    (
        errors.SourcesFailedError([], all_timeouts=True),
        504,
        "sources-failed",
        "Upstream timeout",
        {},
    ),
    (
        errors.SourcesFailedError([], all_timeouts=False),
        502,
        "sources-failed",
        "Bad gateway",
        {},
    ),
    (
        errors.IdempotencyUnavailableError(),
        503,
        "idempotency-unavailable",
        "Service Unavailable",
        {"Retry-After": "5"},
    ),
    (
        errors.AuditUnavailableError(),
        503,
        "audit-unavailable",
        "Service Unavailable",
        {"Retry-After": "5"},
    ),
]


@pytest.mark.parametrize(
    ("err", "status", "slug", "title", "headers"),
    CASES,
    ids=[f"{type(c[0]).__name__}-{c[1]}" for c in CASES],
)
def test_each_error_answers_with_its_own_status_type_title_and_headers(
    err, status, slug, title, headers
):
    """The answer is the error's own: nothing else decides it."""
    response = from_error(err)
    body = loads(response.body)
    assert response.status == status
    assert response.content_type == "application/problem+json"
    assert list(body)[:4] == ["type", "title", "status", "detail"]
    assert (body["type"], body["title"], body["status"]) == (BASE + slug, title, status)
    extra = {k: v for k, v in response.headers.items() if k != "Content-Type"}
    assert extra == headers


def test_every_error_of_the_tree_is_in_the_table():
    """A new error class cannot join without saying (and testing) how it answers."""
    tree = {
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.GatewayError) and cls is not errors.GatewayError
    }
    assert tree == {type(case[0]) for case in CASES}


def test_upstream_answers_name_the_connection_and_never_more():
    """Upstream problems carry `connection`; the detail is the call site and reason."""
    body = loads(from_error(errors.UpstreamAuthError(*WHERE)).body)
    assert body["detail"] == "c1: GET /p: why"
    assert body["connection"] == "c1"
    assert set(body) == {"type", "title", "status", "detail", "connection"}
    uncertain = loads(from_error(errors.WriteUncertainError(*WHERE)).body)
    assert (uncertain["detail"], uncertain["connection"]) == ("why", "c1")


def test_field_lists_and_sources_are_served():
    """Invalid input and refused writes list the fields; a failed fan-out its sources."""
    invalid = loads(from_error(errors.InvalidRequestError(FIELDS)).body)
    assert invalid["detail"] == "invalid input: amount, due"
    assert invalid["errors"] == [
        {"field": "amount", "message": "must be positive"},
        {
            "field": "due",
            "message": "bad",
            "upstream": {"field": "venc", "message": "x"},
        },
    ]
    refused = loads(
        from_error(errors.UpstreamValidationError("c1", "POST", "/p", FIELDS)).body
    )
    assert refused["detail"] == "c1 refused the fields"
    assert refused["connection"] == "c1"
    assert [e["field"] for e in refused["errors"]] == ["amount", "due"]
    sources = [{"connection": "c1", "status": "error"}]
    failed = loads(
        from_error(errors.SourcesFailedError(sources, all_timeouts=False)).body
    )
    assert (failed["detail"], failed["sources"]) == ("no source could answer", sources)


def test_an_error_without_an_answer_of_its_own_reveals_nothing():
    """A configuration error reaching a request is a bare 500: its message stays inside."""
    body = loads(from_error(errors.ConfigError(["redis password is hunter2"])).body)
    assert body["detail"] == "the gateway is misconfigured"
    assert "hunter2" not in str(body)

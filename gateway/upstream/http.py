"""The upstream request funnel: every call an adapter makes goes through here.

One `UpstreamClient` per connection, all sharing the app's single `ClientSession`. It
decides where a call may go (`gateway.upstream.origin`: the connection's own scheme, host and
port, checked before a byte is sent, redirects included), injects auth (and on a 401
asks the authenticator to drop the token and tries exactly once more), bounds each call
by the connection's timeout and the request's deadline and the body by a size cap,
waits for the rate limiter (never past the deadline), retries idempotent reads on the
retriable family inside a bounded loop that also spends the connection's retry budget,
classifies the response by status *before* anyone decodes it, and runs the caller's
`parse` inside the attempt so an unreadable body is retried like a 503. The breaker
hears one verdict per logical call. aiohttp exceptions end here: callers only ever see
`UpstreamError` subclasses, whose messages carry no query string or header.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, TypeVar, Unpack

import aiohttp
import structlog
from aiohttp import hdrs
from multidict import CIMultiDictProxy
from yarl import URL

from gateway import jsoncodec
from gateway.errors import (
    CircuitOpenError,
    UpstreamAuthError,
    UpstreamError,
    UpstreamMalformedError,
    UpstreamNotFoundError,
    UpstreamOriginError,
    UpstreamPausedError,
    UpstreamProtocolError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.state.ratelimit import LocalRateLimiter, PauseTooLongError, RateLimiter
from gateway.telemetry.metrics import Metrics
from gateway.upstream import origin
from gateway.upstream.breaker import CircuitBreaker
from gateway.upstream.deadline import time_left
from gateway.upstream.health import UpstreamHealth
from gateway.upstream.httpstream import CHUNK, UpstreamStream
from gateway.upstream.origin import Link, LinkRefusedError, Origin
from gateway.upstream.retry import NO_RETRY, RetryBudget, RetryPolicy, parse_retry_after

log = structlog.get_logger("upstream")
HTTP_UNAUTHORIZED = 401
HTTP_NOT_FOUND = 404
HTTP_TOO_MANY = 429
HTTP_SERVER_ERROR = 500
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 3
T = TypeVar("T")
Target = str | Link  # an adapter's endpoint path, or a link out of upstream data


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A fully read upstream response (bounded in size)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    url: URL = field(default_factory=URL)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self.headers.get(hdrs.CONTENT_TYPE, "").split(";")[0].strip().lower()


class Authenticator(Protocol):
    """Adds credentials to a request and hears when they were rejected."""

    async def apply(self, headers: dict[str, str]) -> object:
        """Set auth headers; return a handle identifying the credentials used."""
        ...

    async def rejected(self, handle: object) -> bool:
        """The upstream answered 401 to `handle`'s credentials; True: renewed, try again."""
        ...


def _as_is(response: UpstreamResponse) -> UpstreamResponse:
    return response


def verdict(err: UpstreamError) -> bool | None:
    """What a failed call tells the breaker: False down, True up, None nothing."""
    if isinstance(err, CircuitOpenError | UpstreamPausedError | UpstreamOriginError):
        return None  # no call reached the upstream
    # Down: no answer, a 5xx, or an answer no contract allows. Anything else (a 4xx, an
    # envelope error) means the upstream is up and talking.
    return not isinstance(
        err, UpstreamUnavailableError | UpstreamTimeoutError | UpstreamProtocolError
    )


class CallOptions(TypedDict, total=False):
    """The keyword options of one call (`UpstreamClient.call`), all optional."""

    params: Mapping[str, str] | None
    json: Any
    form: dict[str, str] | None
    headers: dict[str, str] | None
    auth: Authenticator | None
    retry: RetryPolicy | None
    pass_statuses: frozenset[int]
    label: str | None


@dataclass(slots=True)
class UpstreamClient:
    """HTTP to one connection's origin through the shared session."""

    session: aiohttp.ClientSession
    connection: str
    base_url: str
    timeout_s: float
    max_body_bytes: int = 16 * 1024 * 1024
    health: UpstreamHealth = field(default_factory=UpstreamHealth)
    limiter: RateLimiter = field(default_factory=LocalRateLimiter)
    breaker: CircuitBreaker | None = None
    read_retry: RetryPolicy = field(default_factory=RetryPolicy)
    metrics: Metrics | None = None
    retry_budget: RetryBudget = field(default_factory=RetryBudget)
    document_origins: frozenset[Origin] = frozenset()
    base: URL = field(init=False)
    origin: Origin = field(init=False)

    def __post_init__(self) -> None:
        """Check the base URL once; its origin is where credentials may go."""
        self.base = origin.base_url(self.base_url)
        self.origin = Origin.of(self.base)

    def url_for(
        self,
        method: str,
        target: Target,
        params: Mapping[str, str] | None = None,
        label: str | None = None,
        *,
        allowed: frozenset[Origin] | None = None,
    ) -> tuple[URL, str]:
        """The URL a call goes to and the label naming it in logs and errors.

        A refused target is a `UpstreamOriginError` naming the connection; the message
        never quotes the URL (it may carry a signature or token).
        """
        shown = label or (target if isinstance(target, str) else "(link)")
        try:
            if isinstance(target, Link):
                url = origin.resolve(self.base, target, params)
                origin.check(url, allowed or {self.origin})
            else:
                url = origin.endpoint(self.base, target, params)
        except LinkRefusedError as err:
            raise UpstreamOriginError(
                self.connection, method, shown, f"link refused: {err}"
            ) from err
        return url, label or (target if isinstance(target, str) else url.path)

    async def request(
        self, method: str, target: Target, **options: Unpack[CallOptions]
    ) -> UpstreamResponse:
        """One logical call whose response is returned as read (see `call`)."""
        return await self.call(method, target, _as_is, **options)

    async def call(
        self,
        method: str,
        target: Target,
        parse: Callable[[UpstreamResponse], T],
        *,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: Authenticator | None = None,
        retry: RetryPolicy | None = None,
        pass_statuses: frozenset[int] = frozenset(),
        label: str | None = None,
    ) -> T:
        """Send one logical call and `parse` its response, both inside each attempt.

        Statuses in `pass_statuses` reach `parse` instead of raising. The body is `json`
        (serialised by our codec) or `form` (url-encoded), or none. Reads (GET) retry by
        the connection's policy unless told otherwise; writes never.
        """
        url, label = self.url_for(method, target, params, label)
        if retry is None:
            retry = self.read_retry if method == "GET" else NO_RETRY
        body: dict[str, Any] = {}
        if json is not None:
            body["data"] = jsoncodec.dumps(json)
            body["headers"] = {hdrs.CONTENT_TYPE: "application/json"}
        elif form is not None:
            body["data"] = form
        ticket = self.breaker.admit(method, label) if self.breaker else None
        self.retry_budget.started()
        ok: bool | None = None
        try:
            for attempt in range(retry.attempts):
                ok = None
                try:
                    response = await self._authenticated(
                        method, url, label, body, headers or {}, auth, pass_statuses
                    )
                    result = parse(response)
                except UpstreamError as err:
                    ok = verdict(err)
                    if not await self._retry(err, attempt, retry):
                        raise
                    continue
                ok = True
                return result
        finally:
            if self.breaker is not None and ticket is not None:
                self.breaker.settle(ticket, ok)
        raise AssertionError(
            "unreachable: the loop returns or raises"
        )  # pragma: no cover

    async def _retry(
        self, err: UpstreamError, attempt: int, retry: RetryPolicy
    ) -> bool:
        """Whether to try again (the caller re-raises when not); sleeps happen here."""
        if not err.retriable or attempt == retry.attempts - 1:
            return False
        retry_after = getattr(err, "retry_after", None)
        delay = retry.delay(attempt, retry_after)
        left = time_left()
        if left is not None and max(delay, retry_after or 0.0) >= left:
            return False  # a retry could not go out, let alone finish, in time
        if not self.retry_budget.try_spend():
            return False
        await asyncio.sleep(delay)
        return True

    async def _authenticated(
        self,
        method: str,
        url: URL,
        label: str,
        body: dict[str, Any],
        headers: dict[str, str],
        auth: Authenticator | None,
        pass_statuses: frozenset[int],
    ) -> UpstreamResponse:
        for login_attempt in range(2):  # the first try, then one after a fresh login
            call_headers = {**headers, **body.get("headers", {})}
            handle = await auth.apply(call_headers) if auth else None
            response = await self._send(
                method, url, label, body.get("data"), call_headers
            )
            if (
                response.status == HTTP_UNAUTHORIZED
                and auth
                and login_attempt == 0
                and await auth.rejected(handle)
            ):
                continue
            return self._classify(method, label, response, pass_statuses)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self, method: str, url: URL, label: str, data: Any, headers: dict[str, str]
    ) -> UpstreamResponse:
        started = time.monotonic()
        resp = await self._open(method, url, label, data, headers, streaming=False)
        try:
            with self._transport(method, label, self._budget()):
                body = await self._read_capped(method, label, resp)
        finally:
            resp.release()
        response = UpstreamResponse(resp.status, resp.headers, body, resp.url)
        log.debug(
            "upstream_call",
            connection=self.connection,
            method=method,
            path=label,
            status=response.status,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response

    def _budget(self) -> float:
        """This attempt's time: the connection's timeout, cut to the request's deadline."""
        left = time_left()
        return self.timeout_s if left is None else min(self.timeout_s, left)

    async def _wait_turn(self, method: str, label: str) -> None:
        try:
            await self.limiter.acquire()
        except PauseTooLongError as err:
            raise UpstreamPausedError(
                self.connection,
                method,
                label,
                f"rate limited: the upstream asked for a pause of another "
                f"{err.wait_s:.0f}s, past this request's deadline",
                retry_after=err.wait_s,
            ) from err

    async def _open(
        self,
        method: str,
        url: URL,
        label: str,
        data: Any,
        headers: dict[str, str],
        *,
        streaming: bool,
    ) -> aiohttp.ClientResponse:
        """Send and read the headers, following same-origin redirects of a GET.

        A stream (a document) may also be redirected to a listed document origin; that
        hop, and every one after it, goes without the connection's credentials.
        """
        allowed = {self.origin} | (self.document_origins if streaming else set())
        for hop in range(MAX_REDIRECTS + 1):
            if hop and origin.check(url, allowed) != self.origin:
                headers = {hdrs.ACCEPT: headers.get(hdrs.ACCEPT, "*/*")}
            await self._wait_turn(method, label)
            budget = self._budget()
            if budget <= 0:
                raise UpstreamTimeoutError(
                    self.connection, method, label, "the request's deadline has passed"
                )
            self.health.calls += 1
            started = time.monotonic()
            with self._transport(method, label, budget):
                async with asyncio.timeout(budget):
                    resp = await self.session.request(
                        method,
                        url,
                        headers=headers,
                        data=data,
                        timeout=aiohttp.ClientTimeout(
                            total=None if streaming else budget,
                            sock_connect=budget,
                            sock_read=self.timeout_s,
                        ),
                        allow_redirects=False,
                    )
            self._observe(f"{resp.status // 100}xx", started)
            location = resp.headers.get(hdrs.LOCATION)
            if resp.status not in REDIRECTS or method != "GET" or not location:
                return resp
            resp.release()
            if hop == MAX_REDIRECTS:
                break
            try:
                url = origin.resolve(url, Link(location, url))
                origin.check(url, allowed)
            except LinkRefusedError as err:
                raise UpstreamOriginError(
                    self.connection, method, label, f"redirect refused: {err}"
                ) from err
        raise UpstreamProtocolError(
            self.connection, method, label, "too many redirects"
        )

    @contextlib.contextmanager
    def _transport(self, method: str, path: str, budget: float) -> Iterator[None]:
        """Translate aiohttp's transport failures into our errors (and note them)."""
        started = time.monotonic()
        try:
            yield
        except TimeoutError as err:
            self._observe("timeout", started)
            self._failed("timeout")
            within = (
                f"within {self.timeout_s:g}s"
                if budget >= self.timeout_s
                else "before the request's deadline"
            )
            raise UpstreamTimeoutError(
                self.connection, method, path, f"no answer {within}"
            ) from err
        except aiohttp.ClientError as err:
            self._observe("error", started)
            self._failed(type(err).__name__)
            raise UpstreamUnavailableError(
                self.connection,
                method,
                path,
                f"connection failed ({type(err).__name__})",
            ) from err

    def _observe(self, outcome: str, started: float) -> None:
        if self.metrics is not None:
            self.metrics.upstream(self.connection, outcome, time.monotonic() - started)

    async def _read_capped(
        self, method: str, path: str, resp: aiohttp.ClientResponse
    ) -> bytes:
        if (resp.content_length or 0) > self.max_body_bytes:
            self._failed("body too large")
            raise UpstreamProtocolError(
                self.connection, method, path, "body over size cap"
            )
        chunks: list[bytes] = []
        size = 0
        async for chunk in resp.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self.max_body_bytes:
                self._failed("body too large")
                raise UpstreamProtocolError(
                    self.connection, method, path, "body over size cap"
                )
            chunks.append(chunk)
        return b"".join(chunks)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        target: Target,
        *,
        params: Mapping[str, str] | None = None,
        auth: Authenticator | None = None,
        label: str | None = None,
    ) -> AsyncIterator[UpstreamStream]:
        """Open a call whose body is read piece by piece (documents, large files).

        A link may point at the connection's origin or at one of its listed document
        origins; the latter is fetched without credentials (`auth` is not applied).
        Auth, the one re-login on 401 and status classification happen before the body
        is touched, all before the request's deadline; the body then has an inactivity
        timeout instead of a total one, so a large file may take as long as it keeps
        flowing.
        """
        url, label = self.url_for(
            method,
            target,
            params,
            label,
            allowed=frozenset({self.origin} | self.document_origins),
        )
        if Origin.of(url) != self.origin:
            auth = None  # another host never sees the connection's credentials
        ticket = self.breaker.admit(method, label) if self.breaker else None
        ok: bool | None = None
        try:
            async with self._opened_stream(method, url, label, auth) as body:
                ok = True
                yield body
        except UpstreamError as err:
            if ok is None:
                ok = verdict(err)
            raise
        finally:
            if self.breaker is not None and ticket is not None:
                self.breaker.settle(ticket, ok)

    @contextlib.asynccontextmanager
    async def _opened_stream(
        self, method: str, url: URL, label: str, auth: Authenticator | None
    ) -> AsyncIterator[UpstreamStream]:
        for login_attempt in range(2):
            headers: dict[str, str] = {}
            handle = await auth.apply(headers) if auth else None
            resp = await self._open(method, url, label, None, headers, streaming=True)
            try:
                if (
                    resp.status == HTTP_UNAUTHORIZED
                    and auth
                    and login_attempt == 0
                    and await auth.rejected(handle)
                ):
                    continue
                if resp.status >= 300:  # noqa: PLR2004 - anything but 2xx has a small body
                    with self._transport(method, label, self._budget()):
                        body = await self._read_capped(method, label, resp)
                    self._classify(
                        method,
                        label,
                        UpstreamResponse(resp.status, resp.headers, body, resp.url),
                        frozenset(),
                    )
                self._succeeded()
                yield UpstreamStream(
                    self.connection, self.max_body_bytes, method, label, resp
                )
                return
            finally:
                resp.release()

    def _classify(
        self, method: str, path: str, response: UpstreamResponse, passed: frozenset[int]
    ) -> UpstreamResponse:
        status = response.status
        self.limiter.observe(response.headers)
        if status < 300 or status in passed:  # noqa: PLR2004 - the 2xx family
            self._succeeded()
            return response
        args = (self.connection, method, path)
        if status >= HTTP_SERVER_ERROR:
            self._failed(f"HTTP {status}")
            raise UpstreamUnavailableError(*args, f"HTTP {status}", status=status)
        self._succeeded()  # a 4xx means the upstream is up and talking
        if status == HTTP_UNAUTHORIZED:
            raise UpstreamAuthError(
                *args, "credentials rejected (HTTP 401)", status=status
            )
        if status == HTTP_NOT_FOUND:
            raise UpstreamNotFoundError(*args, "not found (HTTP 404)", status=status)
        if status == HTTP_TOO_MANY:
            retry_after = parse_retry_after(response.headers.get(hdrs.RETRY_AFTER))
            self.limiter.pause(retry_after if retry_after is not None else 1.0)
            raise UpstreamRateLimitedError(
                *args, "rate limited (HTTP 429)", retry_after=retry_after
            )
        raise UpstreamRejectedError(*args, f"HTTP {status}", status=status)

    def _succeeded(self) -> None:
        self.health.last_ok_at = time.time()
        self.health.consecutive_failures = 0

    def _failed(self, reason: str) -> None:
        self.health.last_error_at = time.time()
        self.health.last_error = reason
        self.health.consecutive_failures += 1

    def decode_json(self, method: str, path: str, response: UpstreamResponse) -> Any:
        """Parse a JSON body, or raise a (retriable) malformed-body error naming it."""
        if "json" not in response.content_type:
            shown = response.content_type or "no content type"
            self._failed("not JSON")
            raise UpstreamMalformedError(
                self.connection, method, path, f"expected JSON, got {shown[:60]}"
            )
        try:
            return jsoncodec.loads(response.body)
        except ValueError as err:
            self._failed("malformed JSON")
            raise UpstreamMalformedError(
                self.connection, method, path, "malformed JSON body"
            ) from err

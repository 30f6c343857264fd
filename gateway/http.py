"""The upstream request funnel: every call an adapter makes goes through here.

One `UpstreamClient` per connection, all sharing the app's single `ClientSession`. It
injects auth (and on a 401 asks the authenticator to drop the token and tries exactly
once more), bounds each call by the connection's timeout and the body by a size cap,
retries idempotent calls on the retriable family inside a small bounded loop, and
classifies the response by status *before* anyone decodes it. aiohttp exceptions end
here: callers only ever see `UpstreamError` subclasses, whose messages carry no query
string or header.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp import hdrs
from multidict import CIMultiDictProxy

from gateway import jsoncodec
from gateway.breaker import CircuitBreaker
from gateway.deadline import time_left
from gateway.errors import (
    UpstreamAuthError,
    UpstreamError,
    UpstreamNotFoundError,
    UpstreamProtocolError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)
from gateway.health import UpstreamHealth
from gateway.httpstream import CHUNK, UpstreamStream
from gateway.metrics import Metrics
from gateway.ratelimit import LocalRateLimiter, RateLimiter
from gateway.retry import NO_RETRY, RetryPolicy, parse_retry_after

log = structlog.get_logger("upstream")
HTTP_UNAUTHORIZED = 401
HTTP_NOT_FOUND = 404
HTTP_TOO_MANY = 429
HTTP_SERVER_ERROR = 500


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """A fully read upstream response (bounded in size)."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

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


@dataclass(slots=True)
class UpstreamClient:
    """HTTP to one connection's base URL through the shared session."""

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

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: Authenticator | None = None,
        retry: RetryPolicy | None = None,
        pass_statuses: frozenset[int] = frozenset(),
    ) -> UpstreamResponse:
        """Send one logical call; statuses in `pass_statuses` are returned, not raised.

        The body is `json` (serialised by our codec) or `form` (url-encoded), or none.
        Reads (GET) retry by the connection's policy unless told otherwise; writes never.
        """
        if retry is None:
            retry = self.read_retry if method == "GET" else NO_RETRY
        body: dict[str, Any] = {}
        if json is not None:
            body["data"] = jsoncodec.dumps(json)
            body["headers"] = {hdrs.CONTENT_TYPE: "application/json"}
        elif form is not None:
            body["data"] = form
        for attempt in range(retry.attempts):
            try:
                return await self._authenticated(
                    method, path, params, body, headers or {}, auth, pass_statuses
                )
            except UpstreamError as err:
                if not err.retriable or attempt == retry.attempts - 1:
                    raise
                delay = retry.delay(attempt, getattr(err, "retry_after", None))
                left = time_left()
                if left is not None and delay >= left:
                    raise  # a retry could not finish before the request's deadline
                await asyncio.sleep(delay)
        raise AssertionError(
            "unreachable: the loop returns or raises"
        )  # pragma: no cover

    async def _authenticated(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: dict[str, Any],
        headers: dict[str, str],
        auth: Authenticator | None,
        pass_statuses: frozenset[int],
    ) -> UpstreamResponse:
        for login_attempt in range(2):  # the first try, then one after a fresh login
            call_headers = {**headers, **body.get("headers", {})}
            handle = await auth.apply(call_headers) if auth else None
            response = await self._send(
                method, path, params, body.get("data"), call_headers
            )
            if (
                response.status == HTTP_UNAUTHORIZED
                and auth
                and login_attempt == 0
                and await auth.rejected(handle)
            ):
                continue
            return self._classify(method, path, response, pass_statuses)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        data: Any,
        headers: dict[str, str],
    ) -> UpstreamResponse:
        if self.breaker is not None:
            self.breaker.before_call(method, path)
        await self.limiter.acquire()
        started = time.monotonic()
        self.health.calls += 1
        with self._transport(method, path):
            async with self.session.request(
                method,
                self.base_url + path,
                params=params,
                headers=headers,
                data=data,
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                allow_redirects=False,
            ) as resp:
                body = await self._read_capped(method, path, resp)
                response = UpstreamResponse(resp.status, resp.headers, body)
        self._observe(f"{response.status // 100}xx", started)
        log.debug(
            "upstream_call",
            connection=self.connection,
            method=method,
            path=path,
            status=response.status,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response

    @contextlib.contextmanager
    def _transport(self, method: str, path: str) -> Iterator[None]:
        """Translate aiohttp's transport failures into our errors (and note them)."""
        started = time.monotonic()
        try:
            yield
        except TimeoutError as err:
            self._observe("timeout", started)
            self._failed("timeout")
            raise UpstreamTimeoutError(
                self.connection, method, path, f"no answer within {self.timeout_s:g}s"
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
        path: str,
        *,
        params: dict[str, str] | None = None,
        auth: Authenticator | None = None,
    ) -> AsyncIterator[UpstreamStream]:
        """Open a call whose body is read piece by piece (documents, large files).

        Auth, the one re-login on 401 and status classification happen before the body
        is touched; the body then has an inactivity timeout instead of a total one, so a
        large file may take as long as it keeps flowing.
        """
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.timeout_s, sock_read=self.timeout_s
        )
        for login_attempt in range(2):
            headers: dict[str, str] = {}
            handle = await auth.apply(headers) if auth else None
            if self.breaker is not None:
                self.breaker.before_call(method, path)
            await self.limiter.acquire()
            self.health.calls += 1
            opened = time.monotonic()
            with self._transport(method, path):
                resp = await self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                )
            self._observe(f"{resp.status // 100}xx", opened)
            try:
                if (
                    resp.status == HTTP_UNAUTHORIZED
                    and auth
                    and login_attempt == 0
                    and await auth.rejected(handle)
                ):
                    continue
                if resp.status >= 300:  # noqa: PLR2004 - anything but 2xx has a small body
                    body = await self._read_capped(method, path, resp)
                    self._classify(
                        method,
                        path,
                        UpstreamResponse(resp.status, resp.headers, body),
                        frozenset(),
                    )
                self._succeeded()
                yield UpstreamStream(
                    self.connection, self.max_body_bytes, method, path, resp
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
        if self.breaker is not None:
            self.breaker.record_success()

    def _failed(self, reason: str) -> None:
        self.health.last_error_at = time.time()
        self.health.last_error = reason
        self.health.consecutive_failures += 1
        if self.breaker is not None:
            self.breaker.record_failure()

    def decode_json(self, method: str, path: str, response: UpstreamResponse) -> Any:
        """Parse a JSON body, or raise a protocol error naming what came instead."""
        if "json" not in response.content_type:
            shown = response.content_type or "no content type"
            self._failed("not JSON")
            raise UpstreamProtocolError(
                self.connection, method, path, f"expected JSON, got {shown}"
            )
        try:
            return jsoncodec.loads(response.body)
        except ValueError as err:
            self._failed("malformed JSON")
            raise UpstreamProtocolError(
                self.connection, method, path, "malformed JSON body"
            ) from err

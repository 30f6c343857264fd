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
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
import structlog
from aiohttp import hdrs
from multidict import CIMultiDictProxy

from gateway import jsoncodec
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

log = structlog.get_logger("upstream")
HTTP_UNAUTHORIZED = 401
HTTP_NOT_FOUND = 404
HTTP_TOO_MANY = 429
HTTP_SERVER_ERROR = 500
CHUNK = 64 * 1024


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

    async def rejected(self, handle: object) -> None:
        """The upstream answered 401 to the credentials behind `handle`."""
        ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Bounded retries for idempotent calls: jittered exponential backoff."""

    attempts: int = 2
    base_delay_s: float = 0.1
    max_delay_s: float = 2.0

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """How long to wait before attempt `attempt + 1` (0-based attempt just failed)."""
        if retry_after is not None:
            return min(retry_after, self.max_delay_s)
        backoff = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        return random.uniform(0, backoff)  # noqa: S311 - jitter, not cryptography


NO_RETRY = RetryPolicy(attempts=1)


@dataclass(slots=True)
class UpstreamHealth:
    """The last thing observed about a connection (no upstream call to learn it)."""

    last_ok_at: float | None = None
    last_error_at: float | None = None
    last_error: str | None = None
    consecutive_failures: int = 0
    calls: int = 0

    def as_status(self) -> str:
        """`unknown` before any call, then `up` or `down` by the last outcome."""
        if self.calls == 0:
            return "unknown"
        return "down" if self.consecutive_failures else "up"


@dataclass(slots=True)
class UpstreamClient:
    """HTTP to one connection's base URL through the shared session."""

    session: aiohttp.ClientSession
    connection: str
    base_url: str
    timeout_s: float
    max_body_bytes: int = 16 * 1024 * 1024
    health: UpstreamHealth = field(default_factory=UpstreamHealth)

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
        retry: RetryPolicy = NO_RETRY,
        pass_statuses: frozenset[int] = frozenset(),
    ) -> UpstreamResponse:
        """Send one logical call; statuses in `pass_statuses` are returned, not raised.

        The body is `json` (serialised by our codec) or `form` (url-encoded), or none.
        """
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
                hint = getattr(err, "retry_after", None)
                await asyncio.sleep(retry.delay(attempt, hint))
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
            if response.status == HTTP_UNAUTHORIZED and auth and login_attempt == 0:
                await auth.rejected(handle)
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
        started = time.monotonic()
        self.health.calls += 1
        try:
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
        except TimeoutError as err:
            self._failed("timeout")
            raise UpstreamTimeoutError(
                self.connection, method, path, f"no answer within {self.timeout_s:g}s"
            ) from err
        except aiohttp.ClientError as err:
            self._failed(type(err).__name__)
            raise UpstreamUnavailableError(
                self.connection,
                method,
                path,
                f"connection failed ({type(err).__name__})",
            ) from err
        log.debug(
            "upstream_call",
            connection=self.connection,
            method=method,
            path=path,
            status=response.status,
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        return response

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
            self.health.calls += 1
            try:
                resp = await self.session.request(
                    method,
                    self.base_url + path,
                    params=params,
                    headers=headers,
                    timeout=timeout,
                    allow_redirects=False,
                )
            except TimeoutError as err:
                self._failed("timeout")
                raise UpstreamTimeoutError(
                    self.connection, method, path, "no answer"
                ) from err
            except aiohttp.ClientError as err:
                self._failed(type(err).__name__)
                raise UpstreamUnavailableError(
                    self.connection,
                    method,
                    path,
                    f"connection failed ({type(err).__name__})",
                ) from err
            try:
                if resp.status == HTTP_UNAUTHORIZED and auth and login_attempt == 0:
                    await auth.rejected(handle)
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
                yield UpstreamStream(self, method, path, resp)
                return
            finally:
                resp.release()

    def _classify(
        self, method: str, path: str, response: UpstreamResponse, passed: frozenset[int]
    ) -> UpstreamResponse:
        status = response.status
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
            raise UpstreamRateLimitedError(
                *args,
                "rate limited (HTTP 429)",
                retry_after=parse_retry_after(response),
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


class UpstreamStream:
    """An upstream body being read in chunks; aiohttp errors are translated here too."""

    def __init__(
        self,
        client: UpstreamClient,
        method: str,
        path: str,
        resp: aiohttp.ClientResponse,
    ) -> None:
        """Wrap an open response."""
        self._client = client
        self._method = method
        self._path = path
        self._resp = resp
        self.headers = resp.headers
        self.content_length = resp.content_length

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self._resp.content_type.lower()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, never more than the size cap in total."""
        size = 0
        client = self._client
        args = (client.connection, self._method, self._path)
        try:
            async for chunk in self._resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > client.max_body_bytes:
                    raise UpstreamProtocolError(*args, "body over size cap")
                yield chunk
        except TimeoutError as err:
            raise UpstreamTimeoutError(*args, "body stalled") from err
        except aiohttp.ClientError as err:
            raise UpstreamUnavailableError(*args, "body cut off") from err


def parse_retry_after(response: UpstreamResponse) -> float | None:
    """`Retry-After` as seconds, from either delta-seconds or an HTTP date."""
    raw = response.headers.get(hdrs.RETRY_AFTER)
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(raw).timestamp() - time.time())
    except (TypeError, ValueError):
        return None

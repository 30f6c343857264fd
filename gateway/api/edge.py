"""Errors aiohttp answers before any route runs, as problem+json: 414, 431, 400.

A request line or a header over its limit, or bytes that are not HTTP, never reach the
app: aiohttp's protocol handler answers them itself through `RequestHandler.handle_error`,
by default with `text/plain` holding a Python repr of the offending bytes. This module
overrides that one method (and makes the server use it), so these answers are problems
too: 414 for an oversized request line, 431 for oversized or too many headers, 400 for
malformed HTTP, each stating the limit and never echoing what was sent. The request line
and header limits differ by design: the limit a `LineTooLong` names tells which was hit.
"""

from __future__ import annotations

from http import HTTPStatus

import structlog
from aiohttp import hdrs, web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from gateway.api import problems

MAX_REQUEST_LINE = 8192  # method + target + version, in bytes
MAX_HEADER_FIELD = 8190  # one header line, in bytes (differs from the above on purpose)
MAX_HEADERS = 100
EDGE_LIMITS = {
    "max_line_size": MAX_REQUEST_LINE,
    "max_field_size": MAX_HEADER_FIELD,
    "max_headers": MAX_HEADERS,
}
TOO_MANY_HEADERS = "Too many headers received"  # aiohttp's message for the case
# What every answer names as its server: not aiohttp's default, which tells any
# scanner the exact Python and aiohttp versions to look up vulnerabilities for.
SERVER_NAME = "invoice-gateway"

log = structlog.get_logger("edge")


def edge_problem(status: int, exc: BaseException | None) -> web.Response:
    """The problem for an error aiohttp met while reading a request (or running it)."""
    if isinstance(exc, LineTooLong):
        if exc.args[1:2] == (MAX_REQUEST_LINE,):
            return problems.problem(
                414,
                "uri-too-long",
                "URI Too Long",
                f"the request line is limited to {MAX_REQUEST_LINE} bytes",
            )
        return problems.problem(
            431,
            "request-header-fields-too-large",
            "Request Header Fields Too Large",
            f"each header line is limited to {MAX_HEADER_FIELD} bytes",
        )
    if isinstance(exc, BadHttpMessage) and exc.message == TOO_MANY_HEADERS:
        return problems.problem(
            431,
            "request-header-fields-too-large",
            "Request Header Fields Too Large",
            f"a request may carry at most {MAX_HEADERS} headers",
        )
    if status == HTTPStatus.BAD_REQUEST:
        kind = type(exc).__name__ if exc is not None else "BadHttpMessage"
        return problems.problem(
            400,
            "malformed-http",
            "Bad Request",
            f"the request is not valid HTTP ({kind})",
        )
    phrase = HTTPStatus(status).phrase
    return problems.problem(
        status,
        phrase.lower().replace(" ", "-"),
        phrase,
        f"the request failed ({phrase})",
    )


class ProblemRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own errors as problems."""

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Build the problem; log one line naming the error type, never the bytes."""
        del message  # aiohttp's message quotes the offending bytes
        log.warning(
            "edge_error", status=status, error_type=type(exc).__name__ if exc else None
        )
        if request.writer.output_size > 0:
            raise ConnectionError("response already started; cannot send a problem")
        response = edge_problem(status, exc)
        response.headers[hdrs.SERVER] = SERVER_NAME
        response.force_close()
        return response


class ProblemServer(web.Server):
    """A `web.Server` whose connections use `ProblemRequestHandler`."""

    def __call__(self) -> RequestHandler:
        """One handler per connection, with the server's settings."""
        return ProblemRequestHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` serving through `ProblemServer` and the fast lane, edge limits set."""

    def __init__(self, app: web.Application, **kwargs: object) -> None:
        """Same arguments as `web.AppRunner`; the edge limits unless overridden."""
        super().__init__(app, **{**EDGE_LIMITS, **kwargs})  # type: ignore[arg-type]

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = ProblemServer  # same object, same settings, our handler
        # (imported here: the lane belongs to the pipeline, which imports this module)
        from gateway.api.fastlane import FastLane  # noqa: PLC0415

        server.request_handler = FastLane(self.app, server.request_handler)
        return server

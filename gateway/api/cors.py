"""CORS for the configured browser origins: preflights without auth, exact origins only.

A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is answered
here, before authentication: browsers never send credentials on it. An allowed origin
is echoed exactly (never `*`, so credentials can be allowed safely) with `Vary: Origin`;
an unknown origin gets no CORS headers at all and the browser blocks the page.
"""

from __future__ import annotations

from aiohttp import hdrs, web

from gateway.config.settings import CorsSettings

ALLOWED_METHODS = "GET, POST, PUT, DELETE"
ALLOWED_HEADERS = (
    "Authorization, Content-Type, Idempotency-Key, If-None-Match, X-Request-ID, "
    "X-Deadline-Ms, Cache-Control"
)
EXPOSED_HEADERS = (
    "ETag, Location, Idempotent-Replayed, Retry-After, RateLimit, RateLimit-Policy, "
    "X-Request-ID"
)


def is_preflight(request: web.Request) -> bool:
    """A CORS preflight request."""
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in request.headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    )


def preflight(request: web.Request, cors: CorsSettings | None) -> web.Response:
    """204 granting an allowed origin; 204 with no grant for any other."""
    response = web.Response(status=204, headers={hdrs.VARY: "Origin"})
    origin = request.headers[hdrs.ORIGIN]
    if cors is not None and origin in cors.origins:
        response.headers.update(
            {
                hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: origin,
                hdrs.ACCESS_CONTROL_ALLOW_METHODS: ALLOWED_METHODS,
                hdrs.ACCESS_CONTROL_ALLOW_HEADERS: ALLOWED_HEADERS,
                hdrs.ACCESS_CONTROL_MAX_AGE: str(cors.max_age_s),
            }
        )
        if cors.allow_credentials:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
    return response


def stamp(
    request: web.Request, response: web.StreamResponse, cors: CorsSettings | None
) -> None:
    """Grant an allowed origin on an actual (non-preflight) response."""
    origin = request.headers.get(hdrs.ORIGIN)
    if cors is None or origin is None or is_preflight(request):
        return  # a preflight's answer carries its own headers
    response.headers.add(hdrs.VARY, "Origin")
    if origin not in cors.origins:
        return
    response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
    response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSED_HEADERS
    if cors.allow_credentials:
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"

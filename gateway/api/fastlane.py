"""A fast lane before routing, for what the pipeline answers at once (a cached page).

aiohttp routes every request (resolve, match info, the middleware chain) before the
request pipeline runs; for a cached page that machinery is a tenth of the answer's cost.
The server `GatewayRunner` builds (what `invoice-gateway serve` runs) first looks at a
GET for a plain path whose handler declared an at-once answer (`answers_at_once`), and
lets `middleware.answer_at_once` answer it when it can: the caller known at once, nothing
to check or charge, an answer at hand. It answers as the pipeline does, stamped, counted
and logged the same (`tests/test_fast_lane.py` compares the two). Every other request,
and any of these it cannot answer, goes the full way, untouched.

Safe by construction: the lane only ever answers what the pipeline would answer at once,
and an app served any other way (aiohttp's own runner) simply has no lane. An app with an
`on_response_prepare` signal gets none either: the signal must see every answer; nor one
with a middleware besides the pipeline, which must see every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from gateway.api.middleware import (
    AT_ONCE,
    AtOnce,
    answer_at_once,
    answer_refused,
    pipeline,
)

FullWay = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
GET_ROUTES = frozenset({hdrs.METH_GET, hdrs.METH_ANY})  # the routes a GET may take


def at_once_paths(app: web.Application) -> dict[str, AtOnce]:
    """The plain paths whose GET handler answers at once: path -> its at-once answer.

    Only where routing could pick nothing else: no sub-application or domain resource
    ahead of the path, and the first GET route registered for it. And only where the
    pipeline is the one middleware: the lane skips them all, and any other (a header
    on every answer, an address allow-list) must see every request.
    """
    lanes: dict[str, AtOnce] = {}
    seen: set[str] = set()
    if app.on_response_prepare or list(app.middlewares) != [pipeline]:
        return lanes
    for resource in app.router.resources():
        if not isinstance(resource, web.PlainResource):
            if isinstance(resource, web.PrefixedSubAppResource):  # or a domain
                return {}
            continue
        path = resource.canonical
        for route in resource:
            # (a `*` route first takes the path's GETs too: then there is no lane)
            if route.method not in GET_ROUTES or path in seen:
                continue
            seen.add(path)
            quick = AT_ONCE.get(route.handler)
            if quick is not None:
                lanes[path] = quick
    return lanes


class FastLane:
    """A server's request handler: the at-once lane, else the full way (`full`)."""

    __slots__ = ("_app", "_full", "_lanes", "answered")

    def __init__(self, app: web.Application, full: FullWay) -> None:
        """Serve `app` (frozen: its routes are final); `full`: routing and the rest."""
        self._app = app
        self._full = full
        self._lanes = at_once_paths(app)
        self.answered = 0  # requests the lane answered (for tests and benches)

    async def __call__(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer `request` in the lane when it can, else the full way."""
        if request.method == hdrs.METH_GET:
            path = request.rel_url.path_safe  # what routing matches on
            quick = self._lanes.get(path)
            if quick is not None:
                # (made by the app's request factory: a `web.Request`, not cast at run time)
                answer = answer_at_once(self._app, request, quick, path)  # type: ignore[arg-type]
                if answer is not None:
                    self.answered += 1
                    return answer
        try:
            return await self._full(request)
        except web.HTTPException as err:  # raised by routing, before the pipeline
            return answer_refused(self._app, request, err)  # type: ignore[arg-type]

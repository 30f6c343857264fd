"""`/metrics` on its own port (`GATEWAY_METRICS_PORT`), apart from the API.

So the API port can be published to clients while only the scraper reaches the metrics
port. It listens beside the main app, in the same process and event loop, for as long as
the app runs; with several workers each joins the port (SO_REUSEPORT) and a scrape sees
the one worker that answered, as on the main port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.api.handlers import metrics
from gateway.api.state import METRICS, SETTINGS

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def metrics_listener(host: str, port: int) -> CleanupContext:
    """A cleanup context serving the main app's `/metrics` on `host:port`."""

    async def listen(main: web.Application) -> AsyncIterator[None]:
        side = web.Application()
        side[METRICS] = main[METRICS]
        side[SETTINGS] = main[SETTINGS]
        side.router.add_get("/metrics", metrics)
        runner = web.AppRunner(side, access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, reuse_port=True).start()
            yield
        finally:
            await runner.cleanup()

    return listen

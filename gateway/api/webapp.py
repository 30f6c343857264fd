"""`/app`: the invoice page for people, static files shipped inside the package.

No CDN and no build step: three files read once at start-up and served with a strict
Content-Security-Policy (scripts, styles and API calls from this origin only; PDFs open
as `blob:` URLs), so injected markup could neither run nor phone home.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import hdrs, web

FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "app.css": "text/css",
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; frame-src blob:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    hdrs.CACHE_CONTROL: "no-cache",
}


def _read() -> dict[str, bytes]:
    folder = resources.files("gateway").joinpath("api", "static", "app")
    return {name: folder.joinpath(name).read_bytes() for name in FILES}


def setup_app_routes(app: web.Application) -> None:
    """Register `/app`, `/app/` and its files."""
    contents = _read()

    async def redirect(_request: web.Request) -> web.Response:
        return web.Response(status=301, headers={hdrs.LOCATION: "/app/"})

    async def serve(request: web.Request) -> web.Response:
        name = request.match_info.get("name") or "index.html"
        if name not in FILES:
            raise web.HTTPNotFound
        return web.Response(
            body=contents[name],
            content_type=FILES[name],
            charset="utf-8",
            headers=HEADERS,
        )

    app.router.add_get("/app", redirect)
    app.router.add_get("/app/", serve)
    app.router.add_get("/app/{name}", serve)

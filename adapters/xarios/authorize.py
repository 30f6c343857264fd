"""The one-time consent: OAuth2 authorization-code flow on a loopback redirect.

`invoice-gateway auth xarios --connection ID` prints the authorize URL, listens on the
connection's `redirect_uri` (loopback only, default http://127.0.0.1:8000/), checks the
`state` it sent, exchanges the code for tokens and saves them in the token store the
gateway reads. Only a human approving in a browser can start a Xarios connection.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable

from aiohttp import web
from yarl import URL

from adapters.xarios.adapter import DEFAULT_AUTH_URL
from adapters.xarios.client import (
    AUTHORIZE_PATH,
    SCOPE,
    XariosClient,
    XariosCredentials,
)
from gateway.errors import ConfigError, UpstreamAuthError
from gateway.state.tokens import TokenStore
from gateway.upstream.providers import ProviderContext

DEFAULT_REDIRECT = "http://127.0.0.1:8000/"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


async def run(
    ctx: ProviderContext,
    store: TokenStore,
    say: Callable[[str], None],
    timeout_s: float = 300.0,
) -> None:
    """Run the consent flow for `ctx`'s connection and store the resulting tokens."""
    options, secrets_ = ctx.settings.options, ctx.settings.secrets
    redirect = URL(str(options.get("redirect_uri", DEFAULT_REDIRECT)))
    if (
        redirect.scheme != "http"
        or redirect.host not in LOOPBACK
        or redirect.port is None
    ):
        raise ConfigError(
            ["options.redirect_uri: must be http://127.0.0.1:<port>/... (loopback)"]
        )
    if "client_id" not in secrets_ or "client_secret" not in secrets_:
        raise ConfigError(["secrets.client_id and secrets.client_secret are required"])
    state = secrets.token_urlsafe(24)
    arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        if request.query.get("state") != state:
            return web.Response(
                status=400, text="State mismatch: start the flow again."
            )
        if "code" not in request.query:
            error = request.query.get("error", "no code")
            if not arrived.done():
                refused = UpstreamAuthError(
                    ctx.settings.id, "GET", AUTHORIZE_PATH, error
                )
                arrived.set_exception(refused)
            return web.Response(status=400, text=f"Authorization failed: {error}")
        if not arrived.done():
            arrived.set_result(request.query["code"])
        return web.Response(text="Authorized. You can close this window.")

    app = web.Application()
    app.router.add_get(redirect.path, callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, redirect.host, redirect.port).start()
        auth_url = URL(str(options.get("auth_url", DEFAULT_AUTH_URL)))
        authorize = (auth_url / AUTHORIZE_PATH.lstrip("/")).with_query(
            response_type="code",
            client_id=secrets_["client_id"].reveal(),
            redirect_uri=str(redirect),
            scope=SCOPE,
            state=state,
        )
        say(f"Open this URL in a browser and approve access:\n  {authorize}")
        say(f"Waiting for the redirect on {redirect} ...")
        code = await asyncio.wait_for(arrived, timeout_s)
    finally:
        await runner.cleanup()
    credentials = XariosCredentials(
        secrets_["client_id"].reveal(), secrets_["client_secret"], initial_refresh=None
    )
    client = XariosClient(
        ctx.http, ctx.http_for(str(auth_url)), ctx.tokens, credentials
    )
    token = await client.exchange_code(code, str(redirect))
    await store.save(ctx.settings.id, token)
    say(
        f"Connection {ctx.settings.id!r} is authorized; its tokens are in the token store."
    )

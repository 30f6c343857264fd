"""The one-time consent of an OAuth2 authorization-code provider, on a loopback redirect.

An operator runs `invoice-gateway auth <provider> --connection ID`; this prints the
provider's authorize URL, listens on the connection's `redirect_uri` (loopback only),
checks the `state` it sent, exchanges the code for tokens (`OAuth2Grants`) and saves them
in the token store the gateway reads. Only a human approving in a browser can start
such a connection; a refusal or a timeout leaves the store untouched.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from gateway.errors import ConfigError, UpstreamAuthError
from gateway.state.tokens import Token, TokenStore
from gateway.upstream.kit.oauth2 import OAuth2Grants

DEFAULT_REDIRECT = "http://127.0.0.1:8000/"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """Where a human approves, for which client and scope, and where the code comes."""

    connection: str
    authorize_url: URL
    client_id: str
    scope: str
    redirect: URL


def loopback_redirect(options: Mapping[str, object]) -> URL:
    """`options.redirect_uri` (default http://127.0.0.1:8000/), refused unless loopback."""
    redirect = URL(str(options.get("redirect_uri", DEFAULT_REDIRECT)))
    if (
        redirect.scheme != "http"
        or redirect.host not in LOOPBACK
        or redirect.port is None
    ):
        raise ConfigError(
            ["options.redirect_uri: must be http://127.0.0.1:<port>/... (loopback)"]
        )
    return redirect


async def authorize(
    request: ConsentRequest,
    grants: OAuth2Grants,
    store: TokenStore,
    say: Callable[[str], None],
    timeout_s: float = 300.0,
) -> Token:
    """Run the consent, exchange the code, save the tokens; return them."""
    code = await _receive_code(request, say, timeout_s)
    token = await grants.authorization_code(code, str(request.redirect))
    await store.save(request.connection, token)
    say(
        f"Connection {request.connection!r} is authorized; "
        "its tokens are in the token store."
    )
    return token


async def _receive_code(
    request: ConsentRequest, say: Callable[[str], None], timeout_s: float
) -> str:
    """Print the authorize URL and wait for the redirect carrying our `state`."""
    state = secrets.token_urlsafe(24)
    arrived: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(incoming: web.Request) -> web.Response:
        if incoming.query.get("state") != state:
            return web.Response(
                status=400, text="State mismatch: start the flow again."
            )
        if "code" not in incoming.query:
            error = incoming.query.get("error", "no code")
            if not arrived.done():
                arrived.set_exception(
                    UpstreamAuthError(
                        request.connection, "GET", request.authorize_url.path, error
                    )
                )
            return web.Response(status=400, text=f"Authorization failed: {error}")
        if not arrived.done():
            arrived.set_result(incoming.query["code"])
        return web.Response(text="Authorized. You can close this window.")

    app = web.Application()
    app.router.add_get(request.redirect.path, callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, request.redirect.host, request.redirect.port).start()
        authorize_at = request.authorize_url.with_query(
            response_type="code",
            client_id=request.client_id,
            redirect_uri=str(request.redirect),
            scope=request.scope,
            state=state,
        )
        say(f"Open this URL in a browser and approve access:\n  {authorize_at}")
        say(f"Waiting for the redirect on {request.redirect} ...")
        return await asyncio.wait_for(arrived, timeout_s)
    finally:
        await runner.cleanup()

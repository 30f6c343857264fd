"""The one-time consent of a Xarios connection (`invoice-gateway auth xarios`).

Xarios starts only from a human's approval: the kit's loopback consent flow
(`gateway.upstream.kit.consent`) runs against the connection's identity host with Xarios'
authorize path and scope, and the tokens it yields go to the store the gateway reads.
"""

from __future__ import annotations

from collections.abc import Callable

from yarl import URL

from adapters.xarios.adapter import DEFAULT_AUTH_URL
from adapters.xarios.client import (
    AUTHORIZE_PATH,
    SCOPE,
    XariosClient,
    XariosCredentials,
)
from gateway.errors import ConfigError
from gateway.state.tokens import TokenStore
from gateway.upstream.kit.consent import ConsentRequest, authorize, loopback_redirect
from gateway.upstream.providers import Authorizer, ProviderContext


async def run(
    ctx: ProviderContext,
    store: TokenStore,
    say: Callable[[str], None],
    timeout_s: float = 300.0,
) -> None:
    """Run the consent flow for `ctx`'s connection and store the resulting tokens."""
    options, secrets = ctx.settings.options, ctx.settings.secrets
    redirect = loopback_redirect(options)
    if "client_id" not in secrets or "client_secret" not in secrets:
        raise ConfigError(["secrets.client_id and secrets.client_secret are required"])
    auth_url = URL(str(options.get("auth_url", DEFAULT_AUTH_URL)))
    credentials = XariosCredentials(
        secrets["client_id"].reveal(), secrets["client_secret"], initial_refresh=None
    )
    client = XariosClient(
        ctx.http, ctx.http_for(str(auth_url)), ctx.tokens, credentials
    )
    request = ConsentRequest(
        connection=ctx.settings.id,
        authorize_url=auth_url / AUTHORIZE_PATH.lstrip("/"),
        client_id=credentials.client_id,
        scope=SCOPE,
        redirect=redirect,
    )
    await authorize(request, client.grants, store, say, timeout_s)


_conforms: Authorizer = run  # mypy proves the consent flow has the core's type

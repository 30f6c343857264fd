"""The adapter kit's auth: OAuth2 grants, bearer and static credentials, on simulators.

Hubsoft's simulator speaks the password grant (JSON body), Xarios' the authorization-code
and rotating refresh-token grants (form body); both answer 401 to a dead bearer token.
"""

from __future__ import annotations

import aiohttp
import pytest
from yarl import URL

from adapters.fintera.simulator import ACCOUNTS, API_TOKEN
from adapters.hubsoft.simulator import CLIENT_ID, CLIENT_SECRET, PASSWORD, USERNAME
from adapters.xarios.simulator import CLIENT_ID as X_ID
from adapters.xarios.simulator import CLIENT_SECRET as X_SECRET
from gateway.config.settings import Secret
from gateway.errors import ConfigError, UpstreamAuthError
from gateway.state.tokens import LocalTokenProvider, Token
from gateway.upstream.http import UpstreamClient
from gateway.upstream.kit.bearer import BearerAuth
from gateway.upstream.kit.consent import loopback_redirect
from gateway.upstream.kit.oauth2 import OAuth2Grants, OAuthClient
from gateway.upstream.kit.static import StaticAuth

REDIRECT = "http://127.0.0.1:8765/cb"


@pytest.fixture
async def session():
    """One client session per test."""
    async with aiohttp.ClientSession() as http:
        yield http


def funnel(session, url: str) -> UpstreamClient:
    """The upstream funnel of connection `c` to a simulator."""
    return UpstreamClient(session, "c", url, 5.0)


def hubsoft_grants(session, url: str, secret: str = CLIENT_SECRET) -> OAuth2Grants:
    """Hubsoft's token endpoint: JSON body."""
    client = OAuthClient(CLIENT_ID, Secret(secret))
    return OAuth2Grants(
        funnel(session, url), "/oauth/token", client, encoding="json", advice="fix it"
    )


def xarios_grants(session, url: str) -> OAuth2Grants:
    """Xarios' identity server: form body."""
    client = OAuthClient(X_ID, Secret(X_SECRET))
    return OAuth2Grants(
        funnel(session, url), "/connect/token", client, advice="consent"
    )


async def test_password_grant_returns_a_token_with_its_lifetime(
    session, hubsoft_url, hubsoft_sim
):
    """The password grant logs in once and reads access token, lifetime and refresh."""
    token = await hubsoft_grants(session, hubsoft_url).password(
        USERNAME, Secret(PASSWORD)
    )
    assert hubsoft_sim.logins == 1
    assert token.access.reveal().startswith("eyJ")
    assert token.expires_at - token.issued_at == hubsoft_sim.token_lifetime_s
    assert token.refresh is not None


async def test_a_refused_grant_is_an_auth_error_with_advice_and_no_secret(
    session, hubsoft_url
):
    """Wrong credentials: an `UpstreamAuthError` saying what to do, never the secrets."""
    grants = hubsoft_grants(session, hubsoft_url, secret="wrong-secret-value")
    with pytest.raises(UpstreamAuthError) as caught:
        await grants.password(USERNAME, Secret(PASSWORD))
    message = str(caught.value)
    assert "password grant refused (HTTP 401): fix it" in message
    assert "wrong-secret-value" not in message
    assert PASSWORD not in message


async def test_authorization_code_grant(session, xarios_url):
    """A code from the consent redirect becomes tokens (the code is single-use)."""
    async with session.get(
        xarios_url + "/connect/authorize",
        params={
            "response_type": "code",
            "client_id": X_ID,
            "redirect_uri": REDIRECT,
            "scope": "openid offline_access",
            "state": "s",
        },
        allow_redirects=False,
    ) as answer:
        code = URL(answer.headers["Location"]).query["code"]
    grants = xarios_grants(session, xarios_url)
    token = await grants.authorization_code(code, REDIRECT)
    assert token.refresh is not None
    with pytest.raises(UpstreamAuthError, match="authorization code grant refused"):
        await grants.authorization_code(code, REDIRECT)


async def test_refresh_keeps_the_rotated_token_and_never_presents_one_twice(
    session, xarios_url, xarios_sim
):
    """Each refresh carries the newest refresh token; the consent survives throughout."""
    grants = xarios_grants(session, xarios_url)
    first = Secret(xarios_sim.issue_refresh_token())
    token = await grants.refresh(first)
    assert token.refresh is not None
    assert token.refresh != first  # rotated
    for _ in range(3):
        token = await grants.refresh_newest(token, configured=first)
    assert xarios_sim.token_calls == 4
    assert xarios_sim.reuses == 0  # the configured (older) one was never tried again
    assert xarios_sim.consent_alive(token.refresh.reveal())


async def test_refresh_newest_tries_an_operators_new_consent_once(
    session, xarios_url, xarios_sim
):
    """A refused stored token falls back to a different configured one, once."""
    grants = xarios_grants(session, xarios_url)
    configured = Secret(xarios_sim.issue_refresh_token())
    dead = Token(Secret("a"), 0.0, 1.0, Secret("rt_unknown"))
    token = await grants.refresh_newest(dead, configured)
    assert token.refresh is not None
    assert xarios_sim.token_calls == 2


async def test_without_any_refresh_token_a_human_must_consent(session, xarios_url):
    """No stored and no configured refresh token: an auth error with the advice."""
    with pytest.raises(UpstreamAuthError, match="no refresh token: consent"):
        await xarios_grants(session, xarios_url).refresh_newest(None, None)


async def test_bearer_auth_refreshes_once_and_retries_once_on_401(
    session, hubsoft_url, hubsoft_sim
):
    """A revoked token: one new login and one retry, then the call succeeds."""
    grants = hubsoft_grants(session, hubsoft_url)
    tokens = LocalTokenProvider()

    async def login(_previous):
        return await grants.password(USERNAME, Secret(PASSWORD))

    auth = BearerAuth(tokens, "c", login)
    http = funnel(session, hubsoft_url)
    path = "/api/v1/integracao/cliente/financeiro"
    params = {"busca": "codigo_cliente", "termo_busca": "1"}
    assert (await http.request("GET", path, params=params, auth=auth)).status == 200
    hubsoft_sim.revoke_tokens()
    assert (await http.request("GET", path, params=params, auth=auth)).status == 200
    assert hubsoft_sim.logins == 2
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 3


async def test_bearer_auth_does_not_loop_on_a_token_that_is_always_refused(
    session, hubsoft_url, hubsoft_sim
):
    """A token refused again after the fresh login: one retry only, then the 401 stands."""
    grants = hubsoft_grants(session, hubsoft_url)

    async def login(_previous):
        token = await grants.password(USERNAME, Secret(PASSWORD))
        hubsoft_sim.revoke_tokens()  # dead on arrival, every time
        return token

    auth = BearerAuth(LocalTokenProvider(), "c", login)
    with pytest.raises(UpstreamAuthError):
        await funnel(session, hubsoft_url).request(
            "GET", "/api/v1/integracao/cliente/financeiro", auth=auth
        )
    assert hubsoft_sim.logins == 2
    assert len(hubsoft_sim.calls("/cliente/financeiro")) == 2


def test_the_consent_redirect_must_be_loopback():
    """A redirect off this machine would hand the code to someone else: refused."""
    assert loopback_redirect({}).host == "127.0.0.1"
    assert loopback_redirect({"redirect_uri": REDIRECT}).port == 8765
    for bad in (
        "https://127.0.0.1:8000/",
        "http://example.com:8000/",
        "http://127.0.0.1.nip.io:8000/",
    ):
        with pytest.raises(ConfigError, match="redirect_uri"):
            loopback_redirect({"redirect_uri": bad})


async def test_static_auth_sends_its_headers_and_never_retries_a_401(
    session, fintera_url, fintera_sim
):
    """Fixed credentials reach the upstream as set; a refused one is final, asked once."""
    account = str(ACCOUNTS[0]["account"]["id"])
    good = StaticAuth.basic(Secret(API_TOKEN), "X", ACCOUNT_ID=account)
    http = funnel(session, fintera_url)
    assert (await http.request("GET", "/entities.json", auth=good)).status == 200
    bad = StaticAuth.basic(Secret("not-the-token"), "X", ACCOUNT_ID=account)
    with pytest.raises(UpstreamAuthError) as caught:
        await http.request("GET", "/entities.json", auth=bad)
    assert "not-the-token" not in str(caught.value)
    assert len(fintera_sim.calls("/entities")) == 2

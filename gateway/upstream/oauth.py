"""OAuth 2.0 token responses (RFC 6749 section 5.1), read the same way for every provider.

A grant's answer must carry `access_token` and a positive `expires_in`; a `refresh_token`,
when present, replaces the one used (rotation), else the old one is kept.
"""

from __future__ import annotations

from gateway.config.settings import Secret
from gateway.errors import UpstreamProtocolError
from gateway.state.tokens import Token
from gateway.upstream.http import UpstreamClient, UpstreamResponse


def token_from_response(
    http: UpstreamClient,
    path: str,
    response: UpstreamResponse,
    *,
    issued: float,
    keep_refresh: Secret | None = None,
) -> Token:
    """The token in a successful grant response, or a protocol error naming what is off."""
    payload = http.decode_json("POST", path, response)
    access = payload.get("access_token") if isinstance(payload, dict) else None
    lifetime = payload.get("expires_in") if isinstance(payload, dict) else None
    if (
        not isinstance(access, str)
        or isinstance(lifetime, bool)
        or not isinstance(lifetime, int | float)
        or lifetime <= 0
    ):
        raise UpstreamProtocolError(
            http.connection,
            "POST",
            path,
            "token response lacks access_token/expires_in",
        )
    rotated = payload.get("refresh_token")
    refresh = Secret(rotated) if isinstance(rotated, str) and rotated else keep_refresh
    return Token(Secret(access), issued, issued + float(lifetime), refresh)

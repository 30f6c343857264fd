"""Fixed credentials for the upstream funnel: an API key or HTTP Basic, nothing to renew.

`StaticAuth` is the `Authenticator` of an upstream whose credentials never change at run
time: it sets the same headers on every call, and a 401 is final (there is nothing to
refresh, so the funnel does not retry and no login storm can follow). Header values are
kept as `Secret`s and revealed only into the outgoing request.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from aiohttp import hdrs

from gateway.config.settings import Secret


class StaticAuth:
    """The same credential headers on every call; a refused credential stays refused."""

    def __init__(self, headers: Mapping[str, Secret | str]) -> None:
        """`headers` to set on each call (secret ones as `Secret`)."""
        self._headers = dict(headers)

    @classmethod
    def basic(
        cls, user: Secret, password: Secret | str = "", **extra: str
    ) -> StaticAuth:
        """HTTP Basic (`user:password`), plus any fixed headers (`extra`)."""
        secret = password.reveal() if isinstance(password, Secret) else password
        pair = base64.b64encode(f"{user.reveal()}:{secret}".encode()).decode()
        return cls({hdrs.AUTHORIZATION: Secret(f"Basic {pair}"), **extra})

    async def apply(self, headers: dict[str, str]) -> object:
        """Set the credential headers; there is no handle to give back."""
        for name, value in self._headers.items():
            headers[name] = value.reveal() if isinstance(value, Secret) else value
        return None

    async def rejected(self, _handle: object) -> bool:
        """Nothing to renew: the 401 stands."""
        return False

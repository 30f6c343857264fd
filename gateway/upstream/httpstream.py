"""A streamed upstream body: read chunk by chunk, capped, aiohttp errors translated."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from gateway.errors import (
    UpstreamProtocolError,
    UpstreamTimeoutError,
    UpstreamUnavailableError,
)

CHUNK = 64 * 1024


class UpstreamStream:
    """An upstream body being read in chunks; aiohttp errors are translated here too."""

    def __init__(
        self,
        connection: str,
        max_body_bytes: int,
        method: str,
        path: str,
        resp: aiohttp.ClientResponse,
    ) -> None:
        """Wrap an open response."""
        self._connection = connection
        self._max = max_body_bytes
        self._method = method
        self._path = path
        self._resp = resp
        self.headers = resp.headers
        self.content_length = resp.content_length

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case."""
        return self._resp.content_type.lower()

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, chunk by chunk, never more than the size cap in total."""
        size = 0
        args = (self._connection, self._method, self._path)
        try:
            async for chunk in self._resp.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > self._max:
                    raise UpstreamProtocolError(*args, "body over size cap")
                yield chunk
        except TimeoutError as err:
            raise UpstreamTimeoutError(*args, "body stalled") from err
        except aiohttp.ClientError as err:
            raise UpstreamUnavailableError(*args, "body cut off") from err

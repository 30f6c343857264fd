"""File-backed `TokenStore`: one JSON file per connection, written atomically.

Used by the in-process token provider so that a rotated refresh token survives a restart,
and by `invoice-gateway auth` to hand a freshly consented token to the gateway. The files
hold credentials: the directory is created 0700 and each file 0600; each write goes to a
temporary file that is fsynced and renamed over the old one, so a crash leaves either the
old token or the new one, never half of either.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import tempfile
from pathlib import Path

from gateway import jsoncodec
from gateway.state.tokens import Token

SAFE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class FileTokenStore:
    """Tokens under `directory/<connection>.token.json`."""

    def __init__(self, directory: Path) -> None:
        """Remember where; the directory is created on first save."""
        self.directory = directory

    def path(self, connection: str) -> Path:
        """Where a connection's token lives."""
        if not SAFE_NAME_RE.match(connection):
            raise ValueError(f"unsafe connection id {connection!r}")
        return self.directory / f"{connection}.token.json"

    async def load(self, connection: str) -> Token | None:
        """The saved token, or None when there is none or it cannot be read."""
        return await asyncio.to_thread(self._load, connection)

    async def save(self, connection: str, token: Token) -> None:
        """Write durably (fsync file and directory) before returning."""
        await asyncio.to_thread(self._save, connection, token)

    def _load(self, connection: str) -> Token | None:
        try:
            raw = jsoncodec.loads(self.path(connection).read_bytes())
            return Token.from_dict(raw)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, connection: str, token: Token) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = self.path(connection)
        fd, tmp = tempfile.mkstemp(
            dir=self.directory, prefix=f".{connection}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(jsoncodec.dumps(token.to_dict()))
                handle.flush()
                os.fsync(handle.fileno())
            Path(tmp).replace(target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                Path(tmp).unlink()
            raise
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

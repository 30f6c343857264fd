"""The caller as the core sees it: who, which scopes, which connections."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `connections` None means every connection.
    """

    name: str
    scopes: frozenset[str]
    connections: frozenset[str] | None = None

    def may_use(self, connection: str) -> bool:
        """Whether this caller may read from `connection`."""
        return self.connections is None or connection in self.connections

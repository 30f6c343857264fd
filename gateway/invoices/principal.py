"""The caller as the core sees it: who, which scopes, which connections, which customers."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.settings import CallerLimit
from gateway.invoices.models import Invoice


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller.

    `connections` None means every connection. `documents` None means any customer (an
    internal service's API key); otherwise the caller is an end user bound to these
    customers' documents (CPF/CNPJ digits) and sees nothing else. `kind` is `api_key`
    or `user`; `limit` is its own request budget (None: unlimited).
    """

    name: str
    scopes: frozenset[str]
    connections: frozenset[str] | None = None
    documents: frozenset[str] | None = None
    kind: str = "api_key"
    limit: CallerLimit | None = None

    def may_use(self, connection: str) -> bool:
        """Whether this caller may read from `connection`."""
        return self.connections is None or connection in self.connections

    @property
    def customer_bound(self) -> bool:
        """Whether this caller may only see its own customers' invoices."""
        return self.documents is not None

    def owns(self, document: str | None) -> bool:
        """Whether an invoice billed to `document` is this caller's to see.

        An unknown document (None) is never a bound caller's: ownership must be proven.
        """
        return self.documents is None or (
            document is not None and document in self.documents
        )

    def may_see(self, invoice: Invoice) -> bool:
        """Whether this caller may see `invoice` (events, feeds), decided in one place.

        Its connection must be the caller's; a caller bound to customers must own the
        invoice's customer document.
        """
        return self.may_use(invoice.connection) and self.owns(invoice.customer.document)

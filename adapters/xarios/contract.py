"""What the shared adapter contract suite needs to know to drive the Xarios simulator.

Xarios lists the whole account in one answer and never states a payment status; the
customer asked for is the first seeded tenant.
"""

from __future__ import annotations

from datetime import date

from adapters.simkit import ProviderContract
from adapters.xarios.simulator import XariosSimulator, demo_upstream


def contract(today: date) -> ProviderContract:
    """The contract description over a fresh simulator whose calendar says `today`."""
    sim = XariosSimulator(today=today)
    tenant = sim.tenant_id(0)
    owned = sorted(b.id for b in sim.bills if b.tenant == tenant)
    return ProviderContract(
        upstream=demo_upstream(today, sim),
        requests=sim.board.requests,
        query={"customer_id": tenant},
        expected=frozenset(owned),
        item=owned[0],
        list_path=r"/billingdata$",
        bad_value={"invoiceValue": "twelve"},
        # The billing API has no filter: a row relabelled to another tenant must vanish.
        foreign_rows=("rewrite_row", {"tenantId": sim.tenant_id(1)}),
        token_path="/connect/token",  # noqa: S106 - a URL path
    )

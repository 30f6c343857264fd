"""What the shared adapter contract suite needs to know to drive the Hubsoft simulator.

The customer asked for is the one with 70+ invoices (the 50-row cap must be paged
around), sending the tenant's own status words so an unknown one can be tried.
"""

from __future__ import annotations

from datetime import date

from adapters.hubsoft.simdata import HEAVY_CODE
from adapters.hubsoft.simulator import HubsoftSimulator, demo_upstream
from adapters.simkit import ProviderContract


def contract(today: date) -> ProviderContract:
    """The contract description over a fresh simulator whose calendar says `today`."""
    sim = HubsoftSimulator(today=today, token_lifetime_s=3600)
    heavy = next(c for c in sim.people if c.code == HEAVY_CODE)
    heavy.status_fields = True
    owned = [inv for inv in sim.invoices if inv.customer is heavy]
    slip = next(inv for inv in owned if inv.digitable_line)
    return ProviderContract(
        upstream=demo_upstream(today, sim),
        requests=sim.board.requests,
        query={"customer_id": HEAVY_CODE},
        expected=frozenset(f"{HEAVY_CODE}-{inv.id}" for inv in owned),
        item=f"{HEAVY_CODE}-{slip.id}",
        list_path=r"/cliente/financeiro$",
        bad_value={"valor": "dez reais"},
        foreign_rows=("ignore_filter", True),
        unknown_status={"status": "em_analise"},
        token_path="/oauth/token",  # noqa: S106 - a URL path
        min_list_calls=2,
    )

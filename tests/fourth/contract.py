"""What the shared adapter contract suite needs to know to drive the fourth simulator."""

from __future__ import annotations

from datetime import date

from adapters.simkit import ProviderContract
from tests.fourth.simulator import FourthSimulator, demo_upstream


def contract(today: date) -> ProviderContract:
    """The contract description over a fresh simulator whose calendar says `today`."""
    sim = FourthSimulator(today)
    maria = "12345678909"  # the demo customer every simulator bills
    owned = sorted(str(r["id"]) for r in sim.rows if r["document"] == maria)
    return ProviderContract(
        upstream=demo_upstream(today, sim),
        requests=sim.board.requests,
        query={"customer_document": maria},
        expected=frozenset(owned),
        item=owned[0],
        list_path=r"^/api/v2/invoices$",
        bad_value={"total": "lots"},
        foreign_rows=("rewrite_row", {"document": "98765432100"}),
        unknown_status={"state": "disputed"},
        token_path="/oauth/token",
        min_list_calls=3,
        has_documents=False,
    )

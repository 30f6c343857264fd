"""What the shared adapter contract suite needs to know to drive the Fintera simulator.

Pages are made small (4 rows) so the seeded customer's receivables span several `Link`
pages in each entity; the rate limit is raised so a test's calls are not paced for a minute.
"""

from __future__ import annotations

from datetime import date

from adapters.fintera.simulator import FinteraSimulator, demo_upstream
from adapters.simkit import ProviderContract


def contract(today: date) -> ProviderContract:
    """The contract description over a fresh simulator whose calendar says `today`."""
    sim = FinteraSimulator(today=today, max_per_page=4, rate_limit=6000)
    person = min(sim.people)  # the first seeded person, billed by every simulator
    document = sim.people[person]["federation_subscription_number_only_numbers"]
    owned = sorted(
        f"{r['entity_id']}-{r['id']}"
        for r in sim.receivables
        if r["person_id"] == person
    )
    return ProviderContract(
        upstream=demo_upstream(today, sim),
        requests=sim.board.requests,
        query={"customer_document": document},
        expected=frozenset(owned),
        item=owned[0],
        list_path=r"/receivable_accounts(\.json|\.xml)?$",
        bad_value={"amount": "muito"},
        foreign_rows=("ignore_filter", True),
        unknown_status={"status": 7, "status_name": "congelada"},
        min_list_calls=3,
        has_documents=False,
    )

"""Review of issue-15: a page must not outlive its entry when another request reloads it.

Two list URLs that differ only in `limit` (or the summary of the same filters) share one
cache entry per source. When one of them reloads that entry (`Cache-Control: no-cache`),
the other's kept page is built from a version the cache no longer holds: it must not be
served again. On the memory backend this rests on the loader's write count alone.
"""

from __future__ import annotations

from tests.support import API_KEY

AUTH = {"Authorization": f"Bearer {API_KEY}"}


def _unpaid(sim):
    return next(
        inv for inv in sim.invoices if inv.paid_on is None and inv.customer.document
    )


def _status(body: dict, remote_id: int) -> str | None:
    return next(
        (inv["status"] for inv in body["data"] if inv["id"].endswith(f"-{remote_id}")),
        None,
    )


async def test_a_page_is_dropped_when_a_sibling_url_reloads_its_entry(
    gateway, hubsoft_sim
):
    """limit=50 page kept; limit=49 reloads the shared entry; limit=50 shows the change."""
    unpaid = _unpaid(hubsoft_sim)
    doc = unpaid.customer.document
    page_url = f"/v1/invoices?customer_document={doc}&limit=50"
    sibling = f"/v1/invoices?customer_document={doc}&limit=49&sort=-due_date"
    first = await (await gateway.get(page_url, headers=AUTH)).json()
    hit = await (await gateway.get(page_url, headers=AUTH)).json()
    assert hit["sources"][0]["from_cache"] is True
    assert _status(first, unpaid.id) not in {None, "paid"}
    hubsoft_sim.mark_paid(unpaid.id)
    forced = await gateway.get(sibling, headers={**AUTH, "Cache-Control": "no-cache"})
    reloaded = await forced.json()
    assert forced.status == 200, reloaded
    assert reloaded["sources"][0]["from_cache"] is False
    after = await (await gateway.get(page_url, headers=AUTH)).json()
    assert after["sources"][0]["fetched_at"] == reloaded["sources"][0]["fetched_at"]
    assert _status(after, unpaid.id) == "paid"

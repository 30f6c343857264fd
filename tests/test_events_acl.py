"""Change events under the deployment's Redis ACL user (keys `ig:v1:*`, no dangerous commands)."""

from __future__ import annotations

from gateway.config.settings import Secret
from gateway.events.state import DETECTOR, EVENT_STORE
from tests.support import API_KEY
from tests.test_events_feed import build, pages, two_tenants, unpaid
from tests.test_redis_acl import acl_redis, gateway_url

__all__ = ["acl_redis", "build", "two_tenants"]  # fixtures used by name


async def test_events_work_with_only_the_gateway_acl_user(
    acl_redis, build, two_tenants
):
    """Lease, fenced commit, log and feed all run within the restricted user's rights."""
    client, app = await build(redis_url=Secret(gateway_url(acl_redis)))
    (acme, _), _ = two_tenants
    for inv in unpaid(acme, 2):
        acme.mark_paid(inv)
    await app[DETECTOR].sync_now()
    assert len(await app[EVENT_STORE].read("0-0", 10)) == 2
    assert [e["type"] for e in await pages(client, API_KEY, 1)] == ["invoice.paid"] * 2

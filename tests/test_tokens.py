"""Token provider: reuse, early refresh, single-flight, targeted invalidation."""

from __future__ import annotations

import asyncio

from gateway.config.settings import Secret
from gateway.state.tokens import LocalTokenProvider, Token
from tests.support import FakeClock


def issuer(clock, lifetime=100.0):
    """A token fetcher that records what it was given."""
    issued = []

    async def fetch(previous):
        await asyncio.sleep(0.01)
        issued.append(previous)
        return Token(
            Secret(f"t{len(issued)}"), clock(), clock() + lifetime, Secret("r")
        )

    return fetch, issued


async def test_concurrent_callers_share_one_fetch():
    """Many callers at once, one fetch."""
    clock = FakeClock(0.0)
    tokens = LocalTokenProvider(clock)
    fetch, issued = issuer(clock)
    got = await asyncio.gather(*(tokens.get("c", fetch) for _ in range(100)))
    assert len(issued) == 1
    assert {t.access.reveal() for t in got} == {"t1"}


async def test_refreshed_shortly_before_expiry():
    """A token is replaced within its last quarter-lifetime (max 60 s), not after."""
    clock = FakeClock(0.0)
    tokens = LocalTokenProvider(clock)
    fetch, issued = issuer(clock, lifetime=400)
    await tokens.get("c", fetch)
    clock.now = 339
    await tokens.get("c", fetch)
    assert len(issued) == 1
    clock.now = 341
    token = await tokens.get("c", fetch)
    assert token.access.reveal() == "t2"
    assert issued[1].access.reveal() == "t1"  # the fetcher sees the previous token


async def test_invalidate_only_drops_the_rejected_token():
    """A 401 on an old token does not throw away a newer one."""
    clock = FakeClock(0.0)
    tokens = LocalTokenProvider(clock)
    fetch, issued = issuer(clock)
    old = await tokens.get("c", fetch)
    await tokens.invalidate("c", old)
    new = await tokens.get("c", fetch)
    await tokens.invalidate("c", old)  # a late 401 from a request that used the old one
    assert await tokens.get("c", fetch) is new
    assert len(issued) == 2
    assert tokens.state("c").refreshes == 2


async def test_state_never_reveals_the_token():
    """Public state is presence, remaining time and count only."""
    clock = FakeClock(0.0)
    tokens = LocalTokenProvider(clock)
    assert tokens.state("c").present is False
    fetch, _ = issuer(clock)
    await tokens.get("c", fetch)
    state = tokens.state("c")
    assert (state.present, state.expires_in_s) == (True, 100.0)
    assert "t1" not in repr(state)

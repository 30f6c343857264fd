"""The shared Redis pieces: the one unlock script, and scripts that know their keys."""

from __future__ import annotations

import pytest

from gateway.state.redis_client import UNLOCK, LuaScript, close_redis, connect_redis


async def test_unlock_deletes_only_a_key_that_still_holds_the_token(redis_server):
    """Compare-and-delete: a lock retaken by someone else is left alone."""
    client = connect_redis(redis_server.url, cluster=False)
    try:
        await client.set("lock", "mine")
        assert await UNLOCK.run(client, ["lock"], "theirs") == 0
        assert await client.get("lock") == b"mine"
        assert await UNLOCK.run(client, ["lock"], "mine") == 1
        assert await client.get("lock") is None
    finally:
        await close_redis(client)


async def test_a_script_refuses_the_wrong_number_of_keys_before_sending(redis_server):
    """A key count off by one is a bug in the caller: nothing reaches Redis."""
    client = connect_redis(redis_server.url, cluster=False)
    counter = LuaScript("return redis.call('incr', KEYS[1])", keys=1)
    try:
        with pytest.raises(ValueError, match="takes 1 key"):
            await counter.run(client, ["a", "b"])
        assert await client.get("a") is None
        assert await counter.run(client, ["a"]) == 1
    finally:
        await close_redis(client)


async def test_a_script_over_a_varying_set_of_keys_takes_them_all(redis_server):
    """`keys=None`: as many keys as the call brings, all passed as KEYS."""
    client = connect_redis(redis_server.url, cluster=False)
    count = LuaScript("return #KEYS", keys=None)
    try:
        assert await count.run(client, ["a", "b", "c"], "x") == 3
    finally:
        await close_redis(client)

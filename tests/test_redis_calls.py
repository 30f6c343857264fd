"""Redis calls are bounded by the request's deadline and always honour cancellation."""

from __future__ import annotations

import asyncio
import gc
import warnings

import pytest
import redis.asyncio as aioredis

from gateway.state.redis_calls import RedisDeadlineError, bounded, guarded
from gateway.upstream.deadline import deadline_in


async def stubborn(seconds: float) -> str:
    """A command that swallows cancellation, as RedisCluster's clean-up code can."""
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        await asyncio.sleep(0.5)
        return "late"
    return "done"


async def test_a_cancelled_caller_stops_waiting_even_if_the_command_swallows_it():
    """The caller's cancellation wins over a command that refuses to be cancelled."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await bounded(stubborn(5))


async def test_no_call_outlives_the_request_deadline():
    """Inside a 0.2 s deadline a 5 s command ends as a RedisDeadlineError."""
    with deadline_in(0.2), pytest.raises(RedisDeadlineError):
        await bounded(stubborn(5))


async def test_a_passed_deadline_sends_nothing():
    """With no time left the command is not even started."""
    started = []

    async def command() -> None:
        started.append(True)

    with deadline_in(-1), pytest.raises(RedisDeadlineError):
        await bounded(command())
    assert started == []


async def test_a_guarded_command_past_the_deadline_leaves_no_coroutine_behind(
    redis_server,
):
    """The client's command, never sent, is closed with its wrapper: no late warning.

    Left unawaited, Python warns when it is collected, which may be in another test.
    """
    client = guarded(aioredis.Redis.from_url(redis_server.url))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with deadline_in(-1), pytest.raises(RedisDeadlineError):
                await client.get("ig:v1:k")
            gc.collect()
    finally:
        await client.aclose()
    assert [str(w.message) for w in caught] == []


async def test_a_cancel_arriving_with_the_answer_still_cancels():
    """Cancelled as its command answers, the caller is cancelled all the same.

    Python 3.11's `asyncio.wait_for` returned the answer instead when both landed in
    one loop iteration: a cache load's lease renewer, cancelled that way, kept renewing
    and the load (and its request, until a 504) waited for it forever.
    """
    for delay in range(8):  # every ordering of "answer" and "cancel" across iterations
        answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        caller = asyncio.create_task(bounded(answer))
        for _ in range(2):
            await asyncio.sleep(0)  # the caller is waiting for the command
        answer.set_result("renewed")
        for _ in range(delay):
            await asyncio.sleep(0)
        if not caller.cancel():  # it had already returned: nothing to swallow
            assert caller.result() == "renewed"
            continue
        with pytest.raises(asyncio.CancelledError):
            await caller


async def test_a_command_in_time_returns_its_value():
    """Within the bound the command's own answer comes back."""
    with deadline_in(5):
        assert await bounded(stubborn(0.01)) == "done"


async def test_a_pipeline_is_handed_over_unwrapped_and_its_execute_bounded(
    redis_server,
):
    """`pipeline()` builds an object (used as a context manager), not a command."""
    client = guarded(aioredis.Redis.from_url(redis_server.url))
    async with client.pipeline(transaction=True) as pipe:
        pipe.set("k", "v")
        pipe.get("k")
        assert await bounded(pipe.execute()) == [True, b"v"]
    await client.aclose()

"""How long ago this Redis's data began: the settle window after Redis comes back empty.

Replicas keep copies of what must never be lost (the newest rotated refresh token, a
create's recorded outcome) and write them back when they find Redis behind. After Redis
restarts empty, those write-backs need a moment to land before anyone acts on the empty
store as if nothing had happened (refreshes with an old refresh token, creates again).
The first replica to touch a fresh Redis stamps `ig:v1:epoch` with the server's clock;
`settle_left` is how much of the settle window remains, measured on that same clock, so
every replica agrees. On a brand new deployment this costs the first refresh and the first
keyed write the window once.
"""

from __future__ import annotations

from gateway.state.redis_client import LuaScript, RedisClient

EPOCH_KEY = "ig:v1:epoch"
SETTLE_S = 2.0
AGE = LuaScript(
    """
local t = redis.call('time')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local born = redis.call('get', KEYS[1])
if not born then
  redis.call('set', KEYS[1], now)
  return 0
end
return now - tonumber(born)
""",
    keys=1,
)


async def settle_left(client: RedisClient, settle_s: float = SETTLE_S) -> float:
    """Seconds of the settle window still to run (0 once the data is old enough).

    Raises the client's errors: the caller decides what Redis being away means.
    """
    age_ms = await AGE.run(client, [EPOCH_KEY])
    return max(0.0, settle_s - int(age_ms) / 1000)

"""A connection's token record in Redis: its layout, the scripts that change it, `auth`'s store.

One hash per connection, `ig:v1:token:{<connection>}`: `access`, `issued_at`,
`expires_at`, `refresh`, `version`, and the refresh lock (`holder`, `beat`). Every change
is one Lua script, atomic on the server: take the lock on the version read (`ACQUIRE`),
beat it, take a silent holder's lock over, release it, commit a refreshed token on the
version it was refreshed from (`COMMIT`), write back a token newer by issue time
(`WRITE_BACK`), expire a rejected access token, and save a new consent (`SAVE`). The
policy that uses them lives in `gateway.state.redis_tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.settings import Secret
from gateway.state.redis_calls import guarded
from gateway.state.redis_client import LuaScript, RedisClient, as_text
from gateway.state.tokens import Token

ACQUIRE = LuaScript(
    """
local h = redis.call('hmget', KEYS[1], 'version', 'holder', 'beat')
local version = tonumber(h[1] or '0')
if version ~= tonumber(ARGV[2]) then return {0, '', 0, version} end
if h[2] and h[2] ~= '' and h[2] ~= ARGV[1] then
  return {0, h[2], tonumber(h[3] or '0'), version}
end
redis.call('hset', KEYS[1], 'holder', ARGV[1], 'beat', tonumber(h[3] or '0') + 1)
return {1, ARGV[1], 0, version}
""",
    keys=1,
)
TAKE_OVER = LuaScript(
    """
local h = redis.call('hmget', KEYS[1], 'holder', 'beat')
if h[1] ~= ARGV[2] or tonumber(h[2] or '0') ~= tonumber(ARGV[3]) then return 0 end
redis.call('hset', KEYS[1], 'holder', ARGV[1], 'beat', tonumber(h[2] or '0') + 1)
return 1
""",
    keys=1,
)
BEAT = LuaScript(
    """
if redis.call('hget', KEYS[1], 'holder') ~= ARGV[1] then return 0 end
return redis.call('hincrby', KEYS[1], 'beat', 1)
""",
    keys=1,
)
RELEASE = LuaScript(
    """
if redis.call('hget', KEYS[1], 'holder') == ARGV[1] then
  redis.call('hdel', KEYS[1], 'holder')
end
return 1
""",
    keys=1,
)
COMMIT = LuaScript(
    """
local version = tonumber(redis.call('hget', KEYS[1], 'version') or '0')
local mine = redis.call('hget', KEYS[1], 'holder') == ARGV[1]
if mine then redis.call('hdel', KEYS[1], 'holder') end
if version ~= tonumber(ARGV[2]) then return 0 end
redis.call('hset', KEYS[1], 'access', ARGV[3], 'issued_at', ARGV[4], 'expires_at', ARGV[5],
           'refresh', ARGV[6], 'version', version + 1)
return version + 1
""",
    keys=1,
)
WRITE_BACK = LuaScript(
    """
local issued = redis.call('hget', KEYS[1], 'issued_at')
if issued and tonumber(issued) >= tonumber(ARGV[4]) then return 0 end
local version = tonumber(redis.call('hget', KEYS[1], 'version') or '0')
local next = math.max(version + 1, tonumber(ARGV[2]))
redis.call('hset', KEYS[1], 'access', ARGV[3], 'issued_at', ARGV[4], 'expires_at', ARGV[5],
           'refresh', ARGV[6], 'version', next)
if redis.call('hget', KEYS[1], 'holder') == ARGV[1] then
  redis.call('hdel', KEYS[1], 'holder')
end
return next
""",
    keys=1,
)
EXPIRE_IF_SAME = LuaScript(
    """
if redis.call('hget', KEYS[1], 'access') == ARGV[1] then
  redis.call('hset', KEYS[1], 'expires_at', redis.call('hget', KEYS[1], 'issued_at'))
  return 1
end
return 0
""",
    keys=1,
)


SAVE = LuaScript(
    """
local version = tonumber(redis.call('hget', KEYS[1], 'version') or '0')
redis.call('hset', KEYS[1], 'access', ARGV[1], 'issued_at', ARGV[2], 'expires_at', ARGV[3],
           'refresh', ARGV[4], 'version', version + 1)
redis.call('hdel', KEYS[1], 'holder')
return version + 1
""",
    keys=1,
)


@dataclass(frozen=True, slots=True)
class Stored:
    """One read of a connection's hash."""

    token: Token | None
    version: int
    holder: str
    beat: int


async def read(client: RedisClient, connection: str) -> Stored:
    """One read of the connection's record."""
    raw = await client.hgetall(key(connection))
    version = int(raw.get(b"version", 0)) if raw else 0
    holder = as_text(raw.get(b"holder", b"")) if raw else ""
    beat = int(raw.get(b"beat", 0)) if raw else 0
    if not raw or b"access" not in raw:
        return Stored(None, version, holder, beat)
    refresh = as_text(raw.get(b"refresh", b""))
    token = Token(
        Secret(as_text(raw[b"access"])),
        float(raw[b"issued_at"]),
        float(raw[b"expires_at"]),
        Secret(refresh) if refresh else None,
    )
    return Stored(token, version, holder, beat)


class RedisTokenStore:
    """`TokenStore` on Redis: how `invoice-gateway auth` hands a new consent to replicas.

    A saved token supersedes whatever is stored (a new consent starts a new chain of
    refresh tokens) and frees the refresh lock; replicas adopt it on their next read.
    """

    def __init__(self, client: RedisClient) -> None:
        """Use `client` (closed by the caller)."""
        self._r = guarded(client)

    async def load(self, connection: str) -> Token | None:
        """The stored token, if any."""
        return (await read(self._r, connection)).token

    async def save(self, connection: str, token: Token) -> None:
        """Write the token with the next version, unconditionally."""
        await SAVE.run(self._r, [key(connection)], *fields(token))


def fields(token: Token) -> tuple[str, str, str, str]:
    """The token as script arguments: access, issued_at, expires_at, refresh."""
    return (
        token.access.reveal(),
        repr(token.issued_at),
        repr(token.expires_at),
        token.refresh.reveal() if token.refresh else "",
    )


def key(connection: str) -> str:
    """The connection's record (hash-tagged: one Cluster slot)."""
    return f"ig:v1:token:{{{connection}}}"

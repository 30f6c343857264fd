"""What an end-user token and a caller budget cost per request.

Run: .venv/bin/python -m tests.bench.auth_bench [iterations]
Prints the time to authenticate one request: an API key, and a JWT per algorithm (RS256,
ES256, EdDSA; keys already fetched) the first time it is seen and when seen again
(remembered: `gateway.api.auth.USER_CACHE_S`), and the time to charge one caller budget
in memory and in a real Redis (one Lua round trip; needs `redis-server` on PATH).
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

from gateway.api.auth import Authenticator
from gateway.api.jwks import jwks_document
from gateway.api.limits import MemoryCallerLimiter, RedisCallerLimiter
from gateway.config.settings import CallerLimit
from gateway.state.redis_cache import RedisHealth
from tests.jwt_support import ec_key, ed_key, issuer, mint, rsa_key
from tests.support import RedisProcess, make_settings


async def per_call_us(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int) -> None:
    keys = [rsa_key(), ec_key(), ed_key()]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "jwks.json"
        path.write_bytes(jwks_document([k.public_jwk for k in keys]))
        auth = Authenticator(make_settings().api_keys, (issuer(None, jwks_file=path),))
        from tests.support import API_KEY  # noqa: PLC0415

        print(f"authenticate, {n} calls each (µs per request):")
        us = await per_call_us(lambda: auth.authenticate(f"Bearer {API_KEY}"), n)
        print(f"  API key   {us:8.1f}")
        print("  a token    first seen (signature checked)   seen again (remembered)")
        for key in keys:
            fresh = iter([mint(key, "12345678909", sub=f"u{i}") for i in range(n)])
            first = await per_call_us(
                lambda f=fresh: auth.authenticate(f"Bearer {next(f)}"), n
            )
            token = mint(key, "12345678909")
            again = await per_call_us(
                lambda t=token: auth.authenticate(f"Bearer {t}"), n
            )
            print(f"  {key.alg:<8}  {first:8.1f}                          {again:8.1f}")
    limit = CallerLimit(10**9, 60.0)
    memory = MemoryCallerLimiter()
    print(f"charge a caller budget, {n} calls (µs per request):")
    print(f"  memory    {await per_call_us(lambda: memory.charge('c', limit), n):8.1f}")
    binary = shutil.which("redis-server")
    if binary is None:
        print("  redis     (redis-server not on PATH)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisProcess(binary, Path(tmp))
        server.start()
        try:
            client = aioredis.Redis.from_url(server.url)
            shared = RedisCallerLimiter(client, RedisHealth(), MemoryCallerLimiter())
            us = await per_call_us(lambda: shared.charge("c", limit), n)
            print(f"  redis     {us:8.1f}  (one EVAL round trip on loopback)")
            await client.aclose()
        finally:
            server.stop()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2000))

"""The deployment's Redis: a gateway ACL user limited to `ig:v1:*` is all the gateway needs.

Redis is started by `deploy/redis/acl-entrypoint.sh`, the script compose and Kubernetes
run, so the rule tested is the rule deployed.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from gateway.config.settings import Secret
from tests.support import (
    API_KEY,
    RedisProcess,
    fintera_connection,
    hubsoft_connection,
    make_settings,
)

ENTRYPOINT = Path(__file__).resolve().parent.parent / "deploy/redis/acl-entrypoint.sh"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
PASSWORD = secrets.token_hex(16)
BODY = {
    "connection": "fin",
    "name": "ACL check",
    "entity_id": 3798,
    "acquirer": "cielo",
    "payment_methods": ["credit_card"],
}


@pytest.fixture
def acl_redis(tmp_path, monkeypatch):
    """redis-server started through the deployment's ACL entrypoint."""
    assert shutil.which("redis-server"), "redis-server missing (make test installs it)"
    monkeypatch.setenv("REDIS_GATEWAY_PASSWORD", PASSWORD)
    monkeypatch.setenv("REDIS_ACL_FILE", str(tmp_path / "users.acl"))
    server = RedisProcess(str(ENTRYPOINT), tmp_path)
    server.start()
    yield server
    server.stop()


def gateway_url(server, user="invoice-gateway", password=PASSWORD):
    """`redis://user:password@host:port/0` for the ACL'd server."""
    return f"redis://{user}:{password}@127.0.0.1:{server.port}/0"


async def test_gateway_works_with_only_its_acl_user(
    acl_redis, gateway_factory, hubsoft_url, fintera_url, fintera_sim
):
    """Cache, tokens, rate buckets and idempotency all work under the restricted user."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url),
        fintera_connection(fintera_url, rate_limit_requests=50),
        redis_url=Secret(gateway_url(acl_redis)),
    )
    client = await gateway_factory(settings)
    url = "/v1/invoices?customer_document=12345678909"
    await client.get(url, headers=AUTH)
    again = await (await client.get(url, headers=AUTH)).json()
    hub = next(s for s in again["sources"] if s["connection"] == "acme-isp")
    assert hub["from_cache"] is True
    headers = {**AUTH, "Idempotency-Key": "acl-1"}
    first = await client.post("/v1/sale-accounts", json=BODY, headers=headers)
    replay = await client.post("/v1/sale-accounts", json=BODY, headers=headers)
    assert (first.status, replay.status) == (201, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    posts = [c for c in fintera_sim.calls("/sale_accounts") if c["method"] == "POST"]
    assert len(posts) == 1
    ready = await (await client.get("/readyz")).json()
    assert ready["cache"] == {"backend": "redis", "redis": "up"}
    direct = aioredis.Redis.from_url(gateway_url(acl_redis))
    try:
        assert await direct.exists("ig:v1:token:{acme-isp}") == 1
        assert await direct.exists("ig:v1:bucket:{fin}") == 1
    finally:
        await direct.aclose()


async def test_acl_user_cannot_leave_its_prefix_and_default_user_is_off(acl_redis):
    """Other keys and dangerous commands are refused; no password-less access at all."""
    gw = aioredis.Redis.from_url(gateway_url(acl_redis))
    anon = aioredis.Redis.from_url(acl_redis.url)
    wrong = aioredis.Redis.from_url(gateway_url(acl_redis, password="wrong-password"))
    try:
        with pytest.raises(NoPermissionError):
            await gw.set("someone-else:key", "x")
        with pytest.raises(NoPermissionError):
            await gw.flushall()
        with pytest.raises((AuthenticationError, ResponseError), match=r"(?i)auth"):
            await anon.get("ig:v1:x")
        with pytest.raises(AuthenticationError):
            await wrong.ping()
    finally:
        for client in (gw, anon, wrong):
            await client.aclose()


def test_acl_file_holds_no_password(acl_redis, tmp_path):
    """The ACL file written at start holds the password's SHA-256, never the password."""
    text = (tmp_path / "users.acl").read_text(encoding="utf-8")
    assert PASSWORD not in text
    assert "user default off" in text
    assert "~ig:v1:*" in text

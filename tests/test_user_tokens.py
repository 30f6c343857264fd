"""End-user JWTs: what is accepted, and a battery of forgeries that all get the same 401."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from gateway.api import auth
from gateway.api.jwks import JwksKeys
from gateway.config.settings import Secret
from tests.jwt_support import (
    AUDIENCE,
    ISSUER,
    JwksServer,
    ec_key,
    ed_key,
    issuer,
    mint,
    rsa_key,
)
from tests.support import FakeClock, hubsoft_connection, make_settings

DOC = "12345678909"
RSA, EC, ED = rsa_key(), ec_key(), ed_key()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unsigned(header: dict, payload: dict) -> str:
    return _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())


def _claims(**extra) -> dict:
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "maria",
        "iat": now,
        "exp": now + 600,
        "customer_documents": DOC,
        **extra,
    }


@pytest.fixture
async def jwks(aiohttp_server):
    """A JWKS endpoint publishing the RSA, EC and Ed25519 test keys."""
    server = JwksServer([RSA, EC, ED])
    served = await aiohttp_server(server.app())
    server.url = str(served.make_url("/jwks.json"))
    return server


@pytest.fixture
async def client(gateway_factory, hubsoft_url, jwks):
    """A gateway trusting the test issuer (keys from its JWKS URL)."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url), jwt_issuers=(issuer(jwks.url),)
    )
    return await gateway_factory(settings)


async def _list(client, token):
    return await client.get(
        "/v1/invoices", headers={"Authorization": f"Bearer {token}"}
    )


@pytest.mark.parametrize("key", [RSA, EC, ED], ids=["RS256", "ES256", "EdDSA"])
async def test_each_asymmetric_algorithm_signs_in_a_customer(client, key):
    """RS256, ES256 and EdDSA tokens from the JWKS each sign the customer in."""
    resp = await _list(client, mint(key, DOC))
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["data"]
    assert {i["customer"]["document"] for i in body["data"]} == {DOC}


def _forgeries() -> dict[str, str]:
    """Every kind of bad token, by name."""
    now = int(time.time())
    rogue = rsa_key("rogue")
    good = mint(RSA, DOC)
    head, payload, sig = good.split(".")
    tampered_payload = _b64(
        json.dumps(_claims(customer_documents="52998224725")).encode()
    )
    flipped = sig[:-3] + ("AAA" if not sig.endswith("AAA") else "BBB")
    public_pem = (
        RSA.private.public_key()
        .public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        .decode()
    )
    confused = _unsigned({"alg": "HS256", "kid": RSA.kid, "typ": "JWT"}, _claims())
    confused_sig = hmac.new(
        public_pem.encode(), confused.encode(), hashlib.sha256
    ).digest()
    jwk_json = json.dumps(RSA.public_jwk)
    confused_jwk = _unsigned({"alg": "HS256", "kid": RSA.kid}, _claims())
    confused_jwk_sig = hmac.new(
        jwk_json.encode(), confused_jwk.encode(), hashlib.sha256
    ).digest()
    return {
        "expired": mint(RSA, DOC, exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not_yet_valid": mint(RSA, DOC, nbf=now + 3600),
        "issued_in_the_future": mint(RSA, DOC, iat=now + 3600, nbf=None),
        "wrong_audience": mint(RSA, DOC, aud="someone-else"),
        "wrong_issuer": mint(RSA, DOC, iss="https://evil.example.test/"),
        "alg_none": _unsigned({"alg": "none", "kid": RSA.kid}, _claims()) + ".",
        "alg_none_with_sig": _unsigned({"alg": "none"}, _claims()) + "." + sig,
        "hs256_with_public_key_pem": confused + "." + _b64(confused_sig),
        "hs256_with_public_jwk": confused_jwk + "." + _b64(confused_jwk_sig),
        "unknown_kid": mint(rogue, DOC),
        "known_kid_wrong_key": jwt.encode(
            _claims(), rogue.private, algorithm="RS256", headers={"kid": RSA.kid}
        ),
        "alg_of_another_key_type": jwt.encode(
            _claims(), EC.private, algorithm="ES256", headers={"kid": RSA.kid}
        ),
        "tampered_payload": f"{head}.{tampered_payload}.{sig}",
        "tampered_signature": f"{head}.{payload}.{flipped}",
        "missing_customer_claim": mint(RSA, None),
        "empty_customer_list": mint(RSA, []),
        "invalid_customer_document": mint(RSA, "12345678900"),
        "one_bad_document_in_list": mint(RSA, [DOC, "123"]),
        "missing_exp": mint(RSA, DOC, exp=None),
        "missing_sub": mint(RSA, DOC, sub=None),
        "missing_iat": mint(RSA, DOC, iat=None),
        "subject_not_a_string": mint(RSA, DOC, sub=12345),
        "subject_too_long": mint(RSA, DOC, sub="x" * 300),
        "garbage": "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",
        "no_kid": jwt.encode(_claims(), RSA.private, algorithm="RS256"),
        "embedded_attacker_jwk": jwt.encode(
            _claims(),
            rogue.private,
            algorithm="RS256",
            headers={"kid": RSA.kid, "jwk": rogue.public_jwk},
        ),
        "jku_to_attacker_keys": jwt.encode(
            _claims(),
            rogue.private,
            algorithm="RS256",
            headers={"kid": rogue.kid, "jku": "http://127.0.0.1:1/evil.json"},
        ),
    }


FORGERIES = _forgeries()


@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_every_bad_token_is_the_same_401(client, name):
    """Each forged, stale or incomplete token: 401 invalid_token, saying nothing more."""
    resp = await _list(client, FORGERIES[name])
    assert resp.status == 401, name
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="invalid_token"' in challenge
    body = await resp.json()
    expected = "token expired" if name == "expired" else "invalid token"
    assert body["detail"] == expected
    assert set(body) <= {"type", "title", "status", "detail", "instance"}


async def test_a_bad_token_never_reaches_an_upstream(client, hubsoft_sim):
    """A refused token costs no upstream call."""
    for token in FORGERIES.values():
        assert (await _list(client, token)).status == 401
    assert hubsoft_sim.calls("") == []


async def test_hs256_issuer_uses_only_its_secret_from_the_environment(
    gateway_factory, hubsoft_url
):
    """An HS256 issuer accepts tokens signed with its env secret, and no other."""
    secret = "h" * 40
    hs = issuer(
        None,
        algorithms=("HS256",),
        hs256_secret=Secret(secret),
    )
    client = await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url), jwt_issuers=(hs,))
    )
    good = jwt.encode(_claims(), secret, algorithm="HS256")
    assert (await _list(client, good)).status == 200
    other = jwt.encode(_claims(), "x" * 40, algorithm="HS256")
    assert (await _list(client, other)).status == 401


async def test_jwks_file_issuer(gateway_factory, hubsoft_url, tmp_path):
    """Keys can come from a JWKS file instead of a URL."""
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [EC.public_jwk]}))
    iss = issuer(None, jwks_file=path)
    client = await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url), jwt_issuers=(iss,))
    )
    assert (await _list(client, mint(EC, DOC))).status == 200
    assert (await _list(client, mint(RSA, DOC))).status == 401


async def test_small_leeway_accepts_a_token_just_expired(client):
    """A token expired a few seconds ago (clock skew) is still accepted."""
    now = int(time.time())
    token = mint(RSA, DOC, exp=now - 5, iat=now - 600, nbf=now - 600)
    assert (await _list(client, token)).status == 200


async def test_scopes_are_capped_by_the_issuer(client):
    """A token claiming sale-account writes gets none unless the issuer allows them."""
    token = mint(RSA, DOC, scope="invoices:read sale_accounts:write")
    resp = await client.post(
        "/v1/sale-accounts",
        headers={"Authorization": f"Bearer {token}"},
        json={"connection": "acme-isp", "name": "x"},
    )
    assert resp.status == 403


async def _keys_lookup(url, clock, **kw):
    """A JwksKeys against `url` with a fake clock and a real session."""
    session = aiohttp.ClientSession()
    keys = JwksKeys(issuer(url, **kw), lambda: session, clock)
    return keys, session


async def test_unknown_kid_refetches_the_jwks_at_most_once_per_interval(jwks):
    """Key rotation is picked up, but a flood of unknown kids costs one fetch."""
    clock = FakeClock(1000.0)
    keys, session = await _keys_lookup(jwks.url, clock, jwks_min_refetch_s=30.0)
    async with session:
        assert await keys.key(RSA.kid) is not None
        assert jwks.fetches == 1
        for i in range(50):
            assert await keys.key(f"forged-{i}") is None
        assert jwks.fetches == 1  # within the interval: no refetch at all
        rotated = rsa_key("rsa-2")
        jwks.keys.append(rotated)
        clock.now += 31
        assert await keys.key("rsa-2") is not None
        assert jwks.fetches == 2
        for i in range(50):
            assert await keys.key(f"forged-again-{i}") is None
        assert jwks.fetches == 2


async def test_concurrent_first_lookups_wait_for_the_one_fetch(jwks):
    """Requests arriving together at start-up all get the key from a single fetch."""
    clock = FakeClock(1000.0)
    keys, session = await _keys_lookup(jwks.url, clock)
    async with session:
        found = await asyncio.gather(*(keys.key(RSA.kid) for _ in range(20)))
    assert all(k is not None for k in found)
    assert jwks.fetches == 1


async def test_last_good_keys_serve_while_the_jwks_endpoint_fails(jwks):
    """A failing JWKS endpoint: the last good keys keep working, for a while only."""
    clock = FakeClock(1000.0)
    keys, session = await _keys_lookup(
        jwks.url, clock, jwks_cache_s=60.0, jwks_keep_s=600.0
    )
    async with session:
        assert await keys.key(RSA.kid) is not None
        jwks.failing = True
        clock.now += 120  # cache expired: a refetch is tried and fails
        assert await keys.key(RSA.kid) is not None
        assert jwks.fetches == 2
        clock.now += 600  # past the keep window: old keys are no longer trusted
        assert await keys.key(RSA.kid) is None
        jwks.failing = False
        clock.now += 60
        assert await keys.key(RSA.kid) is not None


async def test_symmetric_keys_in_a_jwks_are_ignored(jwks):
    """An `oct` key published in a JWKS is never used (no HMAC secret from a document)."""
    jwks.extra.append({"kty": "oct", "kid": "shared", "k": _b64(b"x" * 32)})
    clock = FakeClock(1000.0)
    keys, session = await _keys_lookup(jwks.url, clock)
    async with session:
        assert await keys.key("shared") is None
        assert await keys.key(RSA.kid) is not None


@pytest.fixture
def checks(monkeypatch) -> list[str]:
    """The tokens whose signature PyJWT checks from now on, in order."""
    seen: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args, **kwargs):
        seen.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    return seen


async def test_a_verified_token_is_not_checked_again_on_every_request(client, checks):
    """Repeated requests with one token cost one signature check; another token, its own."""
    token = mint(ED, DOC)
    for _ in range(3):
        assert (await _list(client, token)).status == 200
    assert len(checks) == 1
    assert (await _list(client, mint(ED, DOC, sub="other"))).status == 200
    assert len(checks) == 2


async def test_a_remembered_token_is_refused_once_it_expires(
    gateway_factory, hubsoft_url, jwks
):
    """Remembering a verified token never outlives its `exp` (plus the issuer's leeway)."""
    settings = make_settings(
        hubsoft_connection(hubsoft_url), jwt_issuers=(issuer(jwks.url, leeway_s=0.0),)
    )
    client = await gateway_factory(settings)
    exp = int(time.time()) + 3  # 2 s at least for the first requests, busy cores too
    token = mint(ED, DOC, exp=exp)
    assert (await _list(client, token)).status == 200
    assert (await _list(client, token)).status == 200  # remembered
    await asyncio.sleep(exp - time.time() + 0.2)
    resp = await _list(client, token)
    assert resp.status == 401
    assert "expired" in (await resp.json())["detail"]


async def test_remembered_tokens_are_bounded(client, checks, monkeypatch):
    """Past the bound the oldest remembered token goes, and is checked again."""
    monkeypatch.setattr(auth, "MAX_CACHED_USERS", 2)
    tokens = [mint(ED, DOC, sub=f"user-{n}") for n in range(3)]
    for token in tokens:
        assert (await _list(client, token)).status == 200
    for token in tokens[1:]:  # the newest two are remembered
        assert (await _list(client, token)).status == 200
    assert len(checks) == 3
    assert (await _list(client, tokens[0])).status == 200
    assert checks[-1] == tokens[0]


@pytest.mark.parametrize("as_sent", [str, lambda exp: exp + 0.9])
async def test_a_remembered_token_expires_as_pyjwt_reads_its_exp(
    gateway_factory, hubsoft_url, jwks, as_sent
):
    """An `exp` PyJWT takes as `int(exp)` (a numeric string, a fraction) ends there too.

    Remembering such a token until `math.inf` (a string) or the fraction past the whole
    second would honour it after a fresh verification would refuse it.
    """
    settings = make_settings(
        hubsoft_connection(hubsoft_url), jwt_issuers=(issuer(jwks.url, leeway_s=0.0),)
    )
    client = await gateway_factory(settings)
    exp = int(time.time()) + 3  # 2 s at least for the first requests, busy cores too
    token = mint(ED, DOC, exp=as_sent(exp))
    assert (await _list(client, token)).status == 200
    await asyncio.sleep(exp - time.time() + 0.1)  # past int(exp), before exp + 0.9
    resp = await _list(client, token)
    assert resp.status == 401
    assert "expired" in (await resp.json())["detail"]

"""Test identity providers: signing keys, their JWKS, and tokens minted with them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from gateway.config.settings import JwtIssuer

ISSUER = "https://id.example.test/"
AUDIENCE = "invoice-gateway"


@dataclass
class SigningKey:
    """A private key, its algorithm and kid, and its public JWK."""

    alg: str
    kid: str
    private: Any

    @property
    def public_jwk(self) -> dict[str, Any]:
        """The public half as a JWK with `kid`, `alg` and `use`."""
        public = self.private.public_key()
        algo = {"RS256": RSAAlgorithm, "ES256": ECAlgorithm, "EdDSA": OKPAlgorithm}[
            self.alg
        ]
        jwk = json.loads(algo.to_jwk(public))
        return {**jwk, "kid": self.kid, "alg": self.alg, "use": "sig"}


def rsa_key(kid: str = "rsa-1") -> SigningKey:
    """A fresh RS256 key."""
    return SigningKey(
        "RS256", kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )


def ec_key(kid: str = "ec-1") -> SigningKey:
    """A fresh ES256 key."""
    return SigningKey("ES256", kid, ec.generate_private_key(ec.SECP256R1()))


def ed_key(kid: str = "ed-1") -> SigningKey:
    """A fresh EdDSA (Ed25519) key."""
    return SigningKey("EdDSA", kid, ed25519.Ed25519PrivateKey.generate())


def mint(key: SigningKey, documents: Any, **claims: Any) -> str:
    """A token for `documents` signed with `key`; claims override the defaults."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-" + (documents if isinstance(documents, str) else "multi"),
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "customer_documents": documents,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key.private, algorithm=key.alg, headers={"kid": key.kid})


@dataclass
class JwksServer:
    """A JWKS endpoint whose keys and failures a test controls; counts its fetches."""

    keys: list[SigningKey]
    fetches: int = 0
    failing: bool = False
    extra: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        """The aiohttp app serving `/jwks.json`."""

        async def serve(_request: web.Request) -> web.Response:
            self.fetches += 1
            if self.failing:
                return web.Response(status=503)
            doc = {"keys": [k.public_jwk for k in self.keys] + self.extra}
            return web.json_response(doc)

        app = web.Application()
        app.router.add_get("/jwks.json", serve)
        return app


def issuer(jwks_url: str | None, **kw: Any) -> JwtIssuer:
    """The test identity provider as a configured issuer."""
    options: dict[str, Any] = {
        "name": "portal",
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "algorithms": ("RS256", "ES256", "EdDSA"),
        "jwks_url": jwks_url,
    }
    options.update(kw)
    return JwtIssuer(**options)

"""Settings for frontends: [[jwt_issuers]], [cors], per-caller rate_limit, all validated."""

from __future__ import annotations

import json
import secrets

import pytest

from gateway.config.settings import CallerLimit
from gateway.errors import ConfigError
from tests.test_settings import GOOD, load

ISSUER = """
[[jwt_issuers]]
name = "portal"
issuer = "https://id.example.com/"
audience = "invoice-gateway"
algorithms = ["RS256", "EdDSA"]
jwks_url = "https://id.example.com/jwks.json"
customer_claim = "cpf"
rate_limit = { requests = 120, window_s = 60 }
"""


def problems(tmp_path, text, **env):
    """The problems a file is refused with."""
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, **env)
    return caught.value.problems


def test_issuer_cors_and_limits_load(tmp_path):
    """A full issuer, a [cors] table and a key's rate_limit load as written."""
    text = GOOD.replace(
        'connections = ["acme-isp"]',
        'connections = ["acme-isp"]\nrate_limit = { requests = 10, window_s = 1 }',
    )
    text += ISSUER + '\n[cors]\norigins = ["https://portal.example.com"]\n'
    settings = load(tmp_path, text)
    (iss,) = settings.jwt_issuers
    assert iss.algorithms == ("RS256", "EdDSA")
    assert iss.customer_claim == "cpf"
    assert iss.rate_limit == CallerLimit(120, 60.0)
    assert "exp" in iss.required_claims
    assert iss.allowed_scopes == frozenset({"invoices:read"})
    assert settings.api_keys[0].rate_limit == CallerLimit(10, 1.0)
    assert settings.cors is not None
    assert settings.cors.origins == frozenset({"https://portal.example.com"})


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('algorithms = ["RS256", "EdDSA"]', "algorithms: a list from"),
        ('jwks_url = "https://id.example.com/jwks.json"', "set exactly one of"),
        ('audience = "invoice-gateway"', "audience: required"),
    ],
)
def test_bad_issuers_are_refused(tmp_path, change, expected):
    """Missing or unknown issuer settings are named."""
    replaced = {
        'algorithms = ["RS256", "EdDSA"]': 'algorithms = ["none"]',
        'jwks_url = "https://id.example.com/jwks.json"': "",
        'audience = "invoice-gateway"': "",
    }[change]
    found = problems(tmp_path, GOOD + ISSUER.replace(change, replaced))
    assert any(expected in p for p in found), found


def test_hs256_needs_a_long_secret_from_the_environment(tmp_path):
    """HS256: the secret's env var NAME, set, long, random; never mixed with RS/ES/EdDSA."""
    hs = ISSUER.replace('algorithms = ["RS256", "EdDSA"]', 'algorithms = ["HS256"]')
    hs = hs.replace(
        'jwks_url = "https://id.example.com/jwks.json"',
        'hs256_secret_env = "PORTAL_SECRET"',
    )
    assert "PORTAL_SECRET" in " ".join(problems(tmp_path, GOOD + hs))
    short = problems(tmp_path, GOOD + hs, PORTAL_SECRET="short")
    assert any("at least 32" in p for p in short)
    secret = secrets.token_hex(32)
    settings = load(tmp_path, GOOD + hs, PORTAL_SECRET=secret)
    assert settings.jwt_issuers[0].hs256_secret is not None
    assert secret not in repr(settings)
    weak = problems(tmp_path, GOOD + hs, PORTAL_SECRET="p" * 40)
    assert any("predictable" in p for p in weak)
    mixed = hs.replace('algorithms = ["HS256"]', 'algorithms = ["HS256", "RS256"]')
    assert any(
        "HS256 only" in p
        for p in problems(tmp_path, GOOD + mixed, PORTAL_SECRET=secret)
    )
    bare = ISSUER.replace('algorithms = ["RS256", "EdDSA"]', 'algorithms = ["HS256"]')
    assert any("HS256 needs" in p for p in problems(tmp_path, GOOD + bare))


def test_jwks_file_is_read_at_load(tmp_path):
    """A missing or empty JWKS file is a config problem, not a runtime surprise."""
    path = tmp_path / "jwks.json"
    text = GOOD + ISSUER.replace(
        'jwks_url = "https://id.example.com/jwks.json"',
        f"jwks_file = {json.dumps(str(path))}",
    )
    assert any("jwks_file" in p for p in problems(tmp_path, text))
    path.write_text('{"keys": []}')
    assert any("no asymmetric" in p for p in problems(tmp_path, text))


def test_user_scopes_never_include_the_audit(tmp_path):
    """An issuer cannot grant end users the audit trail."""
    text = GOOD + ISSUER + 'allowed_scopes = ["invoices:read", "audit:read"]\n'
    assert any("allowed_scopes" in p for p in problems(tmp_path, text))


@pytest.mark.parametrize(
    "origins",
    ['["*"]', '["https://portal.example.com/"]', "[]", '["portal.example.com"]'],
)
def test_cors_needs_exact_origins(tmp_path, origins):
    """A wildcard, a path, an empty list or a bare host is refused."""
    text = GOOD + f"\n[cors]\norigins = {origins}\n"
    assert any(p.startswith("cors.origins") for p in problems(tmp_path, text))


def test_end_users_always_have_a_budget(tmp_path):
    """An issuer without rate_limit still limits each subject (300 a minute)."""
    text = GOOD + ISSUER.replace("rate_limit = { requests = 120, window_s = 60 }", "")
    assert load(tmp_path, text).jwt_issuers[0].rate_limit == CallerLimit(300, 60.0)


def test_bad_rate_limits_are_named(tmp_path):
    """A rate_limit must be a positive request count per positive window."""
    text = GOOD.replace(
        'connections = ["acme-isp"]',
        'connections = ["acme-isp"]\nrate_limit = { requests = 0 }',
    )
    assert any("rate_limit.requests" in p for p in problems(tmp_path, text))

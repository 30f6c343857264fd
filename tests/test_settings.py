"""Settings: env + TOML connections file, every problem reported at once."""

from __future__ import annotations

import hashlib

import pytest

from gateway.config import load_settings
from gateway.errors import ConfigError

PROVIDERS = ["fintera", "hubsoft", "xarios"]
KEY_HASH = hashlib.sha256(b"k").hexdigest()
GOOD = f"""
[[api_keys]]
name = "portal"
sha256 = "{KEY_HASH}"
scopes = ["invoices:read"]
connections = ["acme-isp"]

[connections.acme-isp]
provider = "hubsoft"
base_url = "https://api.acme.hubsoft.com.br/"
timeout_s = 7
currency = "BRL"
timezone = "America/Manaus"

[connections.acme-isp.secrets]
client_id = "ACME_ID"
client_secret = "ACME_SECRET"
username = "ACME_USER"
password = "ACME_PASS"
"""
ENV = {
    "ACME_ID": "id",
    "ACME_SECRET": "s3cr3t",
    "ACME_USER": "u@x",
    "ACME_PASS": "p4ss",
    "GATEWAY_CURSOR_SECRET": "c" * 32,
}


def load(tmp_path, text, **env):
    """Write `text` as the connections file and load settings with ENV + `env`."""
    path = tmp_path / "connections.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings({**ENV, "GATEWAY_CONFIG": str(path), **env}, PROVIDERS)


def test_good_file_loads_with_secrets_from_env(tmp_path):
    """Secrets come from the env vars the file names; nothing secret prints."""
    settings = load(tmp_path, GOOD, GATEWAY_PORT="9000")
    (conn,) = settings.connections
    assert conn.base_url == "https://api.acme.hubsoft.com.br"
    assert conn.secrets["client_secret"].reveal() == "s3cr3t"
    assert "s3cr3t" not in repr(settings)
    assert conn.timezone.key == "America/Manaus"
    assert settings.port == 9000
    assert settings.api_keys[0].connections == frozenset({"acme-isp"})


def test_every_problem_is_reported_at_once(tmp_path):
    """Many mistakes, one ConfigError naming each of them."""
    text = """
[[api_keys]]
name = "k"
sha256 = "not-a-hash"
scopes = ["invoices:write"]
connections = ["ghost"]

[connections."Bad Id"]
provider = "sap"
base_url = "ftp://x"
timezone = "Mars/Olympus"
currency = "reais"
timeout_s = -1

[connections."Bad Id".secrets]
password = "hunter2 inline"
client_id = "UNSET_VAR"

[connections."Bad Id".options]
api_token = "x"
"""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, GATEWAY_CURSOR_SECRET="short", GATEWAY_PORT="eighty")
    text_out = "\n".join(info.value.problems)
    for needle in (
        "sha256",
        "scopes",
        "id must match",
        "'sap' is unknown; known: fintera, hubsoft, xarios",
        "base_url",
        "timezone",
        "currency",
        "timeout_s",
        "secrets.password",
        "UNSET_VAR is not set",
        "options.api_token",
        "GATEWAY_CURSOR_SECRET",
        "GATEWAY_PORT",
    ):
        assert needle in text_out, needle
    assert "hunter2" not in text_out


def test_unknown_connection_in_key_is_reported(tmp_path):
    """A key naming a connection that does not exist is a problem."""
    with pytest.raises(ConfigError, match="unknown connection 'ghost'"):
        load(
            tmp_path,
            GOOD.replace('connections = ["acme-isp"]', 'connections = ["ghost"]'),
        )


def test_missing_file_and_invalid_toml(tmp_path):
    """An unreadable or broken file is reported, not a traceback."""
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings({**ENV, "GATEWAY_CONFIG": str(tmp_path / "nope.toml")}, PROVIDERS)
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "[connections\n")
    with pytest.raises(ConfigError, match="GATEWAY_CONFIG: not set"):
        load_settings(ENV, PROVIDERS)

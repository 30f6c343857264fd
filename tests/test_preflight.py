"""The full start-up check: settings and every adapter's own keys, all problems at once."""

from __future__ import annotations

import hashlib

import pytest

from gateway.cli import preflight
from gateway.errors import ConfigError
from tests.support import CURSOR_SECRET

KEY_HASH = hashlib.sha256(b"k").hexdigest()
FILE = f"""
[[api_keys]]
name = "portal"
sha256 = "{KEY_HASH}"
connections = ["books", "isp", "broken"]

[connections.books]
provider = "fintera"
base_url = "https://fintera.example"
[connections.books.secrets]
api_token = "FIN_TOKEN"
[connections.books.options]
entity_id = [1]
account_id = "not-a-number"

[connections.isp]
provider = "hubsoft"
base_url = "https://hubsoft.example"
[connections.isp.secrets]
client_id = "HUB_ID"
client_secrte = "HUB_SECRET"
username = "HUB_USER"
password = "HUB_PASS"

[connections.broken]
provider = "xarios"
base_url = "not a url"
[connections.broken.secrets]
client_id = "X_ID"
client_secret = "X_SECRET"
"""
ENV = {
    "FIN_TOKEN": "fin-token",
    "HUB_ID": "hub-id",
    "HUB_SECRET": "hub-secret",
    "HUB_USER": "hub-user",
    "HUB_PASS": "hub-pass",
    "X_ID": "x-id",
    "X_SECRET": "x-secret",
    "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
}


def test_settings_and_adapter_problems_are_listed_together(tmp_path):
    """A bad base_url, unknown provider keys and a bad option value: one list, no echoes.

    The misspelt secret is not reported again as a missing one.
    """
    path = tmp_path / "c.toml"
    path.write_text(FILE, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        preflight.check({**ENV, "GATEWAY_CONFIG": str(path)})
    assert sorted(info.value.problems) == sorted(
        [
            "connections.broken.base_url: must be an http(s) URL",
            (
                "connections.books.options.entity_id: unknown option; "
                "did you mean 'entity_ids'?"
            ),
            "connections.books: options.account_id: must be the numeric ACCOUNT_ID",
            (
                "connections.isp.secrets.client_secrte: unknown secret; "
                "did you mean 'client_secret'?"
            ),
        ]
    )


def test_startup_fields_name_backends_and_connections(tmp_path):
    """The start-up line says where the cache and shared state live."""
    path = tmp_path / "c.toml"
    fixed = (
        FILE.replace("entity_id =", "entity_ids =")
        .replace("client_secrte", "client_secret")
        .replace('"not a url"', '"https://x.example"')
        .replace('"not-a-number"', '"42"')
    )
    path.write_text(fixed, encoding="utf-8")
    env = {**ENV, "GATEWAY_CONFIG": str(path), "REDIS_URL": "redis://127.0.0.1:1/0"}
    settings = preflight.check(env)
    fields = preflight.startup_fields(settings, "::", 8080, 2)
    assert fields["address"] == "http://[::]:8080"
    assert (fields["cache"], fields["state"]) == ("redis", "redis")
    assert fields["connections"] == [
        "books (fintera)",
        "isp (hubsoft)",
        "broken (xarios)",
    ]

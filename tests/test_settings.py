"""Settings: env + TOML connections file, every problem reported at once."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets

import pytest

from gateway.config.load import load_settings
from gateway.config.settings import ConnectionSettings
from gateway.errors import ConfigError
from tests.support import CURSOR_SECRET

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
    "GATEWAY_CURSOR_SECRET": CURSOR_SECRET,
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


def problems_of(tmp_path, text, **env):
    """The problems `load` reports for this file and env (none: an empty list)."""
    try:
        load(tmp_path, text, **env)
    except ConfigError as err:
        return err.problems
    return []


def test_unknown_connection_key_is_refused_with_did_you_mean(tmp_path):
    """A misspelt connection key is an error naming the key it probably meant."""
    text = GOOD.replace("timeout_s = 7", "timeout_secs = 7")
    assert problems_of(tmp_path, text) == [
        "connections.acme-isp.timeout_secs: unknown key; did you mean 'timeout_s'?"
    ]


def test_every_connection_settings_field_is_a_known_key(tmp_path):
    """The known keys are ConnectionSettings' fields: a table setting each one is accepted."""
    sample = {
        "provider": '"hubsoft"',
        "base_url": '"https://h.example"',
        "timezone": '"America/Manaus"',
        "currency": '"BRL"',
        "rate_limit_requests": "10",
        "secrets": (
            '{ client_id = "ACME_ID", client_secret = "ACME_SECRET", '
            'username = "ACME_USER", password = "ACME_PASS" }'
        ),
        "options": "{}",
    }
    lines = []
    for f in dataclasses.fields(ConnectionSettings):
        if f.name == "id":
            continue
        plain = isinstance(f.default, int | float | str) and f.default is not None
        value = sample.get(f.name, repr(f.default) if plain else "1")
        lines.append(f"{f.name} = {value}")
    head = GOOD.split("[connections.acme-isp]", maxsplit=1)[0]
    found = problems_of(tmp_path, head + "[connections.acme-isp]\n" + "\n".join(lines))
    assert not [p for p in found if "unknown" in p]


def test_unknown_section_and_api_key_field_are_refused(tmp_path):
    """Top-level sections and `[[api_keys]]` fields are checked against what is read."""
    text = GOOD.replace('scopes = ["invoices:read"]', 'scope = ["invoices:read"]')
    text += '\n[conections.other]\nprovider = "hubsoft"\n'
    found = problems_of(tmp_path, text)
    assert "api_keys[0].scope: unknown key; did you mean 'scopes'?" in found
    assert "conections: unknown section; did you mean 'connections'?" in found


def test_unknown_gateway_variable_is_refused_with_did_you_mean(tmp_path):
    """A `GATEWAY_*` variable no setting reads is a typo: refused, with the nearest name."""
    found = problems_of(
        tmp_path, GOOD, GATEWAY_REQUEST_TIMEOUT="3", GATEWAY_FROBNICATE="1"
    )
    assert (
        "GATEWAY_REQUEST_TIMEOUT: unknown variable; did you mean "
        "'GATEWAY_REQUEST_TIMEOUT_S'?"
    ) in found
    assert any(p.startswith("GATEWAY_FROBNICATE: unknown variable") for p in found)
    assert len(found) == 2


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("change-me-to-at-least-32-random-characters", "is a placeholder"),
        ("<your cursor secret>", "is a placeholder"),
        ("0123456789abcdef", "needs at least 32 characters"),
        ("ab" * 20, "is too predictable"),
        ("q" * 64, "is too predictable"),
        ("", "not set"),
    ],
)
def test_placeholder_short_or_predictable_cursor_secret_is_refused(
    tmp_path, secret, reason
):
    """The cursor secret must be long and random; the message never quotes it."""
    found = problems_of(tmp_path, GOOD, GATEWAY_CURSOR_SECRET=secret)
    assert len(found) == 1
    assert found[0].startswith(f"GATEWAY_CURSOR_SECRET: {reason}")
    assert secret not in found[0] or not secret


def test_a_random_cursor_secret_is_accepted(tmp_path):
    """What `openssl rand -hex 16` (the shortest allowed) gives passes."""
    for _ in range(50):
        assert (
            problems_of(tmp_path, GOOD, GATEWAY_CURSOR_SECRET=secrets.token_hex(16))
            == []
        )


def test_placeholder_upstream_credential_is_refused_without_echo(tmp_path):
    """An env var still holding an example placeholder is refused; its value is not shown."""
    found = problems_of(tmp_path, GOOD, ACME_PASS="replace-me")
    assert found == [
        (
            "connections.acme-isp.secrets.password: env var ACME_PASS holds a "
            "placeholder, not the credential"
        )
    ]


def test_placeholder_redis_password_is_refused(tmp_path):
    """`REDIS_URL` with the example's PASSWORD placeholder is refused, unprinted."""
    found = problems_of(
        tmp_path, GOOD, REDIS_URL="rediss://invoice-gateway:PASSWORD@redis:6380/0"
    )
    assert found == ["REDIS_URL: its password is a placeholder from an example"]
    assert (
        problems_of(
            tmp_path, GOOD, REDIS_URL=f"redis://gw:{secrets.token_hex(16)}@redis:6379/0"
        )
        == []
    )


def test_a_bad_connection_is_reported_once_not_again_by_the_keys_using_it(tmp_path):
    """A bad base_url is one problem, not also "key names unknown connection"."""
    found = problems_of(
        tmp_path, GOOD.replace("https://api.acme.hubsoft.com.br/", "ftp://x")
    )
    assert found == ["connections.acme-isp.base_url: must be an http(s) URL"]


def test_duplicate_api_key_names_and_hashes_are_refused(tmp_path):
    """Two keys with one name (one idempotency namespace) or one hash are refused."""
    other = hashlib.sha256(b"other").hexdigest()
    text = GOOD + f'\n[[api_keys]]\nname = "portal"\nsha256 = "{other}"\n'
    text += f'\n[[api_keys]]\nname = "console"\nsha256 = "{KEY_HASH}"\n'
    found = problems_of(tmp_path, text)
    assert any("name 'portal' is used twice" in p for p in found)
    assert any("'console' and 'portal' have the same sha256" in p for p in found)
    assert len(found) == 2


def test_the_hash_of_an_empty_key_is_refused(tmp_path):
    """A sha256 of the empty string would let an empty bearer token in: refused."""
    empty = hashlib.sha256(b"").hexdigest()
    found = problems_of(tmp_path, GOOD.replace(KEY_HASH, empty))
    assert found == ["api_keys[0].sha256: is the hash of an empty key"]


def test_metrics_port_must_differ_from_the_api_port(tmp_path):
    """`GATEWAY_METRICS_PORT` is read, and refused when it equals `GATEWAY_PORT`."""
    assert load(tmp_path, GOOD, GATEWAY_METRICS_PORT="9100").metrics_port == 9100
    assert problems_of(
        tmp_path, GOOD, GATEWAY_METRICS_PORT="8080", GATEWAY_PORT="8080"
    ) == ["GATEWAY_METRICS_PORT: must differ from GATEWAY_PORT"]


def test_an_unreadable_file_is_one_problem_not_three(tmp_path):
    """A missing file is reported once, not also as "no connections" and "no API keys"."""
    with pytest.raises(ConfigError) as info:
        load_settings({**ENV, "GATEWAY_CONFIG": str(tmp_path / "nope.toml")}, PROVIDERS)
    assert len(info.value.problems) == 1
    assert "cannot read" in info.value.problems[0]


def test_a_malformed_connections_section_does_not_make_every_key_wrong(tmp_path):
    """`connections` that is not a table is one problem; keys naming ids are not blamed."""
    keys_only = GOOD.split("[connections.acme-isp]", maxsplit=1)[0]
    text = 'connections = "x"\n' + keys_only
    assert problems_of(tmp_path, text) == [
        "connections: must be a table of connection tables"
    ]


def test_resilience_options_load_and_bad_ones_are_all_listed(tmp_path):
    """Breaker, retry budget, pause cap, page cap, document origins: read, or refused."""
    good = GOOD.replace(
        'timezone = "America/Manaus"',
        'timezone = "America/Manaus"\nbreaker_failure_ratio = 0.9\n'
        "breaker_window = 40\nbreaker_min_calls = 15\nbreaker_probes = 2\n"
        "retry_budget_ratio = 1.5\nretry_budget_min = 3\nmax_pause_s = 60\n"
        'max_pages = 50\ndocument_origins = ["https://cdn.example.com"]',
    )
    (conn,) = load(tmp_path, good, GATEWAY_CACHE_MAX_BYTES="1048576").connections
    assert (conn.breaker_failure_ratio, conn.breaker_window, conn.breaker_probes) == (
        0.9,
        40,
        2,
    )
    assert (conn.retry_budget_ratio, conn.max_pause_s, conn.max_pages) == (1.5, 60, 50)
    assert conn.document_origins == ("https://cdn.example.com",)
    bad = GOOD.replace(
        'timezone = "America/Manaus"',
        'timezone = "America/Manaus"\nbreaker_failure_ratio = 1.5\nmax_pages = 0\n'
        'document_origins = ["https://cdn.example.com/path", "ftp://x"]',
    ).replace("https://api.acme", "https://user:pw@api.acme")
    with pytest.raises(ConfigError) as err:
        load(tmp_path, bad, GATEWAY_MAX_CONNECTIONS="-1")
    text = "\n".join(err.value.problems)
    for field in (
        "breaker_failure_ratio",
        "max_pages",
        "document_origins: 'https://cdn.example.com/path'",
        "document_origins: 'ftp://x'",
        "base_url",
        "GATEWAY_MAX_CONNECTIONS",
    ):
        assert field in text, text
    assert "pw" not in text

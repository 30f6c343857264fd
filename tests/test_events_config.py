"""`[events]`, `[[webhooks]]` and `sync_interval_s` in the connections file."""

from __future__ import annotations

import pytest

from gateway.cli.preflight import events_summary
from gateway.config.load import load_settings
from gateway.errors import ConfigError
from tests.events_support import WEBHOOK_SECRET
from tests.test_settings import ENV, GOOD, PROVIDERS

EVENTS = """
[events]
retention_s = 172800
allowed_hosts = ["hooks.internal:443"]

[[webhooks]]
name = "ledger"
url = "https://hooks.internal/invoices"
types = ["invoice.paid"]
connections = ["acme-isp"]
secret_env = "LEDGER_SECRET"
"""


def load(tmp_path, text: str, **env):
    """Settings from `text` plus the base environment."""
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings({**ENV, "GATEWAY_CONFIG": str(path), **env}, PROVIDERS)


def test_webhooks_and_sync_interval_load(tmp_path):
    """A valid subscription loads with its secret from the env; the interval per connection."""
    text = GOOD.replace("timeout_s = 7", "timeout_s = 7\nsync_interval_s = 60")
    settings = load(tmp_path, text + EVENTS, LEDGER_SECRET=WEBHOOK_SECRET)
    [hook] = settings.webhooks
    assert hook.secret.reveal() == WEBHOOK_SECRET
    assert "whsec" not in repr(hook)
    assert hook.wants("invoice.paid", "acme-isp")
    assert not hook.wants("invoice.created", "acme-isp")
    assert settings.events.retention_s == 172800
    assert settings.connections[0].sync_interval_s == 60


def test_every_webhook_problem_is_listed(tmp_path):
    """Unknown keys, a host not allowed, a bad secret and unknown types are all reported."""
    bad = (
        EVENTS.replace("https://hooks.internal/", "https://elsewhere.example/")
        .replace('["invoice.paid"]', '["invoice.nope"]')
        .replace(
            "retention_s = 172800", "retention_s = 172800\ncolour = 1\nclaim_idle_s = 5"
        )
    )
    with pytest.raises(ConfigError) as err:
        load(tmp_path, GOOD + bad, LEDGER_SECRET="not-a-whsec")
    text = "\n".join(err.value.problems)
    assert "events.colour: unknown key" in text
    assert "events.claim_idle_s: must exceed events.delivery_timeout_s" in text
    assert "'elsewhere.example:443' is not in events.allowed_hosts" in text
    assert "webhooks[0].types" in text
    assert "LEDGER_SECRET must hold whsec_" in text
    assert "not-a-whsec" not in text


def test_start_up_line_says_what_is_watched_and_where_events_live(tmp_path):
    """The start-up summary names watched connections, the log (memory: not durable), hooks."""
    text = GOOD.replace("timeout_s = 7", "timeout_s = 7\nsync_interval_s = 60")
    settings = load(tmp_path, text + EVENTS, LEDGER_SECRET=WEBHOOK_SECRET)
    assert events_summary(settings) == (
        "watching acme-isp; log memory (not durable); webhooks ledger"
    )
    assert events_summary(load(tmp_path, GOOD)) == "off"

"""The registry: one line per provider, the package layout says where each part lives."""

from __future__ import annotations

import pytest

import adapters
from gateway.errors import ConfigError
from gateway.upstream.providers import ConnectionKeys


@pytest.mark.parametrize("name", sorted(adapters.PROVIDERS))
def test_every_registered_provider_has_every_part(name):
    """Factory, keys and demo simulator load from the one registry line."""
    assert callable(adapters.load_factory(name))
    assert isinstance(adapters.load_keys(name), ConnectionKeys)
    assert callable(adapters.load_simulator(name))


def test_the_consent_flow_is_found_only_where_there_is_one():
    """Xarios ships `authorize.py`; Hubsoft has none, and says so."""
    assert callable(adapters.load_authorizer("xarios"))
    with pytest.raises(ConfigError, match="needs no interactive authorization"):
        adapters.load_authorizer("hubsoft")


def test_an_unknown_provider_names_the_known_ones():
    """A misspelt provider is refused with the list to choose from."""
    with pytest.raises(ConfigError, match="known: fintera, hubsoft, xarios"):
        adapters.load_factory("hubsfot")


def test_a_package_of_the_wrong_shape_is_a_config_error(monkeypatch):
    """A registry line pointing at a package without the layout is named, not a traceback."""
    monkeypatch.setitem(adapters.PROVIDERS, "broken", "gateway.api")
    with pytest.raises(ConfigError, match=r"gateway\.api\.adapter does not exist"):
        adapters.load_factory("broken")

"""Adapter registry: provider name -> the package that holds it. The only list of vendors.

One line per provider. Its package follows one layout, so the line is all the core needs:
`adapter.py` has the factory `create` and `KEYS` (the `[secrets]`/`[options]` names it
reads), `simulator.py` has `demo_upstream` (the demo runs it; the tests find `contract.py`
beside it), and an optional `authorize.py` has `run` (an interactive consent flow).
Modules are imported on first use, so a deployment pays only for the providers it
configures. Each loader checks what it imported and hands back the core's type for it
(`gateway.upstream.providers`: `AdapterFactory`, `ConnectionKeys`, `DemoBuilder`,
`Authorizer`); a module of the wrong shape is a `ConfigError` naming it, and each module
proves its own types to mypy (a `_conforms` line under its definition).
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import cast

from gateway.errors import ConfigError
from gateway.upstream.providers import (
    AdapterFactory,
    Authorizer,
    ConnectionKeys,
    DemoBuilder,
)

PROVIDERS: dict[str, str] = {
    "hubsoft": "adapters.hubsoft",
    "xarios": "adapters.xarios",
    "fintera": "adapters.fintera",
}


def known_providers() -> list[str]:
    """Provider names a connection may use."""
    return sorted(PROVIDERS)


def package_of(name: str) -> str:
    """The package of a registered provider, or a ConfigError listing the known ones."""
    package = PROVIDERS.get(name)
    if package is None:
        raise ConfigError(
            [f"provider {name!r} is unknown; known: {', '.join(known_providers())}"]
        )
    return package


def _resolve(name: str, module: str, attr: str) -> object:
    path = f"{package_of(name)}.{module}"
    if importlib.util.find_spec(path) is None:
        raise ConfigError([f"provider {name!r}: {path} does not exist"])
    found: object = getattr(importlib.import_module(path), attr, None)
    if found is None:
        raise ConfigError([f"provider {name!r}: {module}.py has no {attr}"])
    return found


def _callable(name: str, module: str, attr: str) -> object:
    found = _resolve(name, module, attr)
    if not callable(found):
        raise ConfigError([f"provider {name!r}: {module}.{attr} is not callable"])
    return found


def load_factory(name: str) -> AdapterFactory:
    """The adapter factory of a provider (`adapter.create`)."""
    return cast("AdapterFactory", _callable(name, "adapter", "create"))


def load_keys(name: str) -> ConnectionKeys:
    """The `[secrets]`/`[options]` names a provider reads (`adapter.KEYS`)."""
    keys = _resolve(name, "adapter", "KEYS")
    if not isinstance(keys, ConnectionKeys):
        raise ConfigError([f"provider {name!r}: KEYS is not a ConnectionKeys"])
    return keys


def load_authorizer(name: str) -> Authorizer:
    """The interactive consent flow of a provider, or a ConfigError if it has none."""
    if importlib.util.find_spec(f"{package_of(name)}.authorize") is None:
        raise ConfigError([f"provider {name!r} needs no interactive authorization"])
    return cast("Authorizer", _callable(name, "authorize", "run"))


def load_simulator(name: str) -> DemoBuilder:
    """The demo simulator builder of a provider (`simulator.demo_upstream`)."""
    return cast("DemoBuilder", _callable(name, "simulator", "demo_upstream"))

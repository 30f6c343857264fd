"""Adapter registry: provider name -> where its factory (and demo simulator) live.

Modules are imported on first use, so a deployment pays only for the providers it
configures. This is the only list of vendors; the core reaches adapters through it.
"""

from __future__ import annotations

import importlib
from typing import Any

from gateway.errors import ConfigError

PROVIDERS: dict[str, str] = {
    "hubsoft": "adapters.hubsoft.adapter:create",
    "xarios": "adapters.xarios.adapter:create",
    "fintera": "adapters.fintera.adapter:create",
}
SIMULATORS: dict[str, str] = {
    "hubsoft": "adapters.hubsoft.simulator:demo_upstream",
    "xarios": "adapters.xarios.simulator:demo_upstream",
    "fintera": "adapters.fintera.simulator:demo_upstream",
}
AUTHORIZERS: dict[str, str] = {
    "xarios": "adapters.xarios.authorize:run",
}


def known_providers() -> list[str]:
    """Provider names a connection may use."""
    return sorted(PROVIDERS)


def _resolve(table: dict[str, str], name: str) -> Any:
    target = table.get(name)
    if target is None:
        raise ConfigError(
            [f"provider {name!r} is unknown; known: {', '.join(known_providers())}"]
        )
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def load_factory(name: str) -> Any:
    """The adapter factory of a provider (`gateway.upstream.providers.AdapterFactory`)."""
    return _resolve(PROVIDERS, name)


def load_keys(name: str) -> Any:
    """The `[secrets]`/`[options]` names a provider reads (`providers.ConnectionKeys`).

    Declared as `KEYS` in the module of the provider's factory.
    """
    module_name = PROVIDERS.get(name, "").partition(":")[0]
    return _resolve({name: f"{module_name}:KEYS"} if module_name else {}, name)


def load_authorizer(name: str) -> Any:
    """The interactive consent flow of a provider, or a ConfigError if it has none."""
    if name not in AUTHORIZERS:
        raise ConfigError([f"provider {name!r} needs no interactive authorization"])
    return _resolve(AUTHORIZERS, name)


def load_simulator(name: str) -> Any:
    """The demo simulator builder of a provider (`gateway.upstream.providers.DemoBuilder`)."""
    return _resolve(SIMULATORS, name)

"""Adapter registry: provider name -> where its factory (and demo simulator) live.

Modules are imported on first use, so a deployment pays only for the providers it
configures. This is the only list of vendors; the core reaches adapters through it. Each
loader hands back the core's type for it (`gateway.upstream.providers`: `AdapterFactory`,
`ConnectionKeys`, `DemoBuilder`, `Authorizer`) after checking what it imported, so a
module of the wrong shape is a `ConfigError` naming it; mypy proves each registered
module's types (`_PROOF`, read by the type checker only).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, cast

from gateway.errors import ConfigError
from gateway.upstream.providers import (
    AdapterFactory,
    Authorizer,
    ConnectionKeys,
    DemoBuilder,
)

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

if (
    TYPE_CHECKING
):  # mypy proves each registered module's shapes; a provider joins here too
    from adapters.fintera import adapter as fintera
    from adapters.fintera import simulator as fintera_sim
    from adapters.hubsoft import adapter as hubsoft
    from adapters.hubsoft import simulator as hubsoft_sim
    from adapters.xarios import adapter as xarios
    from adapters.xarios import authorize as xarios_auth
    from adapters.xarios import simulator as xarios_sim

    _PROOF: tuple[tuple[AdapterFactory, ConnectionKeys, DemoBuilder], ...] = (
        (hubsoft.create, hubsoft.KEYS, hubsoft_sim.demo_upstream),
        (xarios.create, xarios.KEYS, xarios_sim.demo_upstream),
        (fintera.create, fintera.KEYS, fintera_sim.demo_upstream),
    )
    _AUTHORIZERS: tuple[Authorizer, ...] = (xarios_auth.run,)


def known_providers() -> list[str]:
    """Provider names a connection may use."""
    return sorted(PROVIDERS)


def _resolve(table: dict[str, str], name: str) -> object:
    target = table.get(name)
    if target is None:
        raise ConfigError(
            [f"provider {name!r} is unknown; known: {', '.join(known_providers())}"]
        )
    module_name, _, attr = target.partition(":")
    found: object = getattr(importlib.import_module(module_name), attr)
    return found


def _callable(table: dict[str, str], name: str) -> object:
    found = _resolve(table, name)
    if not callable(found):
        raise ConfigError([f"provider {name!r}: {table[name]} is not callable"])
    return found


def load_factory(name: str) -> AdapterFactory:
    """The adapter factory of a provider (each adapter module proves its type)."""
    return cast("AdapterFactory", _callable(PROVIDERS, name))


def load_keys(name: str) -> ConnectionKeys:
    """The `[secrets]`/`[options]` names a provider reads.

    Declared as `KEYS` in the module of the provider's factory.
    """
    module_name = PROVIDERS.get(name, "").partition(":")[0]
    keys = _resolve({name: f"{module_name}:KEYS"} if module_name else {}, name)
    if not isinstance(keys, ConnectionKeys):
        raise ConfigError([f"provider {name!r}: KEYS is not a ConnectionKeys"])
    return keys


def load_authorizer(name: str) -> Authorizer:
    """The interactive consent flow of a provider, or a ConfigError if it has none."""
    if name not in AUTHORIZERS:
        raise ConfigError([f"provider {name!r} needs no interactive authorization"])
    return cast("Authorizer", _callable(AUTHORIZERS, name))


def load_simulator(name: str) -> DemoBuilder:
    """The demo simulator builder of a provider."""
    return cast("DemoBuilder", _callable(SIMULATORS, name))

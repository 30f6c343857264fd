"""Every provider the tests know, each with its simulator and its contract description.

The registry (`adapters.PROVIDERS`) is the list of providers; the tests add
theirs (`TEST_PROVIDERS`, living under `tests/`) for the length of a test only, through
`register_test_providers`, so a deployment never sees them. A provider's contract
description is `contract(today)` in the `contract` module next to its simulator.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, replace
from typing import Any

import aiohttp
import pytest

import adapters
from adapters.simkit import ProviderContract
from gateway.config.settings import ConnectionSettings, Secret
from tests.support import TODAY

# name -> package, exactly as a registry line would say it
TEST_PROVIDERS = {"fourth": "tests.fourth"}


def provider_names() -> list[str]:
    """The registry's providers, then the tests' own."""
    return sorted(adapters.PROVIDERS) + sorted(
        set(TEST_PROVIDERS) - set(adapters.PROVIDERS)
    )


def register_test_providers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put the tests' providers in the registry until the test ends."""
    for name, package in TEST_PROVIDERS.items():
        monkeypatch.setitem(adapters.PROVIDERS, name, package)


def load_contract(name: str) -> ProviderContract:
    """The provider's contract description, from the module beside its simulator."""
    package = adapters.PROVIDERS.get(name) or TEST_PROVIDERS[name]
    described: ProviderContract = importlib.import_module(
        f"{package}.contract"
    ).contract(TODAY)
    return described


def _fill(value: Any, base_url: str) -> Any:
    """Option values with `{base_url}` filled in (the simulator's port is known now)."""
    if isinstance(value, str):
        return value.replace("{base_url}", base_url)
    if isinstance(value, dict):
        return {k: _fill(v, base_url) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, base_url) for v in value]
    return value


@dataclass
class Upstream:
    """One provider's simulator running on loopback, as the contract describes it."""

    name: str
    contract: ProviderContract
    base_url: str

    @property
    def connection_id(self) -> str:
        """The connection id the demo gives this provider."""
        return self.contract.upstream.connection_id

    def connection(self, **kw: Any) -> ConnectionSettings:
        """Connection settings pointing at the simulator; `kw` overrides any field."""
        up = self.contract.upstream
        settings = ConnectionSettings(
            id=up.connection_id,
            provider=up.provider,
            base_url=self.base_url,
            secrets={k: Secret(v) for k, v in up.secrets.items()},
            options=_fill(up.options, self.base_url),
            currency=up.currency,
        )
        if up.rate_limit is not None:
            requests, window = up.rate_limit
            settings = replace(
                settings, rate_limit_requests=requests, rate_limit_window_s=window
            )
        return replace(settings, **kw)

    def set_fault(
        self, name: str, value: Any = True, times: int | None = None, **kw: Any
    ) -> None:
        """Switch one of the simulator's faults on."""
        assert self.contract.upstream.set_fault is not None, (
            f"{self.name} takes no faults"
        )
        self.contract.upstream.set_fault(name, value, times, **kw)

    async def clear_faults(self) -> None:
        """Every fault off, through the simulator's admin route (simkit's, on every one)."""
        async with (
            aiohttp.ClientSession() as http,
            http.delete(f"{self.base_url}/__sim/faults") as resp,
        ):
            assert resp.status == 200

    def calls(self, pattern: str = "") -> int:
        """How many requests the simulator has seen on paths matching `pattern`."""
        return sum(1 for r in self.contract.requests if re.search(pattern, r["path"]))

    def secret_values(self) -> list[str]:
        """The connection's secret values (none may appear in an answer or a log)."""
        return list(self.contract.upstream.secrets.values())

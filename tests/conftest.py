"""Shared fixtures: simulators on real loopback sockets and a gateway wired to them."""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Callable

import aiohttp
import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from adapters import load_factory
from adapters.fintera.simulator import FinteraSimulator
from adapters.hubsoft.simulator import HubsoftSimulator
from adapters.xarios.simulator import XariosSimulator
from gateway.api.edge import GatewayRunner
from gateway.app import create_app
from gateway.config.settings import ConnectionSettings, Settings
from gateway.state.ratelimit import LocalRateLimiter
from gateway.state.tokens import LocalTokenProvider, TokenProvider
from gateway.telemetry.logs import configure_logging
from gateway.upstream.http import UpstreamClient
from gateway.upstream.providers import InvoiceProvider, ProviderContext
from tests.contract import ResponseLog
from tests.providers import Upstream, load_contract, register_test_providers
from tests.support import (
    DOC,
    NOW,
    TODAY,
    RedisClusterProcesses,
    RedisProcess,
    fintera_connection,
    hubsoft_connection,
    make_settings,
    xarios_connection,
)


@pytest.fixture
def hubsoft_sim() -> HubsoftSimulator:
    """A seeded Hubsoft tenant whose 'today' is fixed."""
    return HubsoftSimulator(today=TODAY)


@pytest.fixture
async def hubsoft_url(hubsoft_sim, aiohttp_server) -> str:
    """The simulator served on a loopback port."""
    server: TestServer = await aiohttp_server(hubsoft_sim.app())
    return str(server.make_url("")).rstrip("/")


class GatewayTestServer(TestServer):
    """A test server running the app as production does: through `GatewayRunner`.

    `observe(request, response)` sees every answer the server gives, the fast lane's
    included (an `on_response_prepare` signal would turn the lane off).
    """

    def __init__(self, app: web.Application, *, observe=None, **kwargs) -> None:
        """As `TestServer`, and who observes the answers (None: nobody)."""
        super().__init__(app, **kwargs)
        self._observe = observe

    async def _make_runner(self, **kwargs) -> GatewayRunner:
        return GatewayRunner(self.app, **kwargs)

    async def start_server(self, **kwargs) -> None:
        """Serve; every answer passes `observe` on its way out."""
        await super().start_server(**kwargs)
        if self._observe is None:
            return
        server = self.runner.server
        answer, observe = server.request_handler, self._observe

        async def observed(request: web.BaseRequest) -> web.StreamResponse:
            response = await answer(request)
            await observe(request, response)
            return response

        server.request_handler = observed


@pytest.fixture
def response_log() -> ResponseLog:
    """What the test's gateways answered; checked against the OpenAPI document after."""
    return ResponseLog()


@pytest.fixture
def gateway_factory(aiohttp_client, response_log) -> Callable:
    """Build a gateway test client for the given settings (fixed clock).

    Every response it gives is validated against `/openapi.json` when the test ends,
    and any 500 fails the test.
    """

    async def build(settings: Settings, **kw) -> TestClient:
        app = create_app(settings, now=lambda: NOW, **kw)
        return await aiohttp_client(GatewayTestServer(app, observe=response_log.record))

    yield build
    violations = response_log.violations()
    assert not violations, "responses outside the contract:\n" + "\n".join(violations)


@pytest.fixture
async def gateway(gateway_factory, hubsoft_url) -> TestClient:
    """A gateway with one Hubsoft connection `acme-isp`, memory cache."""
    return await gateway_factory(make_settings(hubsoft_connection(hubsoft_url)))


@pytest.fixture
def xarios_sim() -> XariosSimulator:
    """A seeded Xarios account (5 tenants x 14 months) with its identity server."""
    return XariosSimulator(today=TODAY)


@pytest.fixture
async def xarios_url(xarios_sim, aiohttp_server) -> str:
    """The Xarios simulator on a loopback port."""
    server: TestServer = await aiohttp_server(xarios_sim.app())
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def fintera_sim() -> FinteraSimulator:
    """A seeded Fintera user (two accounts, two entities), 60 requests a minute."""
    return FinteraSimulator(today=TODAY)


@pytest.fixture
async def fintera_url(fintera_sim, aiohttp_server) -> str:
    """The Fintera simulator on a loopback port."""
    server: TestServer = await aiohttp_server(fintera_sim.app())
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def upstream_factory(aiohttp_server, monkeypatch) -> Callable:
    """Start a provider's simulator (as its contract describes it) on a loopback port.

    The tests' own providers are in the registry while the test runs.
    """
    register_test_providers(monkeypatch)

    async def start(name: str) -> Upstream:
        contract = load_contract(name)
        server: TestServer = await aiohttp_server(contract.upstream.app)
        return Upstream(name, contract, str(server.make_url("")).rstrip("/"))

    return start


@pytest.fixture
async def make_provider() -> Callable:
    """Adapters built through the registry on one shared session, closed after the test.

    `tokens` defaults to a fresh in-process provider per adapter; `limit` paces calls
    (requests per `window` seconds) like a configured connection.
    """
    async with aiohttp.ClientSession() as session:

        def build(
            conn: ConnectionSettings,
            tokens: TokenProvider | None = None,
            limit: int | None = None,
            window: float = 60.0,
        ) -> InvoiceProvider:
            http = UpstreamClient(
                session,
                conn.id,
                conn.base_url,
                conn.timeout_s,
                limiter=LocalRateLimiter(limit, window),
            )
            ctx = ProviderContext(
                conn, http, tokens or LocalTokenProvider(), now=lambda: NOW
            )
            factory: Callable[[ProviderContext], InvoiceProvider] = load_factory(
                conn.provider
            )
            return factory(ctx)

        yield build


@pytest.fixture
def demo_connections(hubsoft_url, xarios_url, xarios_sim, fintera_url) -> Callable:
    """The three providers' connections as the demo runs them (`kw` for every one).

    Xarios knows Maria's CPF as its first tenant, so one customer spans all three.
    """

    def build(**kw) -> tuple[ConnectionSettings, ...]:
        return (
            hubsoft_connection(hubsoft_url, **kw),
            xarios_connection(
                xarios_url,
                xarios_sim.issue_refresh_token(),
                currency="USD",
                options={"document_tenants": {DOC: xarios_sim.tenant_id(0)}},
                **kw,
            ),
            fintera_connection(fintera_url, **kw),
        )

    return build


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server on a free loopback port, stopped after the test.

    Fails (never skips) when the binary is missing: `make test` installs it.
    """
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed (make test installs it with apt)"
    server = RedisProcess(binary, tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A 3-master Redis Cluster for the whole session (flushed before each use)."""
    binary, cli = shutil.which("redis-server"), shutil.which("redis-cli")
    assert binary, "redis-server missing (make test installs it with apt)"
    assert cli, "redis-cli missing (make test installs it with apt)"
    cluster = RedisClusterProcesses(binary, cli, tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def json_logs():
    """The production JSON configuration writing to a buffer; default structlog after.

    `json_logs(level)` (re)configures it and gives the buffer (`support.log_lines`).
    """
    stream = io.BytesIO()

    def configure(level: str = "info") -> io.BytesIO:
        configure_logging("json", level, stream=stream)
        # No logger may keep this configuration past the test (other tests capture logs).
        structlog.configure(cache_logger_on_first_use=False)
        return stream

    yield configure
    structlog.reset_defaults()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    logging.captureWarnings(capture=False)

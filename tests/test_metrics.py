"""Prometheus metrics: requests, upstream calls, sources, breaker, tokens, Redis."""

from __future__ import annotations

import aiohttp

from gateway.config.settings import Secret
from gateway.telemetry.metrics import Metrics
from tests.support import API_KEY, free_port_pair, hubsoft_connection, make_settings

AUTH = {"Authorization": f"Bearer {API_KEY}"}


async def test_metrics_count_what_happened_and_leak_nothing(gateway, hubsoft_sim):
    """After a list request the counters show it; no key, token or customer appears."""
    await gateway.get("/v1/invoices?customer_document=12345678909", headers=AUTH)
    await gateway.get("/v1/nope", headers=AUTH)
    hubsoft_sim.set_fault("status", 503)
    await gateway.get("/v1/invoices?customer_document=11144477735", headers=AUTH)
    resp = await gateway.get("/metrics")
    text = await resp.text()
    assert resp.status == 200
    assert 'gateway_requests_total{route="/v1/invoices",status="200"} 1.0' in text
    assert 'gateway_requests_total{route="/v1/invoices",status="502"} 1.0' in text
    assert 'gateway_requests_total{route="unmatched",status="404"} 1.0' in text
    assert 'gateway_upstream_calls_total{connection="acme-isp",outcome="2xx"}' in text
    assert (
        'gateway_upstream_calls_total{connection="acme-isp",outcome="5xx"} 2.0' in text
    )
    assert (
        'gateway_source_outcomes_total{connection="acme-isp",from_cache="false",status="ok"} 1.0'
        in text
    )
    assert 'gateway_breaker_state{connection="acme-isp"} 0.0' in text
    assert 'gateway_token_refreshes_total{connection="acme-isp"} 1.0' in text
    assert 'gateway_upstream_up{connection="acme-isp"} 0.0' in text
    for secret in (API_KEY, "12345678909", "demo-client-secret", "eyJ0eXAi"):
        assert secret not in text


async def test_redis_availability_is_a_metric(
    gateway_factory, hubsoft_url, redis_server
):
    """`gateway_redis_up` follows Redis."""
    client = await gateway_factory(
        make_settings(
            hubsoft_connection(hubsoft_url), redis_url=Secret(redis_server.url)
        )
    )
    await client.get("/v1/invoices?customer_document=12345678909", headers=AUTH)
    assert "gateway_redis_up 1.0" in await (await client.get("/metrics")).text()
    redis_server.stop()
    await client.get("/v1/invoices?customer_document=11144477735", headers=AUTH)
    assert "gateway_redis_up 0.0" in await (await client.get("/metrics")).text()


async def test_metrics_port_serves_metrics_apart_from_the_api(
    gateway_factory, hubsoft_url
):
    """With `metrics_port`, /metrics answers there only; the API port says 404."""
    port = free_port_pair()
    client = await gateway_factory(
        make_settings(hubsoft_connection(hubsoft_url), metrics_port=port)
    )
    await client.get("/v1/invoices?customer_document=12345678909", headers=AUTH)
    assert (await client.get("/metrics")).status == 404
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/metrics") as resp,
    ):
        text = await resp.text()
    assert resp.status == 200
    assert 'gateway_requests_total{route="/v1/invoices",status="200"} 1.0' in text


def test_created_series_follow_prometheus_clients_switch(monkeypatch):
    """`PROMETHEUS_DISABLE_CREATED_SERIES` drops every `_created` series, tallies too."""
    metrics = Metrics()
    metrics.request("/v1/invoices", 200, 0.01)
    metrics.source("acme-isp", "ok", from_cache=True)
    shown = metrics.render().decode()
    assert 'gateway_requests_created{route="/v1/invoices",status="200"}' in shown
    assert 'gateway_request_duration_seconds_created{route="/v1/invoices"}' in shown
    monkeypatch.setenv("PROMETHEUS_DISABLE_CREATED_SERIES", "True")
    hidden = metrics.render().decode()
    assert "_created" not in hidden
    assert 'gateway_requests_total{route="/v1/invoices",status="200"} 1.0' in hidden
    assert 'gateway_request_duration_seconds_count{route="/v1/invoices"} 1.0' in hidden

"""Prometheus metrics: what operators graph and alert on, per process.

Counters and histograms are updated where things happen (the request pipeline, the
upstream funnel, the fan-out); states that already exist elsewhere (breaker, upstream
health, token refreshes, Redis) are read at scrape time by a collector instead of being
copied. Labels are routes, connections and outcomes only — never a customer, an id or a
credential — so cardinality stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
HEALTH_STATES = {"unknown": -1, "down": 0, "up": 1}


class Metrics:
    """One registry per app (so tests and several apps per process never collide)."""

    def __init__(self) -> None:
        """Create the instruments."""
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "gateway_request_duration_seconds",
            "Time to answer, by route",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_calls = Counter(
            "gateway_upstream_calls",
            "Upstream HTTP calls, by connection and outcome",
            ["connection", "outcome"],
            registry=r,
        )
        self.upstream_seconds = Histogram(
            "gateway_upstream_duration_seconds",
            "Upstream call latency, by connection",
            ["connection"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.sources = Counter(
            "gateway_source_outcomes",
            "Per-source results of list requests",
            ["connection", "status", "from_cache"],
            registry=r,
        )

        # Label children by values: `labels()` takes a lock and validates on every call.
        self._children: dict[tuple[int | str, ...], Any] = {}

    def _child(self, metric: Any, *values: str) -> Any:
        key: tuple[int | str, ...] = (id(metric), *values)  # metrics live as long
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    def request(self, route: str, status: str, seconds: float) -> None:
        """Record one answered request."""
        self._child(self.requests, route, status).inc()
        self._child(self.request_seconds, route).observe(seconds)

    def source(self, connection: str, status: str, from_cache: bool) -> None:
        """Record one source's part in a list answer."""
        cached = "true" if from_cache else "false"
        self._child(self.sources, connection, status, cached).inc()

    def upstream(self, connection: str, outcome: str, seconds: float) -> None:
        """Record one upstream call (`2xx`, `4xx`, `5xx`, `timeout`, `error`)."""
        self.upstream_calls.labels(connection, outcome).inc()
        self.upstream_seconds.labels(connection).observe(seconds)

    def watch(self, collect: Callable[[], Iterable[Metric]]) -> None:
        """Add state read at scrape time."""
        self.registry.register(_StateCollector(collect))

    def render(self) -> bytes:
        """The exposition text."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()

    def describe(self) -> Iterable[Metric]:
        return []


def gauge(name: str, documentation: str, label: str) -> GaugeMetricFamily:
    """A labelled gauge family for state collectors."""
    return GaugeMetricFamily(name, documentation, labels=[label])


def counter(name: str, documentation: str, label: str) -> CounterMetricFamily:
    """A labelled counter family for state collectors."""
    return CounterMetricFamily(name, documentation, labels=[label])

"""Prometheus metrics: what operators graph and alert on, per process.

Counters and histograms are tallied where things happen (the request pipeline, the
upstream funnel, the fan-out) into plain dicts, and rendered into Prometheus families at
scrape time: a request costs a dict update, not a client library's locked, validated
instrument. States that already exist elsewhere (breaker, upstream health, token
refreshes, Redis) are read at scrape time too, instead of being copied. Labels are
routes, connections and outcomes only — never a customer, an id or a credential — so
cardinality stays bounded.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from itertools import accumulate

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
HEALTH_STATES = {"unknown": -1, "down": 0, "up": 1}
_LE = [repr(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]  # as `Histogram` labels


def created_series() -> bool:
    """Whether `_created` series are exposed (`PROMETHEUS_DISABLE_CREATED_SERIES` unset).

    The switch prometheus_client's own instruments read, read the same way: the tallies
    here follow it too, so an operator turning the series off gets none of them.
    """
    switch = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False")
    return switch.lower() not in ("true", "1", "t")


def source_labels(connection: str, status: str, from_cache: bool) -> tuple[str, ...]:
    """A source outcome's label values (`Metrics.sources`)."""
    return (connection, status, "true" if from_cache else "false")


class Tally:
    """A counter by label values: a dict entry bumped per event, rendered at scrape time.

    What `prometheus_client.Counter` exposes (`_total` and `_created` per series) for a
    fraction of its cost per event: no lock (one event loop thread updates and scrapes),
    no label validation (the label values are routes, connections and outcomes).
    """

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        """`name` without `_total`, as `Counter` takes it."""
        self.name, self.documentation, self.labels = name, documentation, labels
        self.counts: dict[tuple[str, ...], float] = {}
        self.created: dict[tuple[str, ...], float] = {}

    def inc(self, values: tuple[str, ...]) -> None:
        """Count one event for these label values."""
        counts = self.counts
        if values in counts:
            counts[values] += 1
        else:
            counts[values] = 1
            self.created[values] = time.time()

    def inc_each(self, each: Iterable[tuple[str, ...]]) -> None:
        """Count one event for each of these label values (one call for a page's)."""
        counts = self.counts
        for values in each:
            if values in counts:
                counts[values] += 1
            else:
                counts[values] = 1
                self.created[values] = time.time()

    def family(self) -> Metric:
        """The series as they stand."""
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        created = self.created if created_series() else {}
        for values, count in self.counts.items():
            family.add_metric(list(values), count, created=created.get(values))
        return family


class Latencies:
    """A latency histogram by label values (`LATENCY_BUCKETS`), rendered at scrape time."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...]) -> None:
        """As `Histogram` takes them."""
        self.name, self.documentation, self.labels = name, documentation, labels
        # Per series: one count per bucket (the last: above every bound), the sum.
        self.series: dict[tuple[str, ...], tuple[list[int], list[float]]] = {}
        self.created: dict[tuple[str, ...], float] = {}

    def observe(self, values: tuple[str, ...], seconds: float) -> None:
        """Record one duration for these label values."""
        found = self.series.get(values)
        if found is None:
            found = self.series[values] = ([0] * len(_LE), [0.0])
            self.created[values] = time.time()
        counts, total = found
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1  # `le`: bounds inclusive
        total[0] += seconds

    def family(self) -> Metric:
        """The series as they stand (cumulative buckets, as Prometheus reads them)."""
        family = HistogramMetricFamily(
            self.name, self.documentation, labels=self.labels
        )
        created = created_series()
        for values, (counts, total) in self.series.items():
            family.add_metric(
                list(values),
                list(zip(_LE, map(float, accumulate(counts)), strict=True)),
                total[0],
            )
            if created:
                family.add_sample(
                    self.name + "_created",
                    dict(zip(self.labels, values, strict=True)),
                    self.created[values],
                )
        return family


class Metrics:
    """One registry per app (so tests and several apps per process never collide)."""

    def __init__(self) -> None:
        """Create the instruments."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Tally(
            "gateway_requests",
            "Requests answered, by route and status",
            ("route", "status"),
        )
        self.request_seconds = Latencies(
            "gateway_request_duration_seconds", "Time to answer, by route", ("route",)
        )
        self.upstream_calls = Tally(
            "gateway_upstream_calls",
            "Upstream HTTP calls, by connection and outcome",
            ("connection", "outcome"),
        )
        self.upstream_seconds = Latencies(
            "gateway_upstream_duration_seconds",
            "Upstream call latency, by connection",
            ("connection",),
        )
        self.sources = Tally(
            "gateway_source_outcomes",
            "Per-source results of list requests",
            ("connection", "status", "from_cache"),
        )
        instruments = (
            self.requests,
            self.request_seconds,
            self.upstream_calls,
            self.upstream_seconds,
            self.sources,
        )
        self.watch(lambda: [each.family() for each in instruments])

    def request(self, route: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        self.requests.inc((route, str(status)))
        self.request_seconds.observe((route,), seconds)

    def source(self, connection: str, status: str, from_cache: bool) -> None:
        """Record one source's part in a list answer."""
        self.sources.inc(source_labels(connection, status, from_cache))

    def upstream(self, connection: str, outcome: str, seconds: float) -> None:
        """Record one upstream call (`2xx`, `4xx`, `5xx`, `timeout`, `error`)."""
        self.upstream_calls.inc((connection, outcome))
        self.upstream_seconds.observe((connection,), seconds)

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

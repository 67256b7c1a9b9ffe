"""Prometheus metrics for ``GET /metrics``: the view's gauges, rendered once per view, and the
live series (data ages, provider errors, requests) in the reporter's own registry.

At 5,000 nodes the view's gauges are over 10,000 samples, and formatting them is most of a
scrape; they change only when the view does (a new snapshot, a node or Stellar pod change), so
``Exposition`` keeps their text per view and only the few live series are formatted per scrape.
A region whose intensity is unknown has no sample at all: an absent series is honest, a 0 would
read as a perfectly clean grid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from reporter.regions import RegionRow
from reporter.views import View, ViewCache
from shared.core.clock import Clock
from shared.core.models import Freshness

ProviderErrors = Callable[[], Mapping[tuple[str, str], float]]
"""Cumulative provider errors by (provider, error kind), e.g. from the provider chain."""


class ViewCollector(Collector):
    """The gauges that depend on the view alone: intensity, nodes, read replicas."""

    def __init__(self, view: View) -> None:
        self._view = view

    def describe(self) -> Iterable[Metric]:
        # Describing nothing keeps registration from calling collect().
        return []

    def collect(self) -> Iterator[Metric]:
        view = self._view
        yield from self._regions(view.regions)
        yield from self._nodes(view)
        yield from self._replicas(view)

    def _regions(self, rows: Iterable[RegionRow]) -> Iterator[Metric]:
        intensity = GaugeMetricFamily(
            "stellar_carbon_region_intensity_gco2eq_per_kwh",
            "Current grid carbon intensity of a region, gCO2eq/kWh (absent when unknown).",
            labels=["region", "zone"],
        )
        expected = GaugeMetricFamily(
            "stellar_carbon_region_expected_intensity_gco2eq_per_kwh",
            "Time-weighted mean intensity over the ranking horizon (current value and forecast).",
            labels=["region"],
        )
        fresh = GaugeMetricFamily(
            "stellar_carbon_region_data_freshness",
            "1 for the freshness of the region's current value: live, stale or static.",
            labels=["region", "freshness", "source"],
        )
        for row in rows:
            current = row.current
            if current is None:
                continue
            zone = row.info.zone if row.info is not None and row.info.zone else ""
            intensity.add_metric([row.region, zone], current.g_per_kwh)
            if row.expected_g_per_kwh is not None:
                expected.add_metric([row.region], row.expected_g_per_kwh)
            provenance = current.provenance
            fresh.add_metric([row.region, str(provenance.freshness), provenance.provider], 1)
        yield from (intensity, expected, fresh)

    def _nodes(self, view: View) -> Iterator[Metric]:
        power = GaugeMetricFamily(
            "stellar_carbon_node_power_watts",
            "Estimated IT power of a node (Cloud Carbon Footprint coefficients), W.",
            labels=["node", "region"],
        )
        emissions = GaugeMetricFamily(
            "stellar_carbon_node_emissions_gco2eq_per_hour",
            "Estimated operational emissions of a node, gCO2eq/h (absent when intensity unknown).",
            labels=["node", "region"],
        )
        for fp in view.footprints:
            labels = [fp.node.name, fp.node.region or ""]
            power.add_metric(labels, fp.power.watts)
            if fp.emissions is not None:
                emissions.add_metric(labels, fp.emissions.g_per_hour)
        cluster = GaugeMetricFamily(
            "stellar_carbon_cluster_emissions_gco2eq_per_hour",
            "Estimated operational emissions of all nodes with a known intensity, gCO2eq/h.",
        )
        total = view.totals.get("gCO2eqPerHour")
        if total is not None:
            cluster.add_metric([], float(total))
        yield from (power, emissions, cluster)

    def _replicas(self, view: View) -> Iterator[Metric]:
        placement = view.placement
        counts = GaugeMetricFamily(
            "stellar_carbon_read_replicas",
            "Read-replica pods: all, carbon-aware (annotated), in the greenest eligible region,"
            " constrained (their own rules limited carbon placement).",
            labels=["state"],
        )
        counts.add_metric(["total"], placement.total)
        counts.add_metric(["carbon_aware"], placement.carbon_aware)
        counts.add_metric(["in_greenest_region"], placement.in_greenest)
        counts.add_metric(["constrained"], placement.constrained)
        constrained = GaugeMetricFamily(
            "stellar_carbon_read_replicas_constrained",
            "Read-replica pods whose stellar.org/carbon-constraint names this rule.",
            labels=["constraint"],
        )
        for rule, replicas in placement.constraints.items():
            constrained.add_metric([rule], replicas)
        actual = GaugeMetricFamily(
            "stellar_carbon_read_replica_emissions_gco2eq_per_hour",
            "Estimated emissions of the read replicas where they run, gCO2eq/h.",
        )
        baseline = GaugeMetricFamily(
            "stellar_carbon_read_replica_baseline_emissions_gco2eq_per_hour",
            "The same replicas spread evenly over the eligible regions, gCO2eq/h.",
        )
        savings = GaugeMetricFamily(
            "stellar_carbon_read_replica_savings_ratio",
            "1 - actual/baseline emissions of the read replicas (negative: worse than even).",
        )
        if placement.g_per_hour is not None:
            actual.add_metric([], placement.g_per_hour)
        if placement.baseline_g_per_hour is not None:
            baseline.add_metric([], placement.baseline_g_per_hour)
        if placement.savings_pct is not None:
            savings.add_metric([], placement.savings_pct / 100)
        yield from (counts, constrained, actual, baseline, savings)


class LiveCollector(Collector):
    """The series that change between views: data ages and provider errors."""

    def __init__(
        self, views: ViewCache, clock: Clock, provider_errors: ProviderErrors | None = None
    ) -> None:
        self._views = views
        self._clock = clock
        self._provider_errors = provider_errors

    def describe(self) -> Iterable[Metric]:
        # Describing nothing keeps registration from calling collect() (and building a view).
        return []

    def collect(self) -> Iterator[Metric]:
        view = self._views.current()
        now = self._clock()
        age = GaugeMetricFamily(
            "stellar_carbon_region_data_age_seconds",
            "Seconds since the start of the interval the current value describes (not static).",
            labels=["region"],
        )
        for row in view.regions:
            current = row.current
            if current is not None and current.provenance.freshness is not Freshness.STATIC:
                age.add_metric([row.region], _age(current.observed_at, now))
        yield age
        yield from self._errors()
        snapshot_age = GaugeMetricFamily(
            "stellar_carbon_snapshot_age_seconds",
            "Seconds since the carbon snapshot the reporter serves was taken.",
        )
        if view.snapshot.regions:
            snapshot_age.add_metric([], _age(view.snapshot.taken_at, now))
        yield snapshot_age

    def _errors(self) -> Iterator[Metric]:
        errors = CounterMetricFamily(
            "stellar_carbon_provider_errors",
            "Provider calls that failed, by provider and error kind.",
            labels=["provider", "kind"],
        )
        if self._provider_errors is not None:
            for (provider, kind), count in sorted(self._provider_errors().items()):
                errors.add_metric([provider, kind], count)
        yield errors


def _age(at: datetime, now: datetime) -> float:
    return max(0.0, (now - at).total_seconds())


class Exposition:
    """The text ``GET /metrics`` answers: the current view's gauges, formatted once per view,
    then the live series and the request counter, formatted per scrape."""

    def __init__(
        self, views: ViewCache, clock: Clock, provider_errors: ProviderErrors | None = None
    ) -> None:
        self._views = views
        self.registry = CollectorRegistry(auto_describe=False)
        """The live series; ``requests`` counts HTTP requests by route and status."""
        self.registry.register(LiveCollector(views, clock, provider_errors))
        self.requests = Counter(
            "stellar_carbon_reporter_requests",
            "HTTP requests answered, by route and status code.",
            labelnames=["route", "method", "status"],
            registry=self.registry,
        )
        self._rendered: tuple[View, bytes] | None = None
        self.renders = 0
        """How many times the view's gauges were formatted (observability and tests)."""

    def render(self) -> bytes:
        view = self._views.current()
        rendered = self._rendered
        if rendered is None or rendered[0] is not view:
            registry = CollectorRegistry(auto_describe=False)
            registry.register(ViewCollector(view))
            rendered = self._rendered = (view, generate_latest(registry))
            self.renders += 1
        return rendered[1] + generate_latest(self.registry)

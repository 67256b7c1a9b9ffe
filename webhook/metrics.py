"""Prometheus metrics of one webhook process, in its own registry (tests may build several).

Gauges that describe shared state (carbon data age, inventory size) are computed at scrape time
from the same in-memory sources the admission path reads, so they can never drift from them.
"""

from __future__ import annotations

import logging
import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory
from shared.cluster.workloads import WatchStats
from shared.core.clock import Clock

WatchSource = Callable[[], Sequence[WatchStats]]
"""The workload watches' state (``KubeWorkloads.stats``); empty when there are none."""

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
"""0.5 ms … 100 ms: the admission path only reads memory; anything near 100 ms is a problem."""


class WebhookMetrics:
    """Admission outcomes and latency, bad requests, carbon data age, inventory and workload
    watch sizes, and restricted pods left unschedulable."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.admissions = OutcomeCounter(
            "stellar_carbon_webhook_admissions",
            "Admission reviews answered, by outcome: mutated, skipped:<reason> or error.",
        )
        self.registry.register(self.admissions)
        self.latency = LatencyHistogram(
            "stellar_carbon_webhook_admission_duration_seconds",
            "Time from receiving an AdmissionReview to having its response ready.",
            LATENCY_BUCKETS,
        )
        self.registry.register(self.latency)
        self.bad_requests = Counter(
            "stellar_carbon_webhook_bad_requests",
            "Requests to /mutate rejected with 400 because the body was not an AdmissionReview.",
            registry=self.registry,
        )
        self.carbon_data_age = Gauge(
            "stellar_carbon_webhook_carbon_data_age_seconds",
            "Seconds since the carbon snapshot used for decisions was taken (NaN when unknown).",
            registry=self.registry,
        )
        self.inventory_nodes = Gauge(
            "stellar_carbon_webhook_inventory_nodes",
            "Nodes in the inventory the webhook checks eligibility against.",
            registry=self.registry,
        )
        self.restricted_unschedulable = Gauge(
            "stellar_carbon_webhook_restricted_pods_unschedulable",
            "Unbound pods the webhook restricted to a required region set, unschedulable for"
            " longer than the grace period now.",
            registry=self.registry,
        )
        self.restricted_stranded = Counter(
            "stellar_carbon_webhook_restricted_pods_stranded",
            "Pods the webhook restricted to a required region set that were ever unschedulable"
            " for longer than the grace period (each pod counted once).",
            registry=self.registry,
        )
        self._watches = _WatchCollector()
        self.registry.register(self._watches)
        self.certificate_reloads = Counter(
            "stellar_carbon_webhook_certificate_reloads",
            "Serving certificates installed after startup (file change or rotation).",
            registry=self.registry,
        )

    def bind(
        self,
        *,
        snapshot_source: Callable[[], CarbonSnapshot],
        inventory: Inventory,
        clock: Clock,
        watches: WatchSource = tuple,
    ) -> None:
        """Compute the state gauges from these sources at every scrape."""
        self._watches.source = watches

        def carbon_age() -> float:
            try:
                return (clock() - snapshot_source().taken_at).total_seconds()
            except Exception:
                logger.exception("cannot compute the carbon data age")
                return math.nan

        def nodes() -> float:
            try:
                return float(len(inventory.nodes))
            except Exception:
                logger.exception("cannot count inventory nodes")
                return math.nan

        self.carbon_data_age.set_function(carbon_age)
        self.inventory_nodes.set_function(nodes)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        """One sample of the registry, for tests and debugging."""
        return self.registry.get_sample_value(name, labels or {})

    def observe(self, outcome: str, seconds: float) -> None:
        self.admissions.inc(outcome)
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def admissions_count(self, outcome: str) -> float:
        """Current count for one outcome label (0 when never seen)."""
        value = self.registry.get_sample_value(
            "stellar_carbon_webhook_admissions_total", {"outcome": outcome}
        )
        return value or 0.0


class OutcomeCounter(Collector):
    """A counter labelled ``outcome``, exposed exactly as ``prometheus_client.Counter`` exposes
    one (``_total`` and ``_created`` per outcome).

    It exists for the reason ``LatencyHistogram`` does: ``Counter.inc`` takes a lock for each
    admission; here it is one dictionary update on the event loop's thread, which scrapes share."""

    def __init__(self, name: str, documentation: str) -> None:
        self.name = name
        self.documentation = documentation
        self._counts: dict[str, int] = {}
        self._created: dict[str, float] = {}

    def inc(self, outcome: str) -> None:
        counts = self._counts
        if outcome in counts:
            counts[outcome] += 1
        else:
            counts[outcome] = 1
            self._created[outcome] = time.time()

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(self.name, self.documentation, labels=["outcome"])
        for outcome, count in list(self._counts.items()):
            family.add_metric([outcome], float(count), created=self._created[outcome])
        yield family

    def describe(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, labels=["outcome"])


class LatencyHistogram(Collector):
    """A histogram with one unlabelled series, exposed exactly as ``prometheus_client.Histogram``
    exposes it (``_bucket`` per bound and ``+Inf``, ``_count``, ``_sum``, ``_created``).

    It exists because ``Histogram.observe`` takes a lock and walks every bound for each
    admission; here an observation is one ``bisect`` and two additions. Observations and scrapes
    both run on the event loop's thread, so nothing else can see a half-made update."""

    def __init__(self, name: str, documentation: str, bounds: Sequence[float]) -> None:
        self.name = name
        self.documentation = documentation
        self._bounds = tuple(sorted(bounds))
        # Formatted as prometheus_client formats a ``Histogram``'s bounds (the library leaves
        # this helper untyped).
        labels = [floatToGoString(b) for b in self._bounds]  # type: ignore[no-untyped-call]
        self._labels: tuple[str, ...] = (*labels, "+Inf")
        # One slot per bound plus +Inf, not cumulative: cumulated at scrape time.
        self._counts = [0] * len(self._labels)
        self._sum = 0.0
        self._created = time.time()

    def observe(self, seconds: float) -> None:
        # A bound is an inclusive upper limit (``le``): ``bisect_left`` finds the first one
        # that is not below ``seconds``.
        self._counts[bisect_left(self._bounds, seconds)] += 1
        self._sum += seconds

    def collect(self) -> Iterator[HistogramMetricFamily]:
        buckets: list[tuple[str, float]] = []
        total = 0
        for label, count in zip(self._labels, self._counts, strict=True):
            total += count
            buckets.append((label, float(total)))
        family = HistogramMetricFamily(
            self.name, self.documentation, buckets=buckets, sum_value=self._sum
        )
        family.samples.append(Sample(f"{self.name}_created", {}, self._created, None, None))
        yield family

    def describe(self) -> Iterator[HistogramMetricFamily]:
        yield HistogramMetricFamily(self.name, self.documentation)


class _WatchCollector(Collector):
    """Objects kept by each workload watch and seconds since it last heard from the API server."""

    def __init__(self) -> None:
        self.source: WatchSource = tuple

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objects = GaugeMetricFamily(
            "stellar_carbon_webhook_workload_objects",
            "Objects each workload watch keeps (StatefulSets, namespaces, bound and restricted"
            " pods).",
            labels=["resource"],
        )
        age = GaugeMetricFamily(
            "stellar_carbon_webhook_workload_watch_age_seconds",
            "Seconds since each workload watch last listed or received an event, bookmarks"
            " included (NaN before its first list).",
            labels=["resource"],
        )
        try:
            stats = self.source()
        except Exception:
            logger.exception("cannot read the workload watches")
            stats = ()
        now = time.monotonic()
        for watch in stats:
            objects.add_metric([watch.resource], watch.objects)
            heard = math.nan if watch.heard_at is None else now - watch.heard_at
            age.add_metric([watch.resource], heard)
        yield objects
        yield age

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Described without collecting, so registering never reads a source not bound yet.
        yield GaugeMetricFamily("stellar_carbon_webhook_workload_objects", "", labels=["resource"])
        yield GaugeMetricFamily(
            "stellar_carbon_webhook_workload_watch_age_seconds", "", labels=["resource"]
        )

"""Prometheus metrics of one webhook process, in its own registry (tests may build several).

Gauges that describe shared state (carbon data age, inventory size) are computed at scrape time
from the same in-memory sources the admission path reads, so they can never drift from them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory
from shared.core.clock import Clock

logger = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)
"""0.5 ms … 100 ms: the admission path only reads memory; anything near 100 ms is a problem."""


class WebhookMetrics:
    """Admission outcomes and latency, bad requests, carbon data age and inventory size."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.admissions = Counter(
            "stellar_carbon_webhook_admissions",
            "Admission reviews answered, by outcome: mutated, skipped:<reason> or error.",
            ["outcome"],
            registry=self.registry,
        )
        # One child per outcome label, looked up once: ``labels()`` takes a lock on every call.
        self._outcomes: dict[str, Counter] = {}
        self.latency = Histogram(
            "stellar_carbon_webhook_admission_duration_seconds",
            "Time from receiving an AdmissionReview to having its response ready.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
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
    ) -> None:
        """Compute the state gauges from these sources at every scrape."""

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

    def observe(self, outcome: str, seconds: float) -> None:
        counter = self._outcomes.get(outcome)
        if counter is None:
            counter = self._outcomes[outcome] = self.admissions.labels(outcome=outcome)
        counter.inc()
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def admissions_count(self, outcome: str) -> float:
        """Current count for one outcome label (0 when never seen)."""
        value = self.registry.get_sample_value(
            "stellar_carbon_webhook_admissions_total", {"outcome": outcome}
        )
        return value or 0.0

"""Prometheus metrics of the Karmada controller, in its own registry (tests may build several).

Per policy and cluster: the weight held or written, the replicas Karmada's division gives the
cluster under it, and the expected intensity of the cluster's region; per policy: the
replica-weighted expected intensity under those weights and under equal weights (what the
policy's replicas would emit per kWh without the controller). Series are replaced as a whole each
cycle, so a policy or cluster that is gone leaves none behind.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from multicluster.report import PolicyView
from multicluster.settings import KarmadaMode


class KarmadaMetrics:
    """Weights, replicas, intensities, decisions and writes."""

    def __init__(self, mode: KarmadaMode, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.running_mode = mode
        self.views: tuple[PolicyView, ...] = ()
        """What ``show`` was last given: the health site serves it as JSON."""
        per_cluster = ["policy", "cluster"]
        self.weight = Gauge(
            "stellar_carbon_karmada_weight",
            "Static weight of a member cluster in a policy (written, or proposed in dry-run).",
            per_cluster,
            registry=self.registry,
        )
        self.replicas = Gauge(
            "stellar_carbon_karmada_estimated_replicas",
            "Replicas Karmada's static-weight division gives the cluster under that weight.",
            per_cluster,
            registry=self.registry,
        )
        self.intensity = Gauge(
            "stellar_carbon_karmada_region_intensity_grams_per_kwh",
            "Expected carbon intensity of the cluster's region over the horizon, gCO2eq/kWh.",
            per_cluster,
            registry=self.registry,
        )
        self.pool_intensity = Gauge(
            "stellar_carbon_karmada_estimated_intensity_grams_per_kwh",
            "Replica-weighted expected intensity of a policy's replicas, gCO2eq/kWh, under its "
            "carbon weights (weights=carbon) and under equal weights (weights=equal).",
            ["policy", "weights"],
            registry=self.registry,
        )
        self.decisions = Counter(
            "stellar_carbon_karmada_decisions",
            "Decisions per policy and cycle, by verdict (weigh, unchanged, margin, dwell, "
            "move-limit, frozen, no-data, no-clusters, not-weighable, unreadable).",
            ["verdict"],
            registry=self.registry,
        )
        self.writes = Counter(
            "stellar_carbon_karmada_writes",
            "Policy writes by result: applied, proposed (dry-run), conflict (another field "
            "manager owns the weights), stale (re-read and retried), failed.",
            ["result"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "stellar_carbon_karmada_leader",
            "1 while this replica holds the Lease and may write.",
            registry=self.registry,
        )
        self.mode = Gauge(
            "stellar_carbon_karmada_mode",
            "1 for the mode the controller runs in (dry-run or apply).",
            ["mode"],
            registry=self.registry,
        )
        for each in KarmadaMode:
            self.mode.labels(str(each)).set(1 if each is mode else 0)

    def show(self, views: Iterable[PolicyView]) -> None:
        """Replace every per-policy series with ``views``; no await in between, so a scrape
        never sees half a cycle."""
        self.views = tuple(views)
        for gauge in (self.weight, self.replicas, self.intensity, self.pool_intensity):
            gauge.clear()
        for view in self.views:
            decision = view.decision
            for cluster, weight in decision.weights.items():
                self.weight.labels(view.policy, cluster).set(weight)
            for cluster, count in decision.replicas_after.items():
                self.replicas.labels(view.policy, cluster).set(count)
            for cluster, value in view.intensities.items():
                self.intensity.labels(view.policy, cluster).set(value)
            if decision.intensity_after is not None:
                self.pool_intensity.labels(view.policy, "carbon").set(decision.intensity_after)
            if decision.intensity_equal is not None:
                self.pool_intensity.labels(view.policy, "equal").set(decision.intensity_equal)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

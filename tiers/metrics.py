"""Prometheus metrics of the tier component, in its own registry (tests may build several)."""

from __future__ import annotations

from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from shared.scoring.tiers import TierPlan
from tiers.decide import held_kind
from tiers.settings import TierMode


class TierMetrics:
    """Tiers per region, tier changes, held moves, label writes and the mode."""

    def __init__(self, mode: TierMode, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.region_tier = Gauge(
            "stellar_carbon_tiers_region_tier",
            "Carbon tier each region holds (0 the greenest).",
            ["region"],
            registry=self.registry,
        )
        self.changes = Counter(
            "stellar_carbon_tiers_changes",
            "Tier changes of a region, by direction: new (first tier), greener or dirtier.",
            ["region", "direction"],
            registry=self.registry,
        )
        self.held = Counter(
            "stellar_carbon_tiers_held_moves",
            "Cycles in which a region wanted another tier but kept its own, by reason: dwell, "
            "frozen (carbon data not live), budget (node changes per hour used up), no-data.",
            ["reason"],
            registry=self.registry,
        )
        self.last_change = Gauge(
            "stellar_carbon_tiers_last_change_timestamp_seconds",
            "Unix time of the last tier change of each region.",
            ["region"],
            registry=self.registry,
        )
        self.label_writes = Counter(
            "stellar_carbon_tiers_label_writes",
            "Node label writes, by result: written, failed, or dry-run (would have been written).",
            ["result"],
            registry=self.registry,
        )
        self.mode = Gauge(
            "stellar_carbon_tiers_mode",
            "1 for the mode the component runs in (dry-run or label).",
            ["mode"],
            registry=self.registry,
        )
        for each in TierMode:
            self.mode.labels(str(each)).set(1 if each is mode else 0)

    def observe_plan(self, plan: TierPlan, now: datetime) -> None:
        for region, held in plan.tiers.items():
            self.region_tier.labels(region).set(held.tier)
        for change in plan.changes:
            direction = (
                "new"
                if change.before is None
                else ("greener" if change.after < change.before else "dirtier")
            )
            self.changes.labels(change.region, direction).inc()
            self.last_change.labels(change.region).set(now.timestamp())
        for reason in plan.held.values():
            self.held.labels(held_kind(reason)).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

"""The tier cycle: rank the cluster's regions, plan the tiers, write the labels that differ.

Every ``interval`` seconds, from memory only: the node inventory (list+watch) and the background
carbon snapshot. The first cycle after the inventory synced restores the tiers from the labels
the nodes carry. In ``dry-run`` mode the plan is logged and exported but nothing is written; the
tiers still move in memory, so what the metrics show is what ``label`` mode would have done.

Failures: no carbon data, or data that is not live, freezes the tiers (``plan_tiers``); a write
refused for one node is logged and counted, the others go on, and the next cycle tries it again,
since it compares the labels the nodes carry with the plan; an unexpected error ends the cycle,
never the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import aiohttp

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory
from shared.cluster.kube import KubeApiError
from shared.core.clock import Clock
from shared.scoring.ranking import rank
from shared.scoring.tiers import RegionTier, TierPlan, TierPolicy, plan_tiers
from tiers.decide import ChangeBudget, LabelWrite, label_writes, nodes_per_region, restore_tiers
from tiers.labeller import NodeLabeller
from tiers.metrics import TierMetrics

logger = logging.getLogger(__name__)

SnapshotSource = Callable[[], CarbonSnapshot]


@dataclass(frozen=True, slots=True)
class CycleReport:
    """What one cycle decided and did."""

    at: datetime
    plan: TierPlan | None = None
    writes: tuple[LabelWrite, ...] = ()
    """The label writes the plan asks for (in dry-run: would ask for)."""
    written: tuple[LabelWrite, ...] = ()
    failed: Mapping[str, str] = field(default_factory=dict)
    """Node → why its write failed."""
    skipped: str | None = None
    """Why the cycle did nothing, when it did nothing."""


class TierLoop:
    """Plans tiers and, with a labeller, writes them; without one (dry-run) only reports."""

    def __init__(
        self,
        *,
        inventory: Inventory,
        snapshot_source: SnapshotSource,
        clock: Clock,
        policy: TierPolicy,
        metrics: TierMetrics,
        labeller: NodeLabeller | None,
        horizon_hours: int,
        interval: float,
    ) -> None:
        self._inventory = inventory
        self._snapshot_source = snapshot_source
        self._clock = clock
        self._policy = policy
        self._metrics = metrics
        self._labeller = labeller
        self._horizon_hours = horizon_hours
        self._interval = interval
        self._tiers: dict[str, RegionTier] | None = None
        self._budget = ChangeBudget()

    @property
    def tiers(self) -> Mapping[str, RegionTier]:
        """The tiers held now (empty until the first cycle restored them)."""
        return dict(self._tiers or {})

    async def run(self) -> None:
        """Cycle every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.cycle()
            except Exception:
                logger.exception("tier cycle failed; next one in %.0fs", self._interval)
            await asyncio.sleep(self._interval)

    async def cycle(self) -> CycleReport:
        now = self._clock()
        if not self._inventory.synced:
            logger.info("tier cycle skipped: node inventory not synced yet")
            return CycleReport(now, skipped="node inventory not synced")
        nodes = self._inventory.nodes
        if self._tiers is None:
            self._tiers = restore_tiers(nodes, now=now)
            logger.info(
                "restored tiers from node labels: %s",
                {region: held.tier for region, held in sorted(self._tiers.items())} or "none",
            )
        regions = {node.region for node in nodes.values() if node.region}
        ranking = rank(self._snapshot_source(), regions, now=now, horizon_hours=self._horizon_hours)
        plan = plan_tiers(
            self._tiers,
            ranking,
            now=now,
            policy=self._policy,
            nodes=nodes_per_region(nodes),
            changed_nodes_last_hour=self._budget.spent(now),
        )
        self._tiers = dict(plan.tiers)
        self._metrics.observe_plan(plan, now)
        for change in plan.changes:
            logger.info(
                "region %s: tier %s -> %d (expected %.0f gCO2eq/kWh, %d nodes)",
                change.region,
                "none" if change.before is None else change.before,
                change.after,
                change.expected_g_per_kwh,
                change.nodes,
            )
        for region, reason in sorted(plan.held.items()):
            logger.info("region %s keeps tier: %s", region, reason)
        writes = label_writes(nodes, plan, ranking)
        if self._labeller is None:
            return self._dry_run(now, plan, writes)
        written: list[LabelWrite] = []
        failed: dict[str, str] = {}
        for write in writes:
            try:
                await self._labeller.write(write)
            except (KubeApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
                failed[write.node] = str(e) or type(e).__name__
                self._metrics.label_writes.labels("failed").inc()
                logger.warning("node %s keeps its label until the next cycle: %s", write.node, e)
                continue
            written.append(write)
            self._metrics.label_writes.labels("written").inc()
            logger.info("node %s: %s", write.node, write.message())
            try:
                await self._labeller.record(write)
            except (KubeApiError, aiohttp.ClientError, OSError, TimeoutError) as e:
                logger.warning(
                    "node %s labelled, but its event was not recorded: %s", write.node, e
                )
        self._budget.record(now, written)
        return CycleReport(now, plan, writes, tuple(written), failed)

    def _dry_run(
        self, now: datetime, plan: TierPlan, writes: tuple[LabelWrite, ...]
    ) -> CycleReport:
        # Nothing is written, so the same nodes differ every cycle: only this cycle's changes are
        # news (logged, counted, charged to the budget); the rest were reported when they changed.
        changed = {change.region for change in plan.changes}
        news = [write for write in writes if write.region in changed]
        for write in news:
            logger.info("dry-run: would label node %s: %s", write.node, write.message())
        self._metrics.label_writes.labels("dry-run").inc(len(news))
        self._budget.record(now, news)
        return CycleReport(now, plan, writes)

"""The tier component's decisions: which node labels to write, and what tiers the labels held.

Pure functions over inventory and tier values; the Kubernetes calls are ``tiers.labeller``'s.

* ``label_writes``: the nodes whose tier label differs from their region's planned tier. Nodes in
  a region without a tier (no region label, no carbon data yet) are never touched, and a label is
  never cleared: a stale tier is better than none for pods that prefer it.
* ``restore_tiers``: the tiers the labels in the cluster say, so a restart picks up where the
  last process left off instead of starting from scratch; restored tiers count as changed at start
  time, so the dwell holds them a while before the first move.
* ``ChangeBudget``: how many node labels moved in the last hour, kept in memory.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.cluster.inventory import NodeInfo
from shared.scoring.ranking import Ranking
from shared.scoring.tiers import TIER_LABEL, RegionTier, TierPlan, prevailing_tier, tier_value

Direction = Literal["new", "greener", "dirtier"]
HeldKind = Literal["no-data", "frozen", "dwell", "budget", "other"]

_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class LabelWrite:
    """One node's tier label to set: from ``before`` (None: no valid label) to ``after``."""

    node: str
    region: str
    before: int | None
    after: int
    expected_g_per_kwh: float | None
    """The region's expected intensity the tier comes from; None when it was not ranked now."""

    @property
    def value(self) -> str:
        return str(self.after)

    @property
    def direction(self) -> Direction:
        if self.before is None:
            return "new"
        return "greener" if self.after < self.before else "dirtier"

    @property
    def moves(self) -> bool:
        """Whether an existing tier changes; only these can make the descheduler evict pods."""
        return self.before is not None

    def message(self) -> str:
        """The Event message: region, old and new tier, and the number behind it."""
        before = "none" if self.before is None else str(self.before)
        expected = (
            f"expected {self.expected_g_per_kwh:.0f} gCO2eq/kWh"
            if self.expected_g_per_kwh is not None
            else "no current carbon data"
        )
        return f"region {self.region}: {TIER_LABEL} {before} -> {self.after} ({expected})"


def nodes_per_region(nodes: Mapping[str, NodeInfo]) -> dict[str, int]:
    """How many nodes each region has: what a tier change of that region costs in label writes."""
    return dict(Counter(node.region for node in nodes.values() if node.region))


def restore_tiers(nodes: Mapping[str, NodeInfo], *, now: datetime) -> dict[str, RegionTier]:
    """Each region's tier as its nodes' labels hold it, dated ``now`` so the dwell applies.

    When a region's nodes disagree (a cycle stopped half-way, a node budget ran out), the tier
    most of them carry wins, the greener on a tie; the next cycle makes the others match.
    """
    seen: dict[str, list[int]] = {}
    for node in nodes.values():
        tier = tier_value(node.labels.get(TIER_LABEL))
        if node.region and tier is not None:
            seen.setdefault(node.region, []).append(tier)
    restored: dict[str, RegionTier] = {}
    for region, tiers in seen.items():
        held = prevailing_tier(tiers)
        if held is not None:
            restored[region] = RegionTier(region, held, now)
    return restored


def label_writes(
    nodes: Mapping[str, NodeInfo], plan: TierPlan, ranking: Ranking
) -> tuple[LabelWrite, ...]:
    """The label writes that make every node carry its region's planned tier, biggest moves first.

    Only nodes whose label differs are written; nodes of regions without a tier are left alone.
    """
    expected = {score.region: score.expected_g_per_kwh for score in ranking.scores}
    writes: list[LabelWrite] = []
    for name, node in sorted(nodes.items()):
        if not node.region or node.region not in plan.tiers:
            continue
        after = plan.tiers[node.region].tier
        current = node.labels.get(TIER_LABEL)
        if current == str(after):
            continue
        writes.append(
            LabelWrite(
                node=name,
                region=node.region,
                before=tier_value(current),
                after=after,
                expected_g_per_kwh=expected.get(node.region),
            )
        )
    return tuple(
        sorted(
            writes,
            key=lambda w: (-abs(w.after - (w.before if w.before is not None else w.after)), w.node),
        )
    )


def held_kind(reason: str) -> HeldKind:
    """A bounded name for ``TierPlan.held``'s reason, fit for a metric label."""
    if reason.startswith("no carbon data"):
        return "no-data"
    if "frozen" in reason:
        return "frozen"
    if reason.startswith("changed less than"):
        return "dwell"
    if "per hour" in reason:
        return "budget"
    return "other"


class ChangeBudget:
    """Node label moves in the last hour, in memory: a restart starts the hour afresh, and the
    dwell (restored tiers count as just changed) keeps that from moving many labels at once."""

    def __init__(self) -> None:
        self._spent: deque[tuple[datetime, int]] = deque()

    def spent(self, now: datetime) -> int:
        """Label moves in the hour up to ``now``."""
        while self._spent and self._spent[0][0] <= now - _HOUR:
            self._spent.popleft()
        return sum(count for _, count in self._spent)

    def record(self, now: datetime, writes: Iterable[LabelWrite]) -> None:
        """Count the writes that moved an existing tier (new labels evict nothing)."""
        count = sum(1 for write in writes if write.moves)
        if count:
            self._spent.append((now, count))

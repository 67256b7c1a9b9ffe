"""Carbon tiers: a region's place in the ranking as a small number that changes slowly.

A tier is what a node label carries so that running pods can follow the grid: the webhook writes
preferred terms on the tier label into a pod once, the tier component moves the label between
nodes as the ranking changes, and the descheduler evicts a pod whose node no longer has the best
tier it could have. Region names baked into a pod never change; a label that moves does.

Tier ``k`` holds the regions whose expected intensity is at most ``best × (1 + band) × step^k``:
tier 0 is the greenest region and those within ``band`` of it (the ``require`` policy's low-carbon
band), each further tier ``step`` times dirtier, up to ``max_tier``. Preferred weights per tier
follow the webhook's weight rule, ``100 × (best / v)²``, at each tier's upper bound.

Tiers move with hysteresis, because every move can evict pods:

* a region enters a greener tier only when its value sits below that tier's upper bound by
  ``margin``, and a dirtier one only when its value passed the current tier's bound by ``margin``;
* a region changes tier at most once per ``dwell``;
* a region whose own value, or the greenest value, is not live (stale cache or static average)
  keeps its tier: a provider outage freezes the tiers, never sends them all to the worst;
* at most ``max_node_changes_per_hour`` nodes change label per hour, the biggest moves first.

Pure functions over plain values; no I/O.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.core.models import TIER_LABEL as TIER_LABEL
from shared.core.models import Freshness
from shared.scoring.ranking import Ranking, RegionScore


def tier_value(label: str | None) -> int | None:
    """The tier a ``carbon.stellar.org/tier`` label value names: a plain decimal number as the
    tier component writes it (``"0"``, ``"3"``); anything else (``"03"``, ``"-1"``, ``"x"``)
    names none, since a term written from it could not match what the label later holds."""
    if label is None or not label.isascii() or not label.isdigit():
        return None
    tier = int(label)
    return tier if str(tier) == label else None


def prevailing_tier(tiers: Iterable[int]) -> int | None:
    """The tier most of a region's nodes carry, the greener on a tie; None for no tier at all.
    Nodes of one region disagree when a cycle stopped half-way or the node budget ran out."""
    counts = Counter(tiers)
    if not counts:
        return None
    return min(counts, key=lambda tier: (-counts[tier], tier))


@dataclass(frozen=True, slots=True)
class TierPolicy:
    """How tiers are cut and how fast they may move."""

    band: float = 0.10
    """Tier 0 holds the regions within this fraction of the greenest expected intensity."""
    step: float = 1.25
    """Each tier's upper bound is this many times the previous one's."""
    max_tier: int = 9
    """The dirtiest tier; every region beyond it shares it."""
    margin: float = 0.10
    """How far past a boundary a region's value must be before it changes tier."""
    dwell: timedelta = timedelta(hours=2)
    """Least time between two changes of one region's tier."""
    max_node_changes_per_hour: int = 50
    """Most node labels changed in any hour, across regions."""

    def __post_init__(self) -> None:
        if self.band < 0 or self.margin < 0:
            raise ValueError("band and margin must not be negative")
        if self.step <= 1:
            raise ValueError(f"step must be above 1, got {self.step}")
        if self.max_tier < 1 or self.max_node_changes_per_hour < 1:
            raise ValueError("max_tier and max_node_changes_per_hour must be at least 1")

    def upper_bound(self, tier: int, best: float) -> float:
        """The highest expected intensity tier ``tier`` holds, for a greenest value ``best``."""
        return best * (1 + self.band) * self.step**tier

    def tier_of(self, value: float, best: float) -> int:
        """The tier ``value`` falls in without hysteresis."""
        if best <= 0:
            return 0 if value <= 0 else self.max_tier
        ratio = value / (best * (1 + self.band))
        if ratio <= 1:
            return 0
        return min(self.max_tier, math.ceil(math.log(ratio) / math.log(self.step) - 1e-12))

    def weight(self, tier: int) -> int:
        """Preferred-affinity weight of a term on ``tier``: 100 for tier 0, then the webhook's
        ``100 × (best / v)²`` at the tier's upper bound relative to tier 0's, never below 1."""
        return max(1, round(100 * self.step ** (-2 * tier)))


@dataclass(frozen=True, slots=True)
class RegionTier:
    """A region's current tier and since when it has held it."""

    region: str
    tier: int
    since: datetime


@dataclass(frozen=True, slots=True)
class TierChange:
    """One region moving between tiers (``before`` None: the region had no tier yet)."""

    region: str
    before: int | None
    after: int
    expected_g_per_kwh: float
    nodes: int


@dataclass(frozen=True, slots=True)
class TierPlan:
    """The tiers to hold from ``at`` on, and what changed to get there."""

    tiers: Mapping[str, RegionTier]
    changes: tuple[TierChange, ...]
    held: Mapping[str, str] = field(default_factory=dict)
    """Regions that wanted to move but did not, with why (dwell, frozen, node budget)."""


def plan_tiers(
    previous: Mapping[str, RegionTier],
    ranking: Ranking,
    *,
    now: datetime,
    policy: TierPolicy,
    nodes: Mapping[str, int],
    changed_nodes_last_hour: int = 0,
) -> TierPlan:
    """The next tiers for the ranked regions, from the ``previous`` ones.

    ``nodes`` counts each region's nodes (a change costs that many label writes);
    ``changed_nodes_last_hour`` is what the budget has already spent. Regions not in the ranking
    keep their previous tier.
    """
    tiers: dict[str, RegionTier] = dict(previous)
    held: dict[str, str] = {}
    greenest = ranking.greenest
    if greenest is None:
        return TierPlan(tiers, (), {region: "no carbon data" for region in previous})
    best = greenest.expected_g_per_kwh
    frozen_all = greenest.freshness is not Freshness.LIVE
    wanted: list[TierChange] = []
    for score in ranking.scores:
        current = previous.get(score.region)
        target = _target(score, current, best, policy)
        if current is not None and target == current.tier:
            continue
        if current is not None and (frozen_all or score.freshness is not Freshness.LIVE):
            held[score.region] = "carbon data not live: tiers frozen"
            continue
        if current is not None and now - current.since < policy.dwell:
            held[score.region] = f"changed less than {policy.dwell} ago"
            continue
        wanted.append(
            TierChange(
                region=score.region,
                before=current.tier if current is not None else None,
                after=target,
                expected_g_per_kwh=score.expected_g_per_kwh,
                nodes=nodes.get(score.region, 0),
            )
        )
    budget = policy.max_node_changes_per_hour - changed_nodes_last_hour
    changes: list[TierChange] = []
    for change in _by_benefit(wanted):
        # A region new to tiering costs no move of a pod, only labels: it always goes.
        if change.before is not None and change.nodes > budget:
            held[change.region] = "node changes per hour used up"
            continue
        if change.before is not None:
            budget -= change.nodes
        changes.append(change)
        tiers[change.region] = RegionTier(change.region, change.after, now)
    return TierPlan(tiers, tuple(changes), held)


def _target(score: RegionScore, current: RegionTier | None, best: float, policy: TierPolicy) -> int:
    """The tier the region should hold, with hysteresis around its current one."""
    value = score.expected_g_per_kwh
    raw = policy.tier_of(value, best)
    if current is None or raw == current.tier:
        return raw
    if raw < current.tier:
        # Greener: the value must clear the target tier's upper bound by the margin. The
        # greenest region itself always qualifies for tier 0, whatever the margin: otherwise a
        # margin wider than the band would leave tier 0 empty and no replica would ever move.
        target = raw
        while (
            target < current.tier
            and not (target == 0 and value <= best)
            and value * (1 + policy.margin) > policy.upper_bound(target, best)
        ):
            target += 1
        return target
    # Dirtier: the value must pass the bound of the tier it leaves by the margin.
    target = raw
    while target > current.tier and value < policy.upper_bound(target - 1, best) * (
        1 + policy.margin
    ):
        target -= 1
    return target


def _by_benefit(changes: Sequence[TierChange]) -> list[TierChange]:
    """Biggest moves first; among equals, towards greener first, then by region name."""
    return sorted(
        changes,
        key=lambda c: (
            -abs(c.after - (c.before if c.before is not None else c.after)),
            c.after,
            c.region,
        ),
    )


def node_tiers(
    tiers: Mapping[str, RegionTier], node_regions: Mapping[str, str | None]
) -> dict[str, int]:
    """Node → tier for every node whose region has one; other nodes are left out (never cleared)."""
    out: dict[str, int] = {}
    for node, region in node_regions.items():
        if region is not None and region in tiers:
            out[node] = tiers[region].tier
    return out

"""Whether to re-weigh a policy now, and with which weights: following the grid without thrashing.

Pure. For one policy whose division static weights decide, from its eligible clusters' expected
intensities, the weights it holds now and the replicas of the workloads it places:

* data not live (a stale cache or static annual averages, for any eligible cluster) freezes the
  weights the policy holds: never zeroed, never moved on numbers nobody measured;
* the target weights follow ``multicluster.weights.carbon_weights``; a policy whose weights are
  already the target is left alone;
* a change must lower the pool's expected emissions (replica-weighted mean intensity of Karmada's
  division) by more than ``margin`` against the weights held now, and the policy must not have
  been re-weighed within ``dwell``;
* at most ``max_moved_share`` of the replicas change cluster per change: past that, the weights
  move part of the way (``weights.blend``) and the next period goes on.

Every estimate divides each workload's replicas as Karmada's static-weight rule does.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from multicluster.weights import blend, carbon_weights, divide, mean_intensity, moved

_BLEND_STEPS = 20


class Verdict(enum.StrEnum):
    """What the decision says to do with a policy."""

    WEIGH = "weigh"  # write new weights
    UNCHANGED = "unchanged"  # the weights held are the target already
    MARGIN = "margin"  # the gain is not worth a re-division
    DWELL = "dwell"  # re-weighed too recently
    MOVE_LIMIT = "move-limit"  # even the smallest step would move too many replicas
    FROZEN = "frozen"  # carbon data not live: weights kept
    NO_DATA = "no-data"  # no eligible cluster has carbon data
    NO_CLUSTERS = "no-clusters"  # the policy allows no member cluster


@dataclass(frozen=True, slots=True)
class Rules:
    """How far and how often weights may move."""

    margin: float = 0.10
    """Least relative drop in expected emissions worth a re-division."""
    dwell: timedelta = timedelta(hours=1)
    """Least time between two re-weighings of one policy."""
    max_moved_share: float = 0.5
    """Most of a policy's replicas that may change cluster in one re-weighing (0-1]."""
    floor: int = 1
    """Least weight of every eligible cluster; 0 lets clusters drop out of the list."""
    exponent: float = 4.0
    """How steeply weights fall with the intensity ratio to the greenest."""

    def __post_init__(self) -> None:
        if self.margin < 0:
            raise ValueError("margin must not be negative")
        if not 0 < self.max_moved_share <= 1:
            raise ValueError("max_moved_share must be in (0, 1]")


@dataclass(frozen=True, slots=True)
class ClusterCarbon:
    """An eligible cluster's expected intensity over the horizon, and whether it is live."""

    expected_g_per_kwh: float
    live: bool


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    weights: Mapping[str, int]
    """The weights to write for ``WEIGH``; else the ones held (the basis of the estimates)."""
    reason: str
    replicas_before: Mapping[str, int] = field(default_factory=dict)
    replicas_after: Mapping[str, int] = field(default_factory=dict)
    """Estimated replicas per cluster under ``weights`` (for ``WEIGH``: after the write)."""
    intensity_before: float | None = None
    intensity_after: float | None = None
    """Replica-weighted mean expected intensity, gCO2eq/kWh."""
    intensity_equal: float | None = None
    """The same under equal weights on the eligible clusters: the carbon-agnostic baseline."""

    @property
    def writes(self) -> bool:
        return self.verdict is Verdict.WEIGH


def held_weights(current: Mapping[str, int], eligible: Sequence[str]) -> dict[str, int]:
    """What the scheduler weighs the eligible clusters by now: the policy's list restricted to
    them, or equal weights when that list names none of them (Karmada's default)."""
    held = {name: weight for name, weight in current.items() if name in eligible and weight > 0}
    return held or dict.fromkeys(eligible, 1)


def estimate(workloads: Sequence[int], weights: Mapping[str, int]) -> dict[str, int]:
    """Replicas per cluster over all the workloads a policy places, each divided on its own."""
    total = dict.fromkeys(weights, 0)
    for replicas in workloads:
        for name, count in divide(replicas, weights).items():
            total[name] = total.get(name, 0) + count
    return total


def decide(
    *,
    eligible: Sequence[str],
    carbon: Mapping[str, ClusterCarbon],
    current: Mapping[str, int],
    workloads: Sequence[int],
    last_change: datetime | None,
    now: datetime,
    rules: Rules,
) -> Decision:
    """The decision for one policy.

    ``eligible``: the clusters the policy allows; ``carbon``: what is known about them (a cluster
    missing has no region or no data, and keeps the floor); ``current``: the weights the policy's
    list gives each cluster now; ``workloads``: the replicas of each workload the policy places
    (none known: the estimates use 100 replicas, a division in percent).
    """
    if not eligible:
        return Decision(Verdict.NO_CLUSTERS, dict(current), "the policy allows no member cluster")
    held = held_weights(current, eligible)
    pools = list(workloads) or [100]
    ranked = {name: carbon[name] for name in eligible if name in carbon}
    expected = {name: value.expected_g_per_kwh for name, value in ranked.items()}
    before = estimate(pools, held)
    equal = mean_intensity(estimate(pools, dict.fromkeys(eligible, 1)), expected)
    base = Decision(
        Verdict.UNCHANGED,
        held,
        "",
        replicas_before=before,
        replicas_after=before,
        intensity_before=mean_intensity(before, expected),
        intensity_after=mean_intensity(before, expected),
        intensity_equal=equal,
    )
    if not ranked:
        return _with(base, Verdict.NO_DATA, "no eligible cluster has carbon data")
    stale = sorted(name for name, value in ranked.items() if not value.live)
    if stale:
        return _with(base, Verdict.FROZEN, f"carbon data not live for {', '.join(stale)}")
    unranked = tuple(name for name in eligible if name not in ranked)
    target = carbon_weights(expected, floor=rules.floor, exponent=rules.exponent, unranked=unranked)
    if target == held:
        return _with(base, Verdict.UNCHANGED, "the weights held are the target")
    after = estimate(pools, target)
    gain = _gain(base.intensity_before, mean_intensity(after, expected))
    if gain <= rules.margin:
        return _with(
            base,
            Verdict.MARGIN,
            f"expected emissions {gain:.1%} lower, not more than the {rules.margin:.0%} margin",
        )
    if last_change is not None and now - last_change < rules.dwell:
        return _with(base, Verdict.DWELL, f"re-weighed less than {rules.dwell} ago")
    limited = _limited(pools, held, target, before, after, rules)
    if limited is None:
        return _with(
            base,
            Verdict.MOVE_LIMIT,
            f"every step moves more than {rules.max_moved_share:.0%} of the replicas",
        )
    weights, after = limited
    total = sum(pools)
    share = moved(before, after) / total if total else 0.0
    intensity_after = mean_intensity(after, expected)
    return Decision(
        Verdict.WEIGH,
        weights,
        f"expected emissions {_gain(base.intensity_before, intensity_after):.1%} lower, "
        f"{share:.0%} of replicas move",
        replicas_before=before,
        replicas_after=after,
        intensity_before=base.intensity_before,
        intensity_after=intensity_after,
        intensity_equal=equal,
    )


def _with(base: Decision, verdict: Verdict, reason: str) -> Decision:
    return Decision(
        verdict,
        base.weights,
        reason,
        base.replicas_before,
        base.replicas_after,
        base.intensity_before,
        base.intensity_after,
        base.intensity_equal,
    )


def _gain(before: float | None, after: float | None) -> float:
    if before is None or after is None or before <= 0:
        return 0.0
    return (before - after) / before


def _limited(
    pools: Sequence[int],
    held: Mapping[str, int],
    target: Mapping[str, int],
    before: Mapping[str, int],
    after: Mapping[str, int],
    rules: Rules,
) -> tuple[dict[str, int], dict[str, int]] | None:
    """The target, or the furthest step towards it that moves at most the allowed share; None
    when no step does."""
    total = sum(pools)
    # One replica may always move, or a small pool could never follow the grid at all.
    allowed = max(1.0, rules.max_moved_share * total)
    if moved(before, after) <= allowed:
        return dict(target), dict(after)
    for step in range(_BLEND_STEPS - 1, 0, -1):
        weights = blend(held, target, step / _BLEND_STEPS, floor=rules.floor)
        division = estimate(pools, weights)
        if weights != held and moved(before, division) <= allowed:
            return weights, division
    return None

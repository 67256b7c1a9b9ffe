"""Read-replica placement and what carbon-aware placement saved against a carbon-agnostic spread.

The counterfactual: the same replicas, each drawing the same power, spread evenly over the eligible
regions (regions with at least one schedulable node and a known intensity). A replica's power is
its share of its node's estimated power: CPU request ÷ node allocatable CPU, or an equal split among
the Stellar pods on the node when it requests no CPU. Emissions use each region's current intensity
and PUE, so

    actual   = sum over replicas r of  P_r * PUE(region of r) * I(region of r)
    baseline = sum over replicas r of  P_r * mean over eligible regions e of (PUE_e * I_e)
    savings  = (baseline - actual) / baseline

Replicas on nodes whose region has no known intensity are left out of both sums (and counted).

Replicas whose own scheduling rules kept the webhook from restricting them to low-carbon regions
carry ``stellar.org/carbon-constraint`` (the rules, comma-separated); they are counted per rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from reporter.footprints import READ_REPLICA, NodeFootprint
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import PodInfo
from shared.cluster.pods import pod_role
from shared.scoring.ranking import rank

RANKING_ANNOTATION = "stellar.org/carbon-ranking"
CONSTRAINT_ANNOTATION = "stellar.org/carbon-constraint"
DEFAULT_HORIZON_HOURS = 24
BASELINE = "even spread over eligible regions"
"""The counterfactual savings are measured against, named wherever savings are shown."""


@dataclass(frozen=True, slots=True)
class ReplicaPlacement:
    total: int
    """Read-replica pods in the inventory, bound or not."""
    placed: int
    """Of those, bound to a node the inventory knows."""
    carbon_aware: int
    """Carry the webhook's ``stellar.org/carbon-ranking`` annotation."""
    in_greenest: int
    """Placed in the greenest eligible region (ties for greenest all count)."""
    greenest_regions: tuple[str, ...]
    eligible_regions: tuple[str, ...]
    accounted: int
    """Placed replicas whose emissions are known (their region has an intensity)."""
    watts: float
    g_per_hour: float | None
    baseline_g_per_hour: float | None
    constrained: int = 0
    """Carry ``stellar.org/carbon-constraint``: their own rules limited carbon placement."""
    constraints: Mapping[str, int] = field(default_factory=dict)
    """Rule named in that annotation → replicas naming it (a replica may name several)."""

    @property
    def savings_pct(self) -> float | None:
        """Percentage saved against the even spread; negative when placement made things worse."""
        if self.baseline_g_per_hour is None or self.baseline_g_per_hour <= 0:
            return None
        if self.g_per_hour is None:
            return None
        return (self.baseline_g_per_hour - self.g_per_hour) / self.baseline_g_per_hour * 100


def replica_watts(replica: PodInfo, fp: NodeFootprint) -> float:
    """The replica's share of its node's estimated power."""
    if replica.cpu_request_millis > 0 and fp.node.cpu_millis > 0:
        return fp.power.watts * min(1.0, replica.cpu_request_millis / fp.node.cpu_millis)
    sharing = max(1, sum(1 for p in fp.pods if p.pod.cpu_request_millis <= 0))
    return fp.power.watts / sharing


def _g_per_wh(fp: NodeFootprint) -> float | None:
    """Grams per watt-hour of IT energy at this node: PUE * intensity / 1000."""
    if fp.intensity is None:
        return None
    return fp.pue * fp.intensity.g_per_kwh / 1000


def replica_placement(
    footprints: Sequence[NodeFootprint],
    pods: Iterable[PodInfo],
    *,
    snapshot: CarbonSnapshot,
    now: datetime,
    horizon_hours: int = DEFAULT_HORIZON_HOURS,
) -> ReplicaPlacement:
    """Where the read replicas run and their emissions against the even-spread baseline."""
    by_name = {fp.node.name: fp for fp in footprints}
    # Region factor (g per Wh) of each eligible region; nodes of a region share PUE and intensity.
    factors: dict[str, float] = {}
    for fp in footprints:
        factor = _g_per_wh(fp)
        if fp.node.region and fp.node.schedulable and factor is not None:
            factors.setdefault(fp.node.region, factor)
    eligible = tuple(sorted(factors))
    ranking = rank(snapshot, eligible, now=now, horizon_hours=horizon_hours)
    best = ranking.greenest
    greenest = tuple(
        s.region for s in ranking.scores if best and s.expected_g_per_kwh == best.expected_g_per_kwh
    )
    mean_factor = sum(factors.values()) / len(factors) if factors else None

    total = placed = aware = in_greenest = accounted = constrained = 0
    constraints: dict[str, int] = {}
    watts = actual = baseline = 0.0
    for pod in pods:
        if pod_role(pod.labels) != READ_REPLICA:
            continue
        total += 1
        aware += RANKING_ANNOTATION in pod.annotations
        rules = pod.annotations.get(CONSTRAINT_ANNOTATION)
        if rules is not None:
            constrained += 1
            for rule in {r.strip() for r in rules.split(",")} - {""}:
                constraints[rule] = constraints.get(rule, 0) + 1
        node = by_name.get(pod.node_name) if pod.node_name else None
        if node is None:
            continue
        placed += 1
        in_greenest += node.node.region in greenest
        factor = _g_per_wh(node)
        if factor is None or mean_factor is None:
            continue
        accounted += 1
        share = replica_watts(pod, node)
        watts += share
        actual += share * factor
        baseline += share * mean_factor
    return ReplicaPlacement(
        total=total,
        placed=placed,
        carbon_aware=aware,
        in_greenest=in_greenest,
        greenest_regions=greenest,
        eligible_regions=eligible,
        accounted=accounted,
        watts=watts,
        g_per_hour=actual if accounted else None,
        baseline_g_per_hour=baseline if accounted else None,
        constrained=constrained,
        constraints=dict(sorted(constraints.items())),
    )


def placement_json(placement: ReplicaPlacement) -> dict[str, Any]:
    savings = placement.savings_pct
    return {
        "total": placement.total,
        "placed": placement.placed,
        "carbonAware": placement.carbon_aware,
        "constrained": placement.constrained,
        "constraints": dict(placement.constraints),
        "inGreenestRegion": placement.in_greenest,
        "greenestRegions": list(placement.greenest_regions),
        "eligibleRegions": list(placement.eligible_regions),
        "accounted": placement.accounted,
        "powerWatts": round(placement.watts, 3),
        "gCO2eqPerHour": _round(placement.g_per_hour),
        "baselineGCO2eqPerHour": _round(placement.baseline_g_per_hour),
        "savingsPercent": _round(savings, 2),
        "baseline": BASELINE,
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)

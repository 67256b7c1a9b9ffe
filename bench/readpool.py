"""The operator's read pool in the model replay: hard spread rules, an HPA, and who it strands.

The upstream operator's read-pool StatefulSet (``tests/fixtures/operator-read-pool``, loaded as
written) carries a required hostname anti-affinity and two ``DoNotSchedule`` spreads (hostname,
zone, maxSkew 1) whose selector also matches the node's main pod. This replay runs such a pool
for a week per season on the carbon replay's fourteen regions, in two fleet shapes (one node per
zone; three zones of five nodes per region), for pools of 3, 6 and 20:

* the HPA moves ``replicas`` between the pool size and ``min(3 × size, 20)`` with a daily load
  curve; pods restart after a log-uniform 3-72 h life (rollouts, evictions, drains), and the
  StatefulSet controller (``OrderedReady``) creates ordinal *k* only once 0 … *k-1* are bound;
* every policy decides once, when a pod is created; the scheduler model (``bench.spread``) binds
  it or leaves it Pending, retried every hour;
* charged as in ``bench.replay``: replica power × PUE × the hour's actual intensity; a wanted
  replica-hour without a bound pod (Pending, or never created behind a Pending one) is unserved.

Policies: ``agnostic`` (no terms), ``prefer`` and ``require`` (today's webhook: preferred terms;
plus the low-carbon set grown to a third of the nodes), ``pool/replicas`` and ``pool/hpa-max``
(preferred terms plus the smallest greenest region set that holds the pool, sized from the
StatefulSet's current replicas or from the HPA's maxReplicas, ``shared.cluster.room``), and
``oracle``: the same pool-sized set on a ranking by the actual mean intensity over the pod's life.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

import yaml

from bench.carbon import FORECAST_HOURS, HOURS, SEED, WEEKS, fleet_regions
from bench.replay import (
    Decision,
    Fleet,
    Outcome,
    PodSpec,
    RankedPolicy,
    build_fleet,
    fraction_of_oracle,
    reduction,
    replica_hour_grams,
    replica_region,
)
from bench.spread import HardRules, ZonedFleet, place_spread, zoned
from bench.traces import Traces, build_traces, snapshot_at
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.constraints import PoolConstraints
from shared.cluster.room import Host, PlacedPod, holds_pool
from shared.core.models import Freshness, RegionInfo
from shared.scoring.ranking import Ranking, RegionScore, low_carbon_set, preference_terms, rank

TEMPLATE = Path(__file__).parents[1] / "tests" / "fixtures" / "operator-read-pool"
POOLS = (3, 6, 20)
SHAPES = {"one-node-per-zone": 1, "three-zones-of-five": 5}
"""Fleet shape → nodes per zone (three zones per region)."""
HPA_CAP = 20
MAIN_POD = "main"
LIFE_HOURS = (3, 72)
POLICIES = ("agnostic", "prefer", "require", "pool/replicas", "pool/hpa-max", "oracle")


def operator_pool() -> PoolConstraints:
    """The pool's hard rules, read from the operator's own StatefulSet."""
    manifest = yaml.safe_load((TEMPLATE / "read-statefulset.yaml").read_text())
    return PoolConstraints.from_controller(manifest)


def hard_rules(pool: PoolConstraints) -> HardRules:
    return HardRules(
        tuple((c.topology_key, c.max_skew) for c in pool.spreads),
        tuple(t.topology_key for t in pool.anti_affinity),
    )


def hpa_max(size: int) -> int:
    """The operator's HPA: ``min(3 × replicas, 20)``."""
    return min(3 * size, HPA_CAP)


def replicas_at(size: int, hour: int) -> int:
    """The HPA's replicas: the pool size at night, its maximum at the 16:00 UTC peak."""
    load = 0.5 - 0.5 * math.cos(2 * math.pi * ((hour - 4) % 24) / 24)
    return size + round((hpa_max(size) - size) * load)


def lives(size: int, *, seed: int = SEED) -> Callable[[], int]:
    """Each pool pod's life in hours, drawn in creation order: the schedule of restarts that the
    model and the real-scheduler replay (``bench.kube_readpool``) both follow."""
    rng = random.Random(f"{seed}|readpool|{size}")
    return lambda: round(math.exp(rng.uniform(*map(math.log, LIFE_HOURS))))


@dataclass(frozen=True, slots=True)
class Creation:
    """What a policy sees when a pool pod is created."""

    hour: int
    end: int
    """When the pod's life would end, were it not scaled away first (the oracle's foresight)."""
    replicas: int
    maximum: int
    bound: int
    """Pool pods bound now."""
    hosts: tuple[Host, ...]
    placed: tuple[PlacedPod, ...]


class PoolPolicy(Protocol):
    def __call__(self, creation: Creation) -> Decision: ...


def pool_sized(
    ranking_at: Callable[[Creation], Ranking], pool: PoolConstraints, *, from_hpa: bool
) -> PoolPolicy:
    """Preferred terms plus the smallest greenest region set that holds the pool."""

    def decide(creation: Creation) -> Decision:
        ranking = ranking_at(creation)
        terms = preference_terms(ranking)
        size = creation.maximum if from_hpa else creation.replicas
        holds = holds_pool(
            pool, creation.hosts, creation.placed, wanted=max(1, size - creation.bound)
        )
        allowed = frozenset(low_carbon_set(ranking, holds=holds))
        return Decision(tuple(t.regions for t in terms), allowed or None)

    return decide


def foresight(model: ZonedFleet, traces: Traces) -> Callable[[Creation], Ranking]:
    """A ranking by the actual mean intensity (× PUE × power) over the pod's real life."""

    def ranking_at(creation: Creation) -> Ranking:
        scores = []
        for region in model.fleet.regions:
            cost = (
                region.replica_watts
                * region.pue
                * traces.mean(region.zone, creation.hour, max(creation.end, creation.hour + 1))
            )
            scores.append(RegionScore(region.name, cost, "oracle", Freshness.LIVE, cost))
        scores.sort(key=lambda s: (s.expected_g_per_kwh, s.region))
        return Ranking(tuple(scores), (), 24, traces.time(creation.hour))

    return ranking_at


def policies(
    model: ZonedFleet, traces: Traces, regions: Sequence[RegionInfo], pool: PoolConstraints
) -> dict[str, PoolPolicy]:
    cache: dict[int, CarbonSnapshot] = {}

    def snapshots(hour: int) -> CarbonSnapshot:
        if hour not in cache:
            cache[hour] = snapshot_at(traces, regions, hour, forecast_hours=FORECAST_HOURS)
        return cache[hour]

    names = model.fleet.region_names
    nodes = Counter(node.region for node in model.fleet.nodes)
    prefer = RankedPolicy("prefer", snapshots, names, traces)
    require = RankedPolicy("require", snapshots, names, traces, require=True, node_counts=nodes)

    def ranked(creation: Creation) -> Ranking:
        return rank(snapshots(creation.hour), names, now=traces.time(creation.hour))

    def today(policy: RankedPolicy) -> PoolPolicy:
        return lambda c: policy.decide(PodSpec("pod", c.hour, c.end), c.hour)

    return {
        "agnostic": lambda c: Decision(),
        "prefer": today(prefer),
        "require": today(require),
        "pool/replicas": pool_sized(ranked, pool, from_hpa=False),
        "pool/hpa-max": pool_sized(ranked, pool, from_hpa=True),
        "oracle": pool_sized(foresight(model, traces), pool, from_hpa=False),
    }


@dataclass
class _Pod:
    ordinal: int
    created: int
    end: int
    decision: Decision
    node: str | None = None


def run_pool(
    name: str,
    decide: PoolPolicy,
    model: ZonedFleet,
    pool: PoolConstraints,
    traces: Traces,
    size: int,
    *,
    hours: int = HOURS,
    seed: int = SEED,
) -> Outcome:
    """One week of one pool under one policy, charged at the actual intensity."""
    rules = hard_rules(pool)
    life = lives(size, seed=seed)
    fleet = model.fleet
    main = main_node(fleet)
    pods: dict[int, _Pod] = {}
    grams = 0.0
    served = wanted = created = never = 0
    region_hours: dict[str, int] = {}
    for hour in range(hours):
        replicas = replicas_at(size, hour)
        for ordinal, pod in list(pods.items()):
            # A life ends (restart, eviction, drain) only for a bound pod; a Pending one waits.
            if ordinal >= replicas or (pod.node is not None and pod.end <= hour):
                never += pod.node is None
                del pods[ordinal]
        for ordinal in range(replicas):
            pod = pods.get(ordinal)
            if pod is None:
                end = min(hours, hour + life())
                creation = _creation(model, pool, pods, main, hour, end, size)
                pod = pods[ordinal] = _Pod(ordinal, hour, end, decide(creation))
                created += 1
            if pod.node is None:
                matching = Counter(p.node for p in pods.values() if p.node is not None)
                matching[main] += 1
                used = {node: count * pool.cpu_millis for node, count in matching.items()}
                node = place_spread(pod.decision, model, rules, matching, used, pool.cpu_millis)
                if node is None:
                    break  # OrderedReady: nothing after a Pending pod is created
                pod.node = node.name
        wanted += replicas
        for pod in pods.values():
            if pod.node is None:
                continue
            region = fleet.region(_region_of(model, pod.node))
            grams += replica_hour_grams(region, traces.at(region.zone, hour))
            served += 1
            region_hours[region.name] = region_hours.get(region.name, 0) + 1
    return Outcome(
        policy=name,
        grams=grams,
        served_hours=served,
        unserved_hours=wanted - served,
        pods=created,
        never_served=never + sum(p.node is None for p in pods.values()),
        region_hours=MappingProxyType(region_hours),
    )


def main_node(fleet: Fleet) -> str:
    """Where the model puts the StellarNode's main pod: the least allocated node."""
    return min(fleet.nodes, key=lambda n: (n.background_millis / n.cpu_millis, n.name)).name


def _region_of(model: ZonedFleet, node: str) -> str:
    return next(n.region for n in model.fleet.nodes if n.name == node)


def _creation(
    model: ZonedFleet,
    pool: PoolConstraints,
    pods: Mapping[int, _Pod],
    main: str,
    hour: int,
    end: int,
    size: int,
) -> Creation:
    bound = [p.node for p in pods.values() if p.node is not None]
    hosts, placed = pool_view(model, pool, bound, main)
    return Creation(hour, end, replicas_at(size, hour), hpa_max(size), len(bound), hosts, placed)


def pool_view(
    model: ZonedFleet, pool: PoolConstraints, bound: Sequence[str], main: str
) -> tuple[tuple[Host, ...], tuple[PlacedPod, ...]]:
    """What the webhook sees of the cluster for a pool pod: every node with the room the bound
    pool pods (on ``bound`` nodes) and the main pod (on ``main``) leave, and those pods."""
    use = Counter(bound)
    use[main] += 1  # the main pod is counted as requesting what a read pod does
    hosts = tuple(
        Host(
            n.name,
            n.region,
            model.labels(n),
            schedulable=n.name not in model.cordoned,
            free_cpu_millis=n.free_millis - use[n.name] * pool.cpu_millis,
        )
        for n in model.fleet.nodes
    )
    main_labels = {**pool.labels, "stellar.org/role": "validator"}
    placed = (
        PlacedPod(main, main_labels),
        *(PlacedPod(node, pool.labels) for node in bound),
    )
    return hosts, placed


def describe(outcomes: Mapping[str, Outcome]) -> dict[str, dict[str, Any]]:
    baseline, oracle = outcomes["agnostic"], outcomes["oracle"]
    rows = {}
    for name, outcome in outcomes.items():
        rows[name] = {
            "reduction_vs_agnostic": _r(reduction(outcome, baseline)),
            "fraction_of_oracle": _r(fraction_of_oracle(outcome, baseline, oracle)),
            "unserved_replica_hours": outcome.unserved_hours,
            "unserved_beyond_agnostic": max(0, outcome.unserved_hours - baseline.unserved_hours),
            "served_replica_hours": outcome.served_hours,
            "never_bound_pods": outcome.never_served,
            "g_per_replica_hour": _r(outcome.g_per_replica_hour),
        }
    return rows


def _r(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 4)


async def run(quick: bool) -> dict[str, Any]:
    """Every shape × pool × policy, over the four seasonal weeks (one with ``quick``)."""
    infos = fleet_regions()
    pool = operator_pool()
    weeks = WEEKS[:1] if quick else WEEKS
    traces_by_week = []
    for week in weeks:
        start = datetime.fromisoformat(week).replace(tzinfo=UTC)
        traces_by_week.append(await build_traces(infos, start, HOURS + FORECAST_HOURS, seed=SEED))
    result: dict[str, Any] = {"weeks": list(weeks), "shapes": {}}
    for shape, per_zone in SHAPES.items():
        fleet = build_fleet(
            [replica_region(info) for info in infos], nodes_per_region=3 * per_zone, seed=SEED
        )
        model = zoned(fleet, nodes_per_zone=per_zone)
        rows: dict[str, Any] = {}
        for size in POOLS:
            merged: dict[str, Outcome] = {}
            for traces in traces_by_week:
                for name, decide in policies(model, traces, infos, pool).items():
                    outcome = run_pool(name, decide, model, pool, traces, size)
                    merged[name] = merged[name].merged(outcome) if name in merged else outcome
            rows[str(size)] = describe({name: merged[name] for name in POLICIES})
        result["shapes"][shape] = {"nodes": len(fleet.nodes), "pools": rows}
    return result


def table(result: Mapping[str, Any]) -> list[str]:
    """Markdown rows: shape, pool, policy, reduction, fraction of the oracle, unserved."""
    lines = [
        "| shape | pool | policy | reduction vs agnostic | of oracle | unserved h "
        "(beyond agnostic) | never bound |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, entry in result["shapes"].items():
        for size, rows in entry["pools"].items():
            for policy, row in rows.items():
                lines.append(
                    f"| {shape} | {size} | {policy} | {_pct(row['reduction_vs_agnostic'])} | "
                    f"{_pct(row['fraction_of_oracle'])} | {row['unserved_replica_hours']} "
                    f"({row['unserved_beyond_agnostic']}) | {row['never_bound_pods']} |"
                )
    return lines


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"

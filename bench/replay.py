"""The carbon-outcome replay: a fleet, a churning read pool, placement policies and the accounting.

Pure and deterministic. Time is in whole hours from the start of the replayed window. Every hour:
pods whose life ended leave, pods still waiting for room (and the hour's new pods) are placed,
then every running read replica is charged for that hour::

    grams = replica watts / 1000 * PUE of its region * ACTUAL intensity of its zone that hour

A policy decides once per pod, at its creation, like the webhook: an ordered list of region groups
(its preferred terms, best first) and, for ``require``, the regions it may use at all. The
scheduler model then follows that order: the first group with a node that has room wins, and within
a group the least-allocated node (ties by name); regions outside every group come last. A pod whose
allowed regions are all full waits, and is retried every hour until its life ends; hours spent
waiting are reported as unserved, not charged.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol

from bench.traces import Traces
from shared.carbon.snapshot import CarbonSnapshot
from shared.core.models import Cloud, RegionInfo
from shared.scoring.footprint import estimate_node_power, region_pue
from shared.scoring.ranking import low_carbon_set, preference_terms, rank

REPLICA_VCPUS = 2
REPLICA_MEMORY_GIB = 8
"""A Horizon / Soroban RPC read replica's request (both bind alike on 4 GiB-per-vCPU nodes)."""


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    cloud: Cloud
    zone: str
    pue: float
    replica_watts: float
    """Power of one read replica: its vCPU share at CCF coefficients and 50 % utilisation."""


@dataclass(frozen=True, slots=True)
class Node:
    name: str
    region: str
    cpu_millis: int
    background_millis: int
    """CPU already requested by other workloads (the node is partly full)."""

    @property
    def free_millis(self) -> int:
        return self.cpu_millis - self.background_millis


@dataclass(frozen=True, slots=True)
class Fleet:
    regions: tuple[Region, ...]
    nodes: tuple[Node, ...]

    def region(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(name)

    @property
    def region_names(self) -> tuple[str, ...]:
        return tuple(region.name for region in self.regions)

    def slots(self, pod_millis: int) -> int:
        """How many pods of ``pod_millis`` fit on the empty fleet."""
        return sum(node.free_millis // pod_millis for node in self.nodes)


@dataclass(frozen=True, slots=True)
class PodSpec:
    name: str
    arrival: int
    """Hour the pod is created."""
    end: int
    """Hour it is deleted (exclusive): it wants service during ``arrival`` … ``end - 1``."""
    cpu_millis: int = REPLICA_VCPUS * 1000

    @property
    def wanted_hours(self) -> int:
        return self.end - self.arrival


@dataclass(frozen=True, slots=True)
class Decision:
    """What a policy decided for one pod when it was created."""

    groups: tuple[tuple[str, ...], ...] = ()
    """Regions in preference order; regions in one group are equally preferred."""
    allowed: frozenset[str] | None = None
    """The only regions the pod may run in (``require``); None: anywhere."""
    weights: tuple[int, ...] = ()
    """The preferred-affinity weight of each group, when the decision came from terms."""


class Policy(Protocol):
    name: str

    def decide(self, pod: PodSpec, hour: int) -> Decision: ...


@dataclass(frozen=True, slots=True)
class Binding:
    node: str
    hour: int
    """First hour the pod ran."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """Read-replica emissions of one policy over one replay."""

    policy: str
    grams: float
    served_hours: int
    unserved_hours: int
    pods: int
    never_served: int
    region_hours: Mapping[str, int] = field(default_factory=dict)

    @property
    def g_per_replica_hour(self) -> float:
        return self.grams / self.served_hours if self.served_hours else math.nan

    def merged(self, other: Outcome) -> Outcome:
        """Two replays' totals, e.g. several weeks."""
        hours = dict(self.region_hours)
        for region, count in other.region_hours.items():
            hours[region] = hours.get(region, 0) + count
        return Outcome(
            policy=self.policy,
            grams=self.grams + other.grams,
            served_hours=self.served_hours + other.served_hours,
            unserved_hours=self.unserved_hours + other.unserved_hours,
            pods=self.pods + other.pods,
            never_served=self.never_served + other.never_served,
            region_hours=MappingProxyType(hours),
        )


# --- building a replay ----------------------------------------------------------------------------


def replica_region(info: RegionInfo) -> Region:
    """A fleet region from its catalog entry: PUE and the replica's power for that cloud."""
    if info.zone is None:
        raise ValueError(f"{info.key} has no grid zone")
    power = estimate_node_power(
        vcpus=REPLICA_VCPUS, memory_gib=REPLICA_MEMORY_GIB, cloud=info.cloud
    ).watts
    return Region(info.region, info.cloud, info.zone, region_pue(info), power)


def build_fleet(
    regions: Sequence[Region],
    *,
    nodes_per_region: int = 3,
    node_cpu_millis: int = 8000,
    background: tuple[float, float] = (0.25, 0.75),
    seed: int = 0,
) -> Fleet:
    """Nodes partly filled by other workloads: a share drawn from ``background``, in 250m steps."""
    rng = random.Random(f"{seed}|fleet")
    nodes = []
    for region in regions:
        for index in range(nodes_per_region):
            share = rng.uniform(*background)
            used = round(node_cpu_millis * share / 250) * 250
            nodes.append(Node(f"{region.name}-{index + 1}", region.name, node_cpu_millis, used))
    return Fleet(tuple(regions), tuple(nodes))


def churn(
    hours: int,
    *,
    concurrency: float,
    life_hours: tuple[int, int] = (3, 72),
    seed: int = 0,
    prefix: str = "replica",
) -> tuple[PodSpec, ...]:
    """A read pool that churns: ``concurrency`` pods at hour 0, then Poisson arrivals that keep
    about that many alive. Lives are log-uniform in ``life_hours`` (a few hours to days) and end
    at the window's end at the latest."""
    low, high = life_hours
    mean_life = (high - low) / math.log(high / low)
    rate = concurrency / mean_life
    rng = random.Random(f"{seed}|churn")

    def life() -> int:
        return max(low, min(high, round(math.exp(rng.uniform(math.log(low), math.log(high))))))

    pods: list[PodSpec] = []
    arrivals = [0] * round(concurrency)
    for hour in range(1, hours):
        arrivals.extend([hour] * _poisson(rng, rate))
    for index, arrival in enumerate(arrivals):
        end = min(hours, arrival + life())
        pods.append(PodSpec(f"{prefix}-{index:04d}", arrival, end))
    return tuple(pods)


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: fine for the small hourly means used here.
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


# --- policies -------------------------------------------------------------------------------------


class AgnosticSpread:
    """Carbon-agnostic: no preference at all, the least-allocated node with room wins."""

    name = "agnostic"

    def decide(self, pod: PodSpec, hour: int) -> Decision:
        return Decision()


@dataclass
class RankedPolicy:
    """The webhook's decision, made with the library's own ranking functions.

    ``snapshots(hour)`` is the carbon data the webhook would hold then; whether it has forecasts
    decides between ranking on the current value only and on the expected value over the horizon.
    """

    name: str
    snapshots: Callable[[int], CarbonSnapshot]
    regions: Sequence[str]
    traces: Traces
    require: bool = False
    horizon_hours: int = 24
    low_carbon_fraction: float = 0.10
    node_counts: Mapping[str, int] | None = None
    """Nodes per region, as the webhook's eligibility sees them (sizes the ``require`` set)."""

    def decide(self, pod: PodSpec, hour: int) -> Decision:
        ranking = rank(
            self.snapshots(hour),
            self.regions,
            now=self.traces.time(hour),
            horizon_hours=self.horizon_hours,
        )
        terms = preference_terms(ranking)
        groups = tuple(term.regions for term in terms)
        weights = tuple(term.weight for term in terms)
        if not self.require:
            return Decision(groups, weights=weights)
        allowed = frozenset(
            low_carbon_set(ranking, fraction=self.low_carbon_fraction, node_counts=self.node_counts)
        )
        return Decision(groups, allowed or None, weights)


@dataclass
class Oracle:
    """Perfect foresight: the region with the lowest ACTUAL emissions over the pod's real life."""

    fleet: Fleet
    traces: Traces
    name: str = "oracle"

    def decide(self, pod: PodSpec, hour: int) -> Decision:
        costs = {
            region.name: region.replica_watts
            * region.pue
            * self.traces.mean(region.zone, hour, max(pod.end, hour + 1))
            for region in self.fleet.regions
        }
        return Decision(tuple((name,) for name in sorted(costs, key=lambda n: (costs[n], n))))


# --- the scheduler model and the replay -----------------------------------------------------------


def place(decision: Decision, fleet: Fleet, used: Mapping[str, int], pod: PodSpec) -> Node | None:
    """Follow the decision's groups; within a group the least-allocated node that fits."""
    allowed = decision.allowed
    listed = {region for group in decision.groups for region in group}
    rest = tuple(sorted(set(fleet.region_names) - listed))
    for group in (*decision.groups, rest):
        regions = {r for r in group if allowed is None or r in allowed}
        best: Node | None = None
        best_free = -1.0
        for node in fleet.nodes:
            if node.region not in regions:
                continue
            free = node.free_millis - used.get(node.name, 0)
            if free < pod.cpu_millis:
                continue
            share = free / node.cpu_millis
            if share > best_free:
                best, best_free = node, share
        if best is not None:
            return best
    return None


def simulate(
    policy: Policy, fleet: Fleet, pods: Sequence[PodSpec], hours: int
) -> dict[str, Binding]:
    """Where (and from when) each pod ran under ``policy`` and the scheduler model."""
    by_arrival: dict[int, list[PodSpec]] = {}
    for pod in pods:
        by_arrival.setdefault(pod.arrival, []).append(pod)
    used: dict[str, int] = {}
    running: dict[str, tuple[PodSpec, Node]] = {}
    waiting: list[tuple[PodSpec, Decision]] = []
    bindings: dict[str, Binding] = {}
    for hour in range(hours):
        for name, (pod, host) in list(running.items()):
            if pod.end <= hour:
                used[host.name] -= pod.cpu_millis
                del running[name]
        waiting.extend((pod, policy.decide(pod, hour)) for pod in by_arrival.get(hour, ()))
        still: list[tuple[PodSpec, Decision]] = []
        for pod, decision in waiting:
            if pod.end <= hour:
                continue
            node = place(decision, fleet, used, pod)
            if node is None:
                still.append((pod, decision))
                continue
            used[node.name] = used.get(node.name, 0) + pod.cpu_millis
            running[pod.name] = (pod, node)
            bindings[pod.name] = Binding(node.name, hour)
        waiting = still
    return bindings


def replica_hour_grams(region: Region, g_per_kwh: float) -> float:
    """Emissions of one read replica running one hour in ``region`` at ``g_per_kwh``."""
    return region.replica_watts / 1000 * region.pue * g_per_kwh


def account(
    policy: str,
    fleet: Fleet,
    traces: Traces,
    pods: Iterable[PodSpec],
    bindings: Mapping[str, Binding],
) -> Outcome:
    """Charge every hour each pod ran at its region's actual intensity that hour."""
    node_region = {node.name: fleet.region(node.region) for node in fleet.nodes}
    grams = 0.0
    served = unserved = count = never = 0
    region_hours: dict[str, int] = {}
    for pod in pods:
        count += 1
        binding = bindings.get(pod.name)
        if binding is None or binding.hour >= pod.end:
            never += 1
            unserved += pod.wanted_hours
            continue
        region = node_region[binding.node]
        ran = range(max(binding.hour, pod.arrival), pod.end)
        grams += sum(replica_hour_grams(region, traces.at(region.zone, hour)) for hour in ran)
        served += len(ran)
        unserved += pod.wanted_hours - len(ran)
        region_hours[region.name] = region_hours.get(region.name, 0) + len(ran)
    return Outcome(
        policy=policy,
        grams=grams,
        served_hours=served,
        unserved_hours=unserved,
        pods=count,
        never_served=never,
        region_hours=MappingProxyType(region_hours),
    )


def reduction(policy: Outcome, baseline: Outcome) -> float:
    """Share of the baseline's emissions per served replica-hour that ``policy`` avoids."""
    return 1 - policy.g_per_replica_hour / baseline.g_per_replica_hour


def fraction_of_oracle(policy: Outcome, baseline: Outcome, oracle: Outcome) -> float:
    """``(baseline - policy) / (baseline - oracle)`` per served replica-hour."""
    possible = baseline.g_per_replica_hour - oracle.g_per_replica_hour
    if possible <= 0:
        return math.nan
    return (baseline.g_per_replica_hour - policy.g_per_replica_hour) / possible


def adherence(
    policy: Policy, fleet: Fleet, pods: Sequence[PodSpec], bindings: Mapping[str, Binding]
) -> dict[str, float]:
    """How closely observed bindings followed the policy's terms.

    Replays the capacity the bindings imply; for each pod at the hour it was bound, the best
    group that still had a node with room is what the terms asked for. Reports the share of pods
    placed in that group, and the NodeAffinity score (out of the 200 points its plugin weight 2
    gives) the scheduler gave up on average when it chose another region: with one term per group
    a node scores ``100 * weight / best feasible weight``.
    """
    region_of = {node.name: node.region for node in fleet.nodes}
    by_bind: dict[int, list[PodSpec]] = {}
    for pod in pods:
        binding = bindings.get(pod.name)
        if binding is not None:
            by_bind.setdefault(binding.hour, []).append(pod)
    used: dict[str, int] = {}
    running: list[PodSpec] = []
    followed = placed = 0
    lost = 0.0
    hours = max(by_bind, default=-1) + 1
    for hour in range(hours):
        for pod in [p for p in running if p.end <= hour]:
            running.remove(pod)
            used[bindings[pod.name].node] -= pod.cpu_millis
        for pod in sorted(by_bind.get(hour, ()), key=lambda p: p.name):
            decision = policy.decide(pod, pod.arrival)
            node = bindings[pod.name].node
            wanted = place(decision, fleet, used, pod)
            used[node] = used.get(node, 0) + pod.cpu_millis
            running.append(pod)
            if wanted is None:
                continue
            placed += 1
            want = _group_of(decision, wanted.region)
            got = _group_of(decision, region_of[node])
            if want == got:
                followed += 1
                continue
            weights = (*decision.weights, 0)
            best = weights[min(want, len(weights) - 1)]
            if best > 0:
                lost += 200 * (best - weights[min(got, len(weights) - 1)]) / best
    return {
        "pods": placed,
        "followed_best_available_term": followed / placed if placed else math.nan,
        "mean_node_affinity_points_given_up": lost / placed if placed else math.nan,
    }


def _group_of(decision: Decision, region: str) -> int:
    for index, group in enumerate(decision.groups):
        if region in group:
            return index
    return len(decision.groups)

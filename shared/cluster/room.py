"""How many pods of one pool a set of regions can hold under the pool's own hard constraints.

Pure. The question the ``require`` policy must answer before it narrows a read pool to the
greenest regions: with the pods already placed, the pool's ``DoNotSchedule`` spread constraints
and its required pod anti-affinity, how many more pool pods would kube-scheduler bind on the
nodes of those regions? A required region term also narrows the spread domains (the default
``nodeAffinityPolicy: Honor``), so a region set is judged with only its own nodes as domains,
while cordoned nodes still count as (empty) domains, as they do for the scheduler.

The answer is a greedy fill: one pod at a time on the node whose domains hold the fewest
matching pods (what PodTopologySpread scoring also favours), every step passing the scheduler's
filters: room for the requests, no anti-affinity conflict, ``count(domain) + self - min count
<= maxSkew`` for every constraint. Existing pods' own anti-affinity towards the pool is not
modelled (the operator's pods all carry the same symmetric term).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.cluster.constraints import PoolConstraints, SpreadConstraint
from shared.cluster.inventory import NodeInfo


@dataclass(frozen=True, slots=True)
class Host:
    """One node that passes the pod's own node selector, required affinity and taints."""

    name: str
    region: str | None
    labels: Mapping[str, str]
    """Node labels: where the topology keys (hostname, zone, …) are read."""
    schedulable: bool = True
    """False for a cordoned or not-Ready node: it takes no pod but still counts as a domain."""
    free_cpu_millis: int | None = None
    """Allocatable minus requested; None when unknown (then CPU does not limit)."""
    free_memory_bytes: int | None = None

    @classmethod
    def from_node(
        cls,
        node: NodeInfo,
        *,
        requested_cpu_millis: int = 0,
        requested_memory_bytes: int = 0,
        schedulable: bool | None = None,
    ) -> Host:
        """A host from the inventory; zero allocatable reads as unknown. ``schedulable``, when
        given, says whether the pod in question may run there instead of the node's own state."""
        return cls(
            name=node.name,
            region=node.region,
            labels=node.labels,
            schedulable=node.schedulable if schedulable is None else schedulable,
            free_cpu_millis=node.cpu_millis - requested_cpu_millis if node.cpu_millis else None,
            free_memory_bytes=(
                node.memory_bytes - requested_memory_bytes if node.memory_bytes else None
            ),
        )


@dataclass(frozen=True, slots=True)
class PlacedPod:
    """A pod already bound (or nominated) to a node: the pool's own and any its selectors match."""

    node: str
    labels: Mapping[str, str]


def pool_room(
    pool: PoolConstraints,
    hosts: Iterable[Host],
    placed: Iterable[PlacedPod],
    *,
    regions: Collection[str] | None = None,
    limit: int,
) -> int:
    """How many more pool pods fit on the hosts in ``regions`` (None: every host), at most
    ``limit``."""
    fill = _Fill(pool, tuple(hosts), tuple(placed), regions)
    count = 0
    while count < limit and fill.add_one():
        count += 1
    return count


def holds_pool(
    pool: PoolConstraints,
    hosts: Iterable[Host],
    placed: Iterable[PlacedPod],
    *,
    wanted: int,
) -> Callable[[Collection[str]], bool]:
    """``holds(regions)``: can ``regions`` take ``wanted`` more pool pods? The predicate
    ``shared.scoring.ranking.low_carbon_set`` sizes the required set with."""
    frozen_hosts, frozen_placed = tuple(hosts), tuple(placed)

    def holds(regions: Collection[str]) -> bool:
        room = pool_room(pool, frozen_hosts, frozen_placed, regions=regions, limit=wanted)
        return room >= wanted

    return holds


class _Fill:
    """The state of one greedy fill: matching pods per domain, blocked domains, free room."""

    def __init__(
        self,
        pool: PoolConstraints,
        hosts: Sequence[Host],
        placed: Sequence[PlacedPod],
        regions: Collection[str] | None,
    ) -> None:
        self.pool = pool
        inside = [h for h in hosts if regions is None or h.region in regions]
        self.counts = [self._domains(c, hosts, inside, placed) for c in pool.spreads]
        self.selves = [int(c.selector.matches(pool.labels)) for c in pool.spreads]
        by_name = {h.name: h for h in hosts}
        self.blocked: list[set[str]] = []
        for term in pool.anti_affinity:
            taken = set()
            for pod in placed:
                host = by_name.get(pod.node)
                if host is not None and term.selector.matches(pod.labels):
                    value = host.labels.get(term.topology_key)
                    if value is not None:
                        taken.add(value)
            self.blocked.append(taken)
        self.anti_self = [t.selector.matches(pool.labels) for t in pool.anti_affinity]
        self.free = {
            h.name: [h.free_cpu_millis, h.free_memory_bytes] for h in inside if h.schedulable
        }
        self.candidates = [
            h
            for h in inside
            if h.schedulable
            and all(c.topology_key in h.labels for c in pool.spreads)
            and all(t.topology_key in h.labels for t in pool.anti_affinity)
        ]

    @staticmethod
    def _domains(
        constraint: SpreadConstraint,
        hosts: Sequence[Host],
        inside: Sequence[Host],
        placed: Sequence[PlacedPod],
    ) -> dict[str, int]:
        scope = inside if constraint.honor_node_affinity else hosts
        key = constraint.topology_key
        domain_of = {h.name: h.labels[key] for h in scope if key in h.labels}
        counts = dict.fromkeys(domain_of.values(), 0)
        for pod in placed:
            domain = domain_of.get(pod.node)
            if domain is not None and constraint.selector.matches(pod.labels):
                counts[domain] += 1
        return counts

    def _minimum(self, index: int) -> int:
        counts = self.counts[index]
        if len(counts) < self.pool.spreads[index].min_domains or not counts:
            return 0
        return min(counts.values())

    def _fits(self, host: Host, minimums: Sequence[int]) -> bool:
        cpu, memory = self.free[host.name]
        if cpu is not None and cpu < self.pool.cpu_millis:
            return False
        if memory is not None and memory < self.pool.memory_bytes:
            return False
        for term, blocked in zip(self.pool.anti_affinity, self.blocked, strict=True):
            if host.labels[term.topology_key] in blocked:
                return False
        for index, constraint in enumerate(self.pool.spreads):
            count = self.counts[index][host.labels[constraint.topology_key]]
            if count + self.selves[index] - minimums[index] > constraint.max_skew:
                return False
        return True

    def add_one(self) -> bool:
        minimums = [self._minimum(i) for i in range(len(self.pool.spreads))]
        best: Host | None = None
        best_key: tuple[int, str] | None = None
        for host in self.candidates:
            if not self._fits(host, minimums):
                continue
            crowd = sum(
                self.counts[i][host.labels[c.topology_key]] for i, c in enumerate(self.pool.spreads)
            )
            key = (crowd, host.name)
            if best_key is None or key < best_key:
                best, best_key = host, key
        if best is None:
            return False
        for index, constraint in enumerate(self.pool.spreads):
            self.counts[index][best.labels[constraint.topology_key]] += self.selves[index]
        for term, blocked, own in zip(
            self.pool.anti_affinity, self.blocked, self.anti_self, strict=True
        ):
            if own:
                blocked.add(best.labels[term.topology_key])
        room = self.free[best.name]
        if room[0] is not None:
            room[0] -= self.pool.cpu_millis
        if room[1] is not None:
            room[1] -= self.pool.memory_bytes
        return True

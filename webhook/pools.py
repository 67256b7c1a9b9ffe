"""Read pools with hard rules between their pods: whose pool a pod is, and what the pool needs.

Pure. A pod whose own spec carries ``DoNotSchedule`` topology spread constraints or required pod
anti-affinity (the upstream operator's read pools carry both) is a pool pod: a required region
set must hold the rest of its pool, not just this pod, or the pool's later pods stay Pending.
``pool_need`` gathers what ``shared.cluster.room.holds_pool`` asks, from the in-memory node
inventory and ``shared.cluster.workloads.Workloads``: the hosts (nodes that pass the pod's node
selector and required node affinity, cordoned ones as empty domains, free room after the
requests of the pods bound there), the pods already placed in the pod's namespace (what its
selectors count, the StellarNode's main pod included), and how many more pods the pool wants:
the owning StatefulSet's current ``spec.replicas`` less its pods already bound, at least one (the
pod being admitted).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from shared.cluster.constraints import ConstraintError, PoolConstraints
from shared.cluster.inventory import NodeInfo
from shared.cluster.room import Host, PlacedPod, holds_pool
from shared.cluster.workloads import BoundPod, StatefulSetInfo, Workloads
from shared.core.shapes import object_or_empty
from webhook.eligibility import Constraints
from webhook.errors import MutationError

CONSTRAINT_ANNOTATION = "stellar.org/carbon-constraint"
"""Set when no region set holds the pool: the pod's rules that stop one from doing so."""

_ORDINAL_SUFFIX = "-"


@dataclass(frozen=True, slots=True)
class PoolNeed:
    """What a required region set must hold for one pool pod."""

    pool: PoolConstraints
    hosts: tuple[Host, ...]
    placed: tuple[PlacedPod, ...]
    wanted: int
    """Pods the set must still take, this one included."""

    def holds(self) -> Callable[[Collection[str]], bool]:
        return holds_pool(self.pool, self.hosts, self.placed, wanted=self.wanted)

    def blocking(self, regions: Collection[str]) -> tuple[str, ...]:
        """The rules that keep ``regions`` from holding the pool: each one that alone, removed,
        would let them; all of them when no single one does; ``resources`` when even without
        any rule the nodes lack room."""
        rules = [(f"topologySpread:{c.topology_key}", c) for c in self.pool.spreads] + [
            (f"podAntiAffinity:{t.topology_key}", t) for t in self.pool.anti_affinity
        ]

        def holds_without(dropped: Collection[object]) -> bool:
            pool = dataclasses.replace(
                self.pool,
                spreads=tuple(c for c in self.pool.spreads if c not in dropped),
                anti_affinity=tuple(t for t in self.pool.anti_affinity if t not in dropped),
            )
            return holds_pool(pool, self.hosts, self.placed, wanted=self.wanted)(regions)

        if not holds_without([rule for _, rule in rules]):
            return ("resources",)
        single = tuple(name for name, rule in rules if holds_without([rule]))
        return single or tuple(name for name, _ in rules)


def hard_rules(pod: Mapping[str, Any]) -> PoolConstraints | None:
    """The pod's pool constraints when it has hard rules between pool pods, else None.

    Raises ``MutationError`` on rules the scheduler would reject."""
    if not may_have_hard_rules(pod):
        return None  # most pods: no spread constraint and no pod anti-affinity at all
    try:
        pool = PoolConstraints.from_pod(pod)
    except ConstraintError as e:
        raise MutationError(f"pod scheduling constraints: {e}") from e
    return pool if pool.spreads or pool.anti_affinity else None


def same_rules(pool: PoolConstraints | None, pod: Mapping[str, Any]) -> PoolConstraints | None:
    """``hard_rules(pod)`` when ``pool`` is ``hard_rules`` of a pod with the same
    ``pool_rules_key``: only ``pod``'s labels are read. Raises ``MutationError`` alike (a pod
    whose labels are not an object)."""
    try:
        own = (pool or _NO_RULES).with_labels_of(pod)
    except ConstraintError as e:
        raise MutationError(f"pod scheduling constraints: {e}") from e
    return own if pool is not None else None


_NO_RULES = PoolConstraints(labels={}, spreads=(), anti_affinity=())


def pool_rules_key(pod: Mapping[str, Any]) -> bytes | None:
    """Canonical JSON of what ``hard_rules`` reads besides the pod's labels (spreads, pod
    anti-affinity, containers' requests), to remember its answer by (``same_rules`` reads the
    labels); None when that is not plain JSON."""
    spec = object_or_empty(pod.get("spec"))
    affinity = object_or_empty(spec.get("affinity"))
    containers = spec.get("containers")
    requests = (
        [object_or_empty(object_or_empty(c).get("resources")).get("requests") for c in containers]
        if type(containers) is list
        else containers
    )
    parts = [
        spec.get("topologySpreadConstraints"),
        affinity.get("podAntiAffinity"),
        requests,
    ]
    try:
        return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None


def may_have_hard_rules(pod: Mapping[str, Any]) -> bool:
    """Whether the pod has spread constraints or pod anti-affinity at all: a cheap test that
    spares most pods the full read."""
    spec = object_or_empty(pod.get("spec"))
    if spec.get("topologySpreadConstraints"):
        return True
    return bool(object_or_empty(spec.get("affinity")).get("podAntiAffinity"))


def owning_statefulset(
    pod: Mapping[str, Any], namespace: str, workloads: Workloads
) -> StatefulSetInfo | None:
    """The StatefulSet that owns ``pod``: its controller reference (the StatefulSet controller
    sets it on the pod it creates), else one in the namespace whose selector matches the pod's
    labels and whose name, with an ordinal, is the pod's."""
    metadata = object_or_empty(pod.get("metadata"))
    owners = metadata.get("ownerReferences")
    if isinstance(owners, list):
        for owner in owners:
            if (
                (type(owner) is dict or isinstance(owner, Mapping))
                and owner.get("kind") == "StatefulSet"
                and owner.get("controller") is True
                and isinstance(owner.get("name"), str)
            ):
                return workloads.statefulsets.get((namespace, owner["name"]))
        if owners:
            return None  # owned, but by something else
    labels = object_or_empty(metadata.get("labels"))
    name = metadata.get("name") or metadata.get("generateName")
    if not isinstance(name, str):
        return None
    for statefulset in workloads.statefulsets.values():
        if (
            statefulset.namespace == namespace
            and name.startswith(statefulset.name + _ORDINAL_SUFFIX)
            and _is_ordinal(name[len(statefulset.name) + 1 :])
            and statefulset.selects(labels)
        ):
            return statefulset
    return None


def _is_ordinal(rest: str) -> bool:
    # generateName ends with the dash, so an empty rest is a template name, not an ordinal.
    return rest == "" or rest.isdigit()


SpreadDomains = tuple[tuple[NodeInfo, bool], ...]
"""The nodes a pod's spread constraints count, each with whether the pod may run there."""


def spread_domains(pod: Mapping[str, Any], nodes: Iterable[NodeInfo]) -> SpreadDomains:
    """The nodes ``pod``'s node selector and required node affinity match, whatever their taints
    and schedulability (a cordoned node is an empty domain), each with whether the scheduler's
    filters let the pod onto it. Raises ``MutationError`` like ``eligible_regions``."""
    constraints = Constraints.from_pod(pod)
    return tuple((node, constraints.admits(node)) for node in nodes if constraints.selects(node))


def pool_hosts(domains: SpreadDomains, workloads: Workloads) -> tuple[Host, ...]:
    """The hosts of ``domains`` (``spread_domains``) with their free room after the requests of
    the pods bound there."""
    hosts = []
    for node, admitted in domains:
        requested = workloads.requested_on(node.name)
        hosts.append(
            Host.from_node(
                node,
                requested_cpu_millis=requested.cpu_millis,
                requested_memory_bytes=requested.memory_bytes,
                schedulable=admitted,
            )
        )
    return tuple(hosts)


def pool_need(
    pool: PoolConstraints,
    hosts: tuple[Host, ...],
    bound: Iterable[BoundPod],
    statefulset: StatefulSetInfo | None,
) -> PoolNeed:
    """What a required region set must hold for a pod of ``pool`` (see the module docstring):
    ``hosts`` from ``pool_hosts``, ``bound`` the pods bound in its namespace."""
    placed = tuple(PlacedPod(p.node, p.labels) for p in bound)
    wanted = 1
    if statefulset is not None:
        running = sum(1 for p in placed if statefulset.selects(p.labels))
        wanted = max(1, statefulset.replicas - running)
    return PoolNeed(pool=pool, hosts=hosts, placed=placed, wanted=wanted)

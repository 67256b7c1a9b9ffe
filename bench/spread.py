"""The replay's scheduler model for pods with hard spread rules: topology spread, anti-affinity.

Pure and deterministic, written from kube-scheduler's filters rather than from the library's
room maths (``shared.cluster.room``), so the replay checks that maths instead of repeating it:

* PodTopologySpread (``DoNotSchedule``): a node passes when ``count(its domain) + 1 - min count
  <= maxSkew``, the counts being the matching pods on the nodes that pass the pod's *required*
  node affinity (``nodeAffinityPolicy: Honor``), every such node's domain counted even when it
  is cordoned or full (``nodeTaintsPolicy: Ignore``);
* required pod anti-affinity on the hostname: no node already running a matching pod;
* room for the CPU request, and no cordoned node.

Among the nodes that pass, the decision's groups (preferred terms, best first) are followed as in
``bench.replay.place``; within a group the node whose zone holds the fewest matching pods wins
(the spread score), then the least allocated, then the name.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from bench.replay import Decision, Fleet, Node

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"


@dataclass(frozen=True, slots=True)
class ZonedFleet:
    """A replay fleet whose nodes also sit in zones, some perhaps cordoned."""

    fleet: Fleet
    zones: Mapping[str, str]
    """Node name → zone."""
    cordoned: frozenset[str] = frozenset()

    def domain(self, node: Node, key: str) -> str:
        if key == HOSTNAME:
            return node.name
        if key == ZONE:
            return self.zones[node.name]
        if key == REGION:
            return node.region
        raise KeyError(f"the model knows no topology key {key!r}")

    def labels(self, node: Node) -> dict[str, str]:
        return {key: self.domain(node, key) for key in (HOSTNAME, ZONE, REGION)}


def zoned(fleet: Fleet, *, nodes_per_zone: int) -> ZonedFleet:
    """Zones ``<region>-a``, ``-b``, … of ``nodes_per_zone`` consecutive nodes of each region."""
    zones: dict[str, str] = {}
    seen: Counter[str] = Counter()
    for node in fleet.nodes:
        index = seen[node.region]
        seen[node.region] += 1
        zones[node.name] = f"{node.region}-{chr(ord('a') + index // nodes_per_zone)}"
    return ZonedFleet(fleet, zones)


@dataclass(frozen=True, slots=True)
class HardRules:
    """A pool's hard rules: DoNotSchedule spreads (topology key, maxSkew) and anti-affinity keys.

    Every pod the model counts (the pool's and the node's main pod) matches every selector, as
    with the operator's template."""

    spreads: tuple[tuple[str, int], ...]
    anti_affinity: tuple[str, ...]


def skews(
    model: ZonedFleet,
    rules: HardRules,
    matching: Mapping[str, int],
    allowed: Collection[str] | None,
) -> dict[str, dict[str, int]]:
    """Per spread key: the matching pods of each domain over the nodes the required affinity
    leaves (``allowed`` regions, None: all)."""
    counts: dict[str, dict[str, int]] = {}
    for key, _ in rules.spreads:
        per: dict[str, int] = {}
        for node in model.fleet.nodes:
            if allowed is not None and node.region not in allowed:
                continue
            domain = model.domain(node, key)
            per[domain] = per.get(domain, 0) + matching.get(node.name, 0)
        counts[key] = per
    return counts


def passes(
    model: ZonedFleet,
    rules: HardRules,
    node: Node,
    counts: Mapping[str, Mapping[str, int]],
    matching: Mapping[str, int],
    taken_domains: Mapping[str, Collection[str]],
) -> bool:
    """The spread and anti-affinity filters for one more matching pod on ``node``."""
    if node.name in model.cordoned:
        return False
    for key in rules.anti_affinity:
        if model.domain(node, key) in taken_domains[key]:
            return False
    for key, max_skew in rules.spreads:
        per = counts[key]
        if per[model.domain(node, key)] + 1 - min(per.values()) > max_skew:
            return False
    return True


def place_spread(
    decision: Decision,
    model: ZonedFleet,
    rules: HardRules,
    matching: Mapping[str, int],
    used: Mapping[str, int],
    cpu_millis: int,
) -> Node | None:
    """Where the scheduler model binds one more pool pod, or None: it stays Pending."""
    fleet = model.fleet
    allowed = decision.allowed
    counts = skews(model, rules, matching, allowed)
    taken = {
        key: {model.domain(n, key) for n in fleet.nodes if matching.get(n.name, 0)}
        for key in rules.anti_affinity
    }
    zone_counts = skews(model, HardRules(((ZONE, 1),), ()), matching, None)[ZONE]
    listed = {region for group in decision.groups for region in group}
    rest = tuple(sorted(set(fleet.region_names) - listed))
    for group in (*decision.groups, rest):
        best: Node | None = None
        best_key: tuple[int, float, str] | None = None
        for node in _in_regions(fleet.nodes, group, allowed):
            free = node.free_millis - used.get(node.name, 0)
            if free < cpu_millis or not passes(model, rules, node, counts, matching, taken):
                continue
            key = (zone_counts[model.zones[node.name]], -free / node.cpu_millis, node.name)
            if best_key is None or key < best_key:
                best, best_key = node, key
        if best is not None:
            return best
    return None


def _in_regions(
    nodes: Sequence[Node], group: Collection[str], allowed: Collection[str] | None
) -> list[Node]:
    return [n for n in nodes if n.region in group and (allowed is None or n.region in allowed)]

"""Pure accounting for the read-pool replay on the real scheduler (``bench.kube_readpool``).

What one hour of a StatefulSet's pods is charged, when the hour's scheduling has settled, and
which Pending pods the webhook's required term is to blame for.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bench.replay import Fleet, Outcome, replica_hour_grams
from bench.traces import Traces

AFFINITY_MISMATCH = "didn't match Pod's node affinity/selector"
"""kube-scheduler's reason for a node the pod's required node affinity (or selector) rules out."""


@dataclass
class Ledger:
    """Replica-hours served and unserved, and their emissions, hour by hour."""

    fleet: Fleet
    traces: Traces
    grams: float = 0.0
    served: int = 0
    wanted: int = 0
    region_hours: dict[str, int] = field(default_factory=dict)

    def charge(self, hour: int, replicas: int, nodes: Iterable[str]) -> None:
        """One hour: ``replicas`` wanted, one served on each of ``nodes`` (the bound ones among
        ordinals below ``replicas``), charged at the hour's actual intensity of its region."""
        region_of = {node.name: node.region for node in self.fleet.nodes}
        self.wanted += replicas
        for node in nodes:
            region = self.fleet.region(region_of[node])
            self.grams += replica_hour_grams(region, self.traces.at(region.zone, hour))
            self.served += 1
            self.region_hours[region.name] = self.region_hours.get(region.name, 0) + 1

    def outcome(self, policy: str, *, pods: int, never_served: int) -> Outcome:
        return Outcome(
            policy=policy,
            grams=self.grams,
            served_hours=self.served,
            unserved_hours=self.wanted - self.served,
            pods=pods,
            never_served=never_served,
            region_hours=MappingProxyType(dict(self.region_hours)),
        )


@dataclass(frozen=True, slots=True)
class PodState:
    """What the replay reads of one live (not terminating) pool pod."""

    uid: str
    node: str | None
    unschedulable: bool
    message: str = ""


def settled(pods: Mapping[int, PodState], replicas: int) -> bool:
    """Whether an ``OrderedReady`` StatefulSet of ``replicas`` is done for now: ordinals bound in
    order up to one the scheduler marked unschedulable (nothing after it is created), or all of
    them bound and none above ``replicas`` left."""
    for ordinal in range(replicas):
        pod = pods.get(ordinal)
        if pod is None:
            return False
        if pod.node is not None:
            continue
        return pod.unschedulable
    return all(ordinal < replicas for ordinal in pods)


def served_nodes(pods: Mapping[int, PodState], replicas: int) -> list[str]:
    """The nodes serving the pool this hour: bound pods among the wanted ordinals."""
    return [p.node for o, p in sorted(pods.items()) if o < replicas and p.node is not None]


def blamed_on_webhook(pod: PodState, *, required_regions: bool, fits_without: bool) -> bool:
    """A Pending pod the webhook's required term keeps Pending: the scheduler marked it
    unschedulable, it carries a required region term, the scheduler names node affinity among
    its reasons, and without that term some node would have taken it at that moment
    (``fits_without``, the scheduler's filters on the same live placement)."""
    return (
        pod.unschedulable
        and pod.node is None
        and required_regions
        and AFFINITY_MISMATCH in pod.message
        and fits_without
    )

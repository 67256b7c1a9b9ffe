"""The descheduler model for read replicas that follow the grid: who gets evicted, and when.

Pure and deterministic, written from the descheduler's own code (v0.36, the version the profile
in docs/tiers.md is for) rather than from what one would wish it did:

* ``RemovePodsViolatingNodeAffinity`` with ``preferredDuringSchedulingIgnoredDuringExecution``
  evicts a pod when the best total preferred weight over **all** ready nodes is higher than its
  own node's (``GetBestNodeWeightGivenPodPreferredAffinity(pod, nodes)``), and the pod fits some
  node (``PodFitsAnyNode``). The better node need not be one the pod could go to: a tier-0 node
  that already runs a pool pod still counts.
* ``nodeFit: true`` (the DefaultEvictor's ``PreEvictionFilter``) adds: the pod fits some node
  other than its own. The descheduler's ``NodeFit`` checks the node is schedulable, the pod's
  node selector and *required* node affinity against the node's labels now (so the tier prefix
  ``0..k`` the webhook wrote), taints, the pod's anti-affinity against pods on that node, and
  room for its requests. Topology spread constraints are not checked: the scheduler may still
  put the replacement back where the pod was.
* The DefaultEvictor's ``minPodAge`` and ``minReplicas``; ``maxNoOfPodsToEvictPerNamespace``.
* Evictions go through the Eviction API, which refuses while the PodDisruptionBudget allows no
  disruption: ready pods minus ``minAvailable``. A refused eviction is logged and the plugin goes
  on with the next pod.

Nodes are visited in name order and pods on a node in ordinal order (the real descheduler visits
them in its informer's order, which is arbitrary).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from shared.scoring.ranking import PreferenceTerm


@dataclass(frozen=True, slots=True)
class Profile:
    """The descheduler profile of docs/tiers.md, the PDB and how long a new replica catches up."""

    interval_minutes: int = 5
    """Minutes between descheduling cycles (the descheduler chart's ``deschedulingInterval``)."""
    min_pod_age_minutes: int = 240
    """The DefaultEvictor's ``minPodAge`` (4h in docs/tiers.md's profile)."""
    max_per_namespace: int = 2
    """``maxNoOfPodsToEvictPerNamespace`` per cycle."""
    min_replicas: int = 2
    """The DefaultEvictor's ``minReplicas``: owners with fewer replicas are never evicted from."""
    unavailable: int = 1
    """The PodDisruptionBudget: ``minAvailable = replicas - unavailable``."""
    catch_up_minutes: int = 20
    """How long a replacement runs before it is ready: a Horizon or Soroban RPC read replica
    catching up with the network from its last checkpoint."""

    def __post_init__(self) -> None:
        if self.interval_minutes < 1 or 60 % self.interval_minutes:
            raise ValueError(f"the interval must divide an hour, got {self.interval_minutes}")
        if self.catch_up_minutes < 0 or self.min_pod_age_minutes < 0:
            raise ValueError("catch-up time and minimum pod age must not be negative")
        if self.unavailable < 1 or self.max_per_namespace < 1:
            raise ValueError("the PDB and the namespace limit must allow at least one eviction")


@dataclass(frozen=True, slots=True)
class Replica:
    """One running pool pod as the descheduler sees it."""

    ordinal: int
    node: str
    created: int
    """Minute it was created (its age counts from here)."""
    ready_at: int
    """Minute it became (or becomes) ready."""
    terms: tuple[PreferenceTerm, ...]
    """Preferred terms on the tier label; a term's ``regions`` hold tier values."""
    top: int | None
    """Required tiers ``0..top``; None: no required tier term."""

    def weight(self, tier: int | None) -> int:
        """Total weight of the preferred terms a node with ``tier`` satisfies."""
        if tier is None:
            return 0
        label = str(tier)
        return sum(term.weight for term in self.terms if label in term.regions)

    def allows(self, tier: int | None) -> bool:
        """The required tier term holds for a node with ``tier``."""
        return self.top is None or (tier is not None and tier <= self.top)


@dataclass(frozen=True, slots=True)
class Cluster:
    """The nodes at one moment: each one's tier label, room, and who runs there."""

    tiers: Mapping[str, int | None]
    """Node → its tier label now (None: no label)."""
    free_millis: Mapping[str, int]
    """Node → CPU left by other work, before any pool pod."""
    schedulable: frozenset[str]
    main: str
    """The node of the StellarNode's main pod, which every pool pod's anti-affinity matches."""
    cpu_millis: int
    """A pool pod's CPU request."""

    @property
    def present(self) -> frozenset[int | None]:
        """The tiers some ready node carries now."""
        return frozenset(self.tiers.values())

    def open_tiers(self, occupied: Collection[str]) -> frozenset[int | None]:
        """The tiers of the nodes where the descheduler's ``NodeFit`` lets one more pool pod in
        before its required node affinity is checked: schedulable, room for the requests, and
        neither the main pod nor a pool pod there (the pool's required hostname anti-affinity).
        A pod's own node holds a pool pod, itself, so it is never among them."""
        return frozenset(
            tier
            for node, tier in self.tiers.items()
            if node in self.schedulable
            and node != self.main
            and node not in occupied
            and self.free_millis[node] >= self.cpu_millis
        )


def ready(replicas: Iterable[Replica], now: int) -> int:
    return sum(1 for replica in replicas if replica.ready_at <= now)


def should_evict(replica: Replica, cluster: Cluster, open_tiers: Collection[int | None]) -> bool:
    """The plugin's and the DefaultEvictor's checks for one pod (age and PDB aside): a better
    preferred weight on any node at all, and some node other than its own that it fits
    (``open_tiers``: ``Cluster.open_tiers``), which implies ``PodFitsAnyNode``."""
    own = replica.weight(cluster.tiers.get(replica.node))
    best = max((replica.weight(tier) for tier in cluster.present), default=0)
    return best > own and any(replica.allows(tier) for tier in open_tiers)


def cycle(
    replicas: Sequence[Replica], cluster: Cluster, profile: Profile, *, now: int, wanted: int
) -> list[Replica]:
    """The pods one descheduling cycle evicts, in order. ``wanted`` is the StatefulSet's
    replicas; the PDB's ``minAvailable`` is ``wanted - profile.unavailable``."""
    if wanted < profile.min_replicas:
        return []
    allowed = ready(replicas, now) - (wanted - profile.unavailable)
    open_tiers = cluster.open_tiers({replica.node for replica in replicas})
    evicted: list[Replica] = []
    for replica in sorted(replicas, key=lambda r: (r.node, r.ordinal)):
        if len(evicted) >= profile.max_per_namespace:
            break
        if now - replica.created < profile.min_pod_age_minutes:
            continue
        if not should_evict(replica, cluster, open_tiers):
            continue
        if allowed <= 0:
            continue  # the Eviction API answers 429: the budget allows no disruption now
        allowed -= 1
        evicted.append(replica)
    return evicted

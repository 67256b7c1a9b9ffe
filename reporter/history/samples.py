"""Accounting samples: what one hour of the cluster cost, per region, per node role and for the
read replicas, built from the view the reporter already computes.

A sample is keyed by (hour, kind, subject) and holds the hour's facility energy (IT power x PUE x
one hour, as the footprint model estimates it) and its location-based emissions. Pure functions:
no I/O, no clock.

Node role: the Stellar role of the pods a node runs (``validator``, ``horizon``, ``soroban-rpc``,
``read-replica``), ``mixed`` when they have several, ``none`` when it runs no Stellar pod. Every
node is in exactly one role, so the roles add up to the cluster.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from reporter.footprints import READ_REPLICA, NodeFootprint
from reporter.placement import ReplicaPlacement, replica_watts
from shared.cluster.inventory import PodInfo
from shared.cluster.pods import pod_role
from shared.core.models import Freshness

HOUR = timedelta(hours=1)
MIXED = "mixed"
NO_ROLE = "none"
READ_REPLICAS = "read-replicas"
"""The subject of the read-replica sample."""
CLUSTER = "cluster"
"""The subject of the cluster sample."""


class Kind(enum.StrEnum):
    """What a sample is about."""

    REGION = "region"
    ROLE = "role"
    REPLICAS = "replicas"
    CLUSTER = "cluster"


class Coverage(enum.StrEnum):
    """How an hour's intensity was known, best first; ``missing``: no sample or no intensity."""

    LIVE = "live"
    STALE = "stale"
    STATIC = "static"
    MISSING = "missing"


COVERAGE_RANKS = tuple(Coverage)
"""Coverage classes by rank, best first: a class is stored as its index here."""
_ORDER = {c: i for i, c in enumerate(COVERAGE_RANKS)}


def rank(coverage: Coverage) -> int:
    return _ORDER[coverage]


def worst(classes: Iterable[Coverage]) -> Coverage:
    """The least trustworthy of ``classes`` (``missing`` for none)."""
    return max(classes, key=_ORDER.__getitem__, default=Coverage.MISSING)


def coverage_of(freshness: Freshness | None) -> Coverage:
    return Coverage.MISSING if freshness is None else Coverage(freshness.value)


@dataclass(frozen=True, slots=True)
class Sample:
    """One subject's hour. ``grams`` None: no emissions known for any of its nodes."""

    hour: datetime
    """Start of the UTC hour."""
    kind: Kind
    subject: str
    members: int
    """Nodes (region, role) or accounted replicas (read replicas)."""
    energy_wh: float
    """Facility energy in the hour: IT power x PUE x 1 h."""
    grams: float | None
    """Location-based emissions in the hour, gCO2eq."""
    coverage: Coverage
    intensity: float | None = None
    """Region: grid intensity in gCO2eq/kWh."""
    source: str | None = None
    """Region: the intensity's provenance label."""
    pue: float | None = None
    """Region: the PUE applied."""
    baseline_grams: float | None = None
    """Read replicas: emissions of the even spread over the eligible regions."""
    placement: Mapping[str, int] | None = None
    """Read replicas: region → replicas that ran there."""


def hour_of(at: datetime) -> datetime:
    """The start of ``at``'s UTC hour."""
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def node_role(fp: NodeFootprint) -> str:
    roles = {p.role for p in fp.pods}
    if not roles:
        return NO_ROLE
    return roles.pop() if len(roles) == 1 else MIXED


def _node_coverage(fp: NodeFootprint) -> Coverage:
    if fp.emissions is None or fp.intensity is None:
        return Coverage.MISSING
    return coverage_of(fp.intensity.provenance.freshness)


@dataclass(slots=True)
class _Sum:
    members: int = 0
    energy_wh: float = 0.0
    grams: float | None = None
    coverage: list[Coverage] = field(default_factory=list)

    def add(self, fp: NodeFootprint) -> None:
        self.members += 1
        self.energy_wh += fp.power.watts * fp.pue
        if fp.emissions is not None:
            self.grams = (self.grams or 0.0) + fp.emissions.g_per_hour
        self.coverage.append(_node_coverage(fp))


def hourly_samples(
    footprints: Iterable[NodeFootprint],
    pods: Iterable[PodInfo],
    placement: ReplicaPlacement,
    *,
    at: datetime,
) -> list[Sample]:
    """The samples of ``at``'s hour: one per region with nodes, one per node role, one for the
    whole cluster (every node, written with the rest so that the cluster's series is one row an
    hour), and one for the read replicas when any ran on a node with a known intensity."""
    footprints = tuple(footprints)
    hour = hour_of(at)
    regions: dict[str, _Sum] = {}
    roles: dict[str, _Sum] = {}
    cluster = _Sum()
    first: dict[str, NodeFootprint] = {}
    for fp in footprints:
        cluster.add(fp)
        roles.setdefault(node_role(fp), _Sum()).add(fp)
        if fp.node.region is not None:
            regions.setdefault(fp.node.region, _Sum()).add(fp)
            first.setdefault(fp.node.region, fp)
    samples = [
        Sample(
            hour,
            Kind.REGION,
            name,
            total.members,
            total.energy_wh,
            total.grams,
            worst(total.coverage),
            intensity=fp.intensity.g_per_kwh if fp.intensity is not None else None,
            source=fp.intensity.provenance.label if fp.intensity is not None else None,
            pue=fp.pue,
        )
        for name, total in sorted(regions.items())
        for fp in (first[name],)
    ]
    samples.extend(
        Sample(hour, Kind.ROLE, name, t.members, t.energy_wh, t.grams, worst(t.coverage))
        for name, t in sorted(roles.items())
    )
    if cluster.members:
        samples.append(
            Sample(
                hour,
                Kind.CLUSTER,
                CLUSTER,
                cluster.members,
                cluster.energy_wh,
                cluster.grams,
                worst(cluster.coverage),
            )
        )
    replicas = replica_sample(footprints, pods, placement, hour=hour)
    if replicas is not None:
        samples.append(replicas)
    return samples


def replica_sample(
    footprints: Iterable[NodeFootprint],
    pods: Iterable[PodInfo],
    placement: ReplicaPlacement,
    *,
    hour: datetime,
) -> Sample | None:
    """Where the read replicas ran and what they emitted against the even spread, from the
    placement ``reporter.placement`` computed; None when no replica's emissions are known."""
    if not placement.accounted or placement.g_per_hour is None:
        return None
    by_name = {fp.node.name: fp for fp in footprints}
    energy = 0.0
    where: dict[str, int] = {}
    coverage: list[Coverage] = []
    for pod in pods:
        fp = by_name.get(pod.node_name) if pod.node_name else None
        if pod_role(pod.labels) != READ_REPLICA or fp is None or fp.intensity is None:
            continue
        if fp.node.region is None:
            continue
        energy += replica_watts(pod, fp) * fp.pue
        where[fp.node.region] = where.get(fp.node.region, 0) + 1
        coverage.append(_node_coverage(fp))
    return Sample(
        hour,
        Kind.REPLICAS,
        READ_REPLICAS,
        placement.accounted,
        energy,
        placement.g_per_hour,
        worst(coverage),
        baseline_grams=placement.baseline_g_per_hour,
        placement=dict(sorted(where.items())),
    )

"""Per-node footprints: estimated power, PUE, grid intensity and the Stellar pods on each node.

Pure functions over the inventory, a ``CarbonSnapshot`` and the region catalog. The power model and
the emission arithmetic live in ``shared.scoring.footprint`` (Cloud Carbon Footprint
coefficients); this
module decides which inputs each node gets and keeps unknown intensity unknown (never 0 g).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reporter.regions import RegionLookup, region_info
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo, PodInfo
from shared.cluster.pods import pod_role
from shared.core.models import Intensity, RegionInfo
from shared.scoring.footprint import (
    Footprint,
    PowerEstimate,
    default_pue,
    estimate_node_power,
    footprint,
    region_pue,
)

logger = logging.getLogger(__name__)

GIB = 1024**3
READ_REPLICA = "read-replica"


@dataclass(frozen=True, slots=True)
class StellarPod:
    pod: PodInfo
    role: str
    """``validator``, ``horizon``, ``soroban-rpc`` or ``read-replica``."""


@dataclass(frozen=True, slots=True)
class NodeFootprint:
    """One node's estimated operational emissions; ``emissions`` None: intensity unknown."""

    node: NodeInfo
    region: RegionInfo | None
    power: PowerEstimate
    pue: float
    intensity: Intensity | None
    emissions: Footprint | None
    pods: tuple[StellarPod, ...]


def stellar_pods_by_node(pods: Iterable[PodInfo]) -> dict[str, list[StellarPod]]:
    """Stellar pods bound to a node, by node name, each list ordered by namespace and name."""
    grouped: dict[str, list[StellarPod]] = {}
    for pod in pods:
        if pod.node_name is None:
            continue
        role = pod_role(pod.labels)
        if role is None:
            continue
        grouped.setdefault(pod.node_name, []).append(StellarPod(pod, role))
    for members in grouped.values():
        members.sort(key=lambda p: (p.pod.namespace, p.pod.name))
    return grouped


def utilisation(node: NodeInfo, usage_millis: Mapping[str, int]) -> float | None:
    """Measured CPU utilisation (0-1) from metrics.k8s.io usage, None when not measured."""
    used = usage_millis.get(node.name)
    if used is None or node.cpu_millis <= 0:
        return None
    return min(1.0, max(0.0, used / node.cpu_millis))


def node_footprint(
    node: NodeInfo,
    *,
    snapshot: CarbonSnapshot,
    catalog: RegionLookup,
    pods: Sequence[StellarPod] = (),
    usage_millis: Mapping[str, int] | None = None,
) -> NodeFootprint:
    info = region_info(node.region, snapshot, catalog, node.cloud) if node.region else None
    cloud = node.cloud or (info.cloud if info is not None else None)
    power = estimate_node_power(
        vcpus=node.vcpus,
        memory_gib=node.memory_bytes / GIB,
        cloud=cloud,
        utilisation=utilisation(node, usage_millis or {}),
    )
    pue = region_pue(info) if info is not None else default_pue(cloud)
    carbon = snapshot.get(node.region) if node.region else None
    intensity = carbon.current if carbon is not None else None
    emissions = None
    if intensity is not None:
        try:
            emissions = footprint(power.watts, pue, intensity.g_per_kwh)
        except ValueError as e:  # e.g. a PUE below 1 from an override: unknown, not a crash
            logger.warning("node %s: no emissions estimate: %s", node.name, e)
    return NodeFootprint(node, info, power, pue, intensity, emissions, tuple(pods))


def node_footprints(
    nodes: Iterable[NodeInfo],
    pods: Iterable[PodInfo],
    *,
    snapshot: CarbonSnapshot,
    catalog: RegionLookup,
    usage_millis: Mapping[str, int] | None = None,
) -> tuple[NodeFootprint, ...]:
    """Footprints of every node, ordered by node name."""
    by_node = stellar_pods_by_node(pods)
    return tuple(
        node_footprint(
            node,
            snapshot=snapshot,
            catalog=catalog,
            pods=by_node.get(node.name, ()),
            usage_millis=usage_millis,
        )
        for node in sorted(nodes, key=lambda n: n.name)
    )


def node_json(fp: NodeFootprint) -> dict[str, Any]:
    node, power, emissions = fp.node, fp.power, fp.emissions
    return {
        "name": node.name,
        "region": node.region,
        "cloud": str(node.cloud) if node.cloud is not None else None,
        "instanceType": node.instance_type,
        "vcpus": round(node.vcpus, 3),
        "memoryGiB": round(node.memory_bytes / GIB, 3),
        "schedulable": node.schedulable,
        "powerWatts": round(power.watts, 3),
        "cpuWatts": round(power.cpu_watts, 3),
        "memoryWatts": round(power.memory_watts, 3),
        "cpuUtilisation": round(power.utilisation, 4),
        "utilisationMeasured": power.utilisation_measured,
        "powerMethod": power.method,
        "pue": round(fp.pue, 4),
        "carbonIntensity": round(fp.intensity.g_per_kwh, 3) if fp.intensity else None,
        "intensitySource": fp.intensity.provenance.label if fp.intensity else None,
        "gCO2eqPerHour": round(emissions.g_per_hour, 4) if emissions else None,
        "kgCO2eqPerDay": round(emissions.kg_per_day, 6) if emissions else None,
        "estimate": True,
        "pods": [
            {
                "namespace": p.pod.namespace,
                "name": p.pod.name,
                "role": p.role,
                "phase": p.pod.phase,
            }
            for p in fp.pods
        ],
    }

"""Fake cloud nodes: kwok nodes labelled and identified the way AWS, GCP and Azure do it.

The real scheduler places pods on them, kwok keeps them Ready, and the carbon webhook and reporter
read their region labels exactly as they would on a real multi-region cluster.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.core.models import Cloud
from tests.e2e.cluster import ControlPlane, ControlPlaneError

_POLL_SECONDS: Final = 0.2


@dataclass(frozen=True)
class FakeNode:
    """One kwok node posing as a cloud VM."""

    name: str
    cloud: Cloud
    region: str
    zone: str
    instance_type: str


_INSTANCE_TYPES: Final = {
    Cloud.AWS: "m6i.2xlarge",
    Cloud.GCP: "n2-standard-8",
    Cloud.AZURE: "Standard_D8s_v5",
}
_ZONE_SUFFIXES: Final = {Cloud.AWS: ("a", "b"), Cloud.GCP: ("-a", "-b"), Cloud.AZURE: ("-1", "-2")}
FLEET_REGIONS: Final = {
    Cloud.AWS: ("us-west-2", "us-east-1", "eu-central-1"),
    Cloud.GCP: ("us-west1", "europe-west1", "asia-east1"),
    Cloud.AZURE: ("eastus", "westeurope", "southeastasia"),
}


def fake_fleet(
    regions: Mapping[Cloud, Sequence[str]] = FLEET_REGIONS, nodes_per_region: int = 2
) -> tuple[FakeNode, ...]:
    """Nodes in ``regions`` (by default nine across AWS, GCP and Azure), one zone per node,
    cloud-shaped names and instance types."""
    return tuple(
        FakeNode(
            name=f"{cloud.value}-{region}-{i + 1}",
            cloud=cloud,
            region=region,
            zone=region + _ZONE_SUFFIXES[cloud][i % 2],
            instance_type=_INSTANCE_TYPES[cloud],
        )
        for cloud, names in regions.items()
        for region in names
        for i in range(nodes_per_region)
    )


def zoned_fleet(
    regions: Mapping[Cloud, Sequence[str]], *, zones: int = 3, nodes_per_zone: int = 3
) -> tuple[FakeNode, ...]:
    """Nodes in ``regions``, ``zones`` zones each (``a``, ``b``, … as the cloud spells them) with
    ``nodes_per_zone`` nodes per zone: the shape of a regional managed node pool."""
    suffixes = {
        Cloud.AWS: lambda i: chr(ord("a") + i),
        Cloud.GCP: lambda i: f"-{chr(ord('a') + i)}",
        Cloud.AZURE: lambda i: f"-{i + 1}",
    }
    return tuple(
        FakeNode(
            name=f"{cloud.value}-{zone}-{n + 1}",
            cloud=cloud,
            region=region,
            zone=zone,
            instance_type=_INSTANCE_TYPES[cloud],
        )
        for cloud, names in regions.items()
        for region in names
        for zone in (region + suffixes[cloud](z) for z in range(zones))
        for n in range(nodes_per_zone)
    )


def _provider_id(name: str, cloud: Cloud, zone: str) -> str:
    digest = hashlib.sha256(name.encode()).hexdigest()
    if cloud is Cloud.AWS:
        return f"aws:///{zone}/i-0{digest[:16]}"
    if cloud is Cloud.GCP:
        return f"gce://stellar-carbon-e2e/{zone}/{name}"
    if cloud is Cloud.AZURE:
        subscription = uuid.UUID(digest[:32])
        return (
            f"azure:///subscriptions/{subscription}/resourceGroups/stellar-carbon-e2e"
            f"/providers/Microsoft.Compute/virtualMachines/{name}"
        )
    return f"kwok://{name}"


def make_node(
    name: str,
    cloud: Cloud | str,
    region: str,
    zone: str,
    instance_type: str,
    cpu: str = "8",
    memory: str = "32Gi",
    pods: str = "110",
) -> dict[str, Any]:
    """A Node manifest labelled and identified the way the cloud's own node controller does it.

    Status carries capacity and addresses: kwok fills in conditions and node info, and the
    controller manager lifts the not-ready taint once kwok reports the node Ready.
    """
    cloud = Cloud(cloud)
    digest = hashlib.sha256(name.encode()).digest()
    internal_ip = f"10.{digest[0]}.{digest[1]}.{digest[2] % 254 + 1}"
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {
                "topology.kubernetes.io/region": region,
                "topology.kubernetes.io/zone": zone,
                "node.kubernetes.io/instance-type": instance_type,
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "type": "kwok",
            },
            "annotations": {"kwok.x-k8s.io/node": "fake"},
        },
        "spec": {"providerID": _provider_id(name, cloud, zone)},
        "status": {
            "capacity": resources,
            "allocatable": dict(resources),
            "addresses": [
                {"type": "InternalIP", "address": internal_ip},
                {"type": "Hostname", "address": name},
            ],
        },
    }


def node_manifest(node: FakeNode, **resources: str) -> dict[str, Any]:
    """``make_node`` for a fleet member; ``resources`` overrides cpu, memory or pods."""
    return make_node(node.name, node.cloud, node.region, node.zone, node.instance_type, **resources)


def _node_is_schedulable(node: Mapping[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
    taints = node.get("spec", {}).get("taints", [])
    blocked = any(t["effect"] in ("NoSchedule", "NoExecute") for t in taints)
    return ready and not blocked and not node.get("spec", {}).get("unschedulable", False)


def create_fake_nodes(
    control_plane: ControlPlane, nodes: Sequence[FakeNode], *, timeout: float = 120.0
) -> None:
    """Create ``nodes`` and wait until each is Ready and carries no scheduling taint."""
    for node in nodes:
        control_plane.request("POST", "/api/v1/nodes", node_manifest(node))
    wanted = {n.name for n in nodes}
    deadline = time.monotonic() + timeout
    while True:
        items = control_plane.request("GET", "/api/v1/nodes?labelSelector=type%3Dkwok")["items"]
        pending = wanted - {n["metadata"]["name"] for n in items if _node_is_schedulable(n)}
        if not pending:
            return
        if time.monotonic() > deadline:
            details = {
                n["metadata"]["name"]: {
                    "conditions": [
                        (c["type"], c["status"]) for c in n.get("status", {}).get("conditions", [])
                    ],
                    "taints": n.get("spec", {}).get("taints", []),
                }
                for n in items
                if n["metadata"]["name"] in pending
            }
            raise ControlPlaneError(
                f"nodes not schedulable after {timeout:.0f}s: {json.dumps(details, indent=1)}"
            )
        time.sleep(_POLL_SECONDS)

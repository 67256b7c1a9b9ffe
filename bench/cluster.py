"""Generated clusters for scale tests: N nodes across many cloud regions and M Stellar pods.

Values only (``NodeInfo``/``PodInfo`` in a ``StaticInventory``), deterministic for a seed, so a
server subprocess and the benchmark process build the same cluster without passing files around.
Carbon data for it comes from the mock provider (``mock_snapshot``).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from datetime import datetime

from shared.carbon.providers.mock import MockProvider
from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.cluster.demo import StaticInventory
from shared.cluster.inventory import NodeInfo, PodInfo
from shared.core.errors import UnknownZone
from shared.core.models import Cloud, RegionInfo
from shared.regions.catalog import RegionCatalog

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"
INSTANCE_LABEL = "node.kubernetes.io/instance-type"

CANDIDATE_REGIONS: tuple[tuple[Cloud, str], ...] = (
    *(
        (Cloud.AWS, name)
        for name in (
            "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1",
            "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "ap-southeast-1",
            "ap-southeast-2", "ap-northeast-1", "ap-south-1", "sa-east-1",
        )
    ),
    *(
        (Cloud.GCP, name)
        for name in (
            "us-central1", "us-east4", "us-west1", "us-south1", "northamerica-northeast2",
            "europe-west1", "europe-west2", "europe-west3", "europe-north1", "asia-east1",
            "asia-northeast1",
        )
    ),
    *(
        (Cloud.AZURE, name)
        for name in (
            "eastus", "westus", "westeurope", "northeurope", "swedencentral", "brazilsouth",
        )
    ),
)  # fmt: skip
"""Regions a large multi-cloud cluster might span; those the catalog cannot map are dropped."""

_INSTANCES = {
    Cloud.AWS: (("m6i.2xlarge", 8, 32), ("m6i.4xlarge", 16, 64), ("c6i.4xlarge", 16, 32)),
    Cloud.GCP: (("n2-standard-8", 8, 32), ("n2-standard-16", 16, 64)),
    Cloud.AZURE: (("Standard_D8s_v5", 8, 32), ("Standard_D16s_v5", 16, 64)),
}
_ROLES = ("read-replica", "read-replica", "read-replica", "horizon", "soroban-rpc", "validator")
_GIB = 1024**3


def cluster_regions(catalog: RegionCatalog | None = None) -> tuple[RegionInfo, ...]:
    """The candidate regions the catalog maps to a zone with a known annual intensity."""
    catalog = catalog or RegionCatalog.load()
    found = []
    for cloud, name in CANDIDATE_REGIONS:
        info = catalog.resolve(name, cloud)
        if info is not None and info.zone and info.annual_g_per_kwh and info.cloud is cloud:
            found.append(info)
    return tuple(found)


def synthetic_cluster(
    nodes: int, pods: int, *, regions: Iterable[RegionInfo] | None = None, seed: int = 0
) -> StaticInventory:
    """``nodes`` Ready nodes spread over ``regions`` and ``pods`` running Stellar pods on them."""
    rng = random.Random(f"{seed}|cluster")
    pool = tuple(regions if regions is not None else cluster_regions())
    node_list: list[NodeInfo] = []
    for index in range(nodes):
        info = pool[index % len(pool)]
        instance, vcpus, memory = rng.choice(_INSTANCES[info.cloud])
        name = f"{info.cloud}-{info.region}-{index:05d}"
        zone = f"{info.region}-{'abc'[index % 3]}"
        node_list.append(
            NodeInfo(
                name=name,
                labels={
                    REGION_LABEL: info.region,
                    ZONE_LABEL: zone,
                    INSTANCE_LABEL: instance,
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                },
                region=info.region,
                region_label=REGION_LABEL,
                cloud=info.cloud,
                cpu_millis=vcpus * 1000 - 200,
                memory_bytes=memory * _GIB - _GIB,
                instance_type=instance,
            )
        )
    pod_list = []
    for index in range(pods):
        role = _ROLES[index % len(_ROLES)]
        node = node_list[rng.randrange(len(node_list))] if node_list else None
        pod_list.append(
            PodInfo(
                namespace="stellar",
                name=f"{role}-{index:06d}",
                labels={"stellar.org/role": role, "app.kubernetes.io/name": role},
                node_name=node.name if node is not None else None,
                phase="Running" if node is not None else "Pending",
                cpu_request_millis=2000 if role == "read-replica" else 4000,
            )
        )
    return StaticInventory(node_list, pod_list)


async def mock_snapshot(
    regions: Iterable[RegionInfo], *, at: datetime, seed: int = 0, forecast_hours: int = 48
) -> CarbonSnapshot:
    """Current values and forecasts of the mock provider for ``regions`` at ``at``."""
    provider = MockProvider(clock=lambda: at, seed=seed)
    carbon: dict[str, RegionCarbon] = {}
    for info in regions:
        try:
            current = await provider.current(info)
            forecast = await provider.forecast(info, forecast_hours)
        except UnknownZone:
            continue  # nothing known about the region: the webhook leaves it unranked
        carbon[info.region] = RegionCarbon(info=info, current=current, forecast=forecast)
    return CarbonSnapshot(taken_at=at, regions=carbon)


def inventory_regions(
    inventory: StaticInventory, catalog: RegionCatalog | None = None
) -> tuple[RegionInfo, ...]:
    """Catalog entries of the regions an inventory's nodes are in (unknown ones skipped)."""
    catalog = catalog or RegionCatalog.load()
    seen: dict[str, RegionInfo] = {}
    for node in inventory.nodes.values():
        if node.region is None or node.region in seen:
            continue
        info = catalog.resolve(node.region, node.cloud)
        if info is not None:
            seen[node.region] = info
    return tuple(seen.values())

"""Hand-built clusters and carbon snapshots for reporter tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.cluster.inventory import NodeInfo, PodInfo
from shared.core.models import (
    Cloud,
    Forecast,
    ForecastPoint,
    Freshness,
    Intensity,
    Provenance,
    RegionInfo,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
GIB = 1024**3


def region_info(
    name: str,
    *,
    cloud: Cloud = Cloud.AWS,
    zone: str | None = None,
    pue: float | None = 1.135,
    location: str = "",
    annual: float | None = None,
) -> RegionInfo:
    return RegionInfo(
        cloud=cloud,
        region=name,
        zone=zone if zone is not None else name.upper(),
        location=location,
        pue=pue,
        annual_g_per_kwh=annual,
    )


def carbon(
    info: RegionInfo,
    g_per_kwh: float | None,
    *,
    freshness: Freshness = Freshness.LIVE,
    provider: str = "mock",
    observed_at: datetime = NOW - timedelta(minutes=30),
    forecast: Sequence[float] | None = None,
    forecast_start: datetime = NOW,
    step: timedelta = timedelta(hours=1),
    renewable_pct: float | None = None,
) -> RegionCarbon:
    provenance = Provenance(provider=provider, fetched_at=NOW, freshness=freshness)
    current = (
        Intensity(
            zone=info.zone or info.region,
            g_per_kwh=g_per_kwh,
            observed_at=observed_at,
            provenance=provenance,
            renewable_pct=renewable_pct,
        )
        if g_per_kwh is not None
        else None
    )
    predicted = None
    if forecast is not None:
        predicted = Forecast(
            zone=info.zone or info.region,
            generated_at=NOW,
            points=tuple(
                ForecastPoint(forecast_start + i * step, value, step)
                for i, value in enumerate(forecast)
            ),
            provenance=provenance,
        )
    return RegionCarbon(info=info, current=current, forecast=predicted)


def snapshot(*regions: RegionCarbon, taken_at: datetime = NOW) -> CarbonSnapshot:
    return CarbonSnapshot(
        taken_at=taken_at, regions=MappingProxyType({rc.info.region: rc for rc in regions})
    )


def node(
    name: str,
    region: str | None,
    *,
    cloud: Cloud | None = Cloud.AWS,
    vcpus: int = 8,
    memory_gib: float = 16,
    schedulable: bool = True,
    instance_type: str | None = "m5.2xlarge",
) -> NodeInfo:
    labels = {"topology.kubernetes.io/region": region} if region else {}
    return NodeInfo(
        name=name,
        labels=labels,
        region=region,
        region_label="topology.kubernetes.io/region" if region else None,
        cloud=cloud,
        unschedulable=not schedulable,
        cpu_millis=vcpus * 1000,
        memory_bytes=int(memory_gib * GIB),
        instance_type=instance_type,
    )


def pod(
    name: str,
    node_name: str | None,
    *,
    role: str = "read-replica",
    namespace: str = "stellar",
    cpu_millis: int = 1000,
    carbon_aware: bool = False,
    constraint: str | None = None,
) -> PodInfo:
    annotations = (
        {"stellar.org/carbon-ranking": "us-west-2=100,eu-west-1=200"} if carbon_aware else {}
    )
    if constraint is not None:
        annotations["stellar.org/carbon-constraint"] = constraint
    return PodInfo(
        namespace=namespace,
        name=name,
        labels={"stellar.org/role": role},
        annotations=annotations,
        node_name=node_name,
        phase="Running" if node_name else "Pending",
        cpu_request_millis=cpu_millis,
    )


class FixedSnapshot:
    """A snapshot source holding whatever the test puts there."""

    def __init__(self, value: CarbonSnapshot | None) -> None:
        self.snapshot = value


class Cluster:
    """An inventory a test can change; like the real ones, it replaces its mappings on change."""

    def __init__(
        self, nodes: Iterable[NodeInfo] = (), pods: Iterable[PodInfo] = (), *, synced: bool = True
    ) -> None:
        self.synced = synced
        self.last_error: str | None = None
        self.nodes: Mapping[str, NodeInfo] = MappingProxyType({})
        self.pods: Mapping[tuple[str, str], PodInfo] = MappingProxyType({})
        self.replace(nodes, pods)

    def replace(self, nodes: Iterable[NodeInfo], pods: Iterable[PodInfo] = ()) -> None:
        self.nodes = MappingProxyType({n.name: n for n in nodes})
        self.pods = MappingProxyType({(p.namespace, p.name): p for p in pods})


class Catalog:
    """A region catalog over a few hand-built regions."""

    def __init__(self, *infos: RegionInfo) -> None:
        self._infos = {info.region: info for info in infos}

    def resolve(self, region: str, cloud: Cloud | None = None) -> RegionInfo | None:
        return self._infos.get(region)

    def close_matches(self, name: str, n: int = 3) -> list[str]:
        return sorted(r for r in self._infos if r[:3] == name[:3])[:n]

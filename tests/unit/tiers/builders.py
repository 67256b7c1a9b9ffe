"""Builders for the tier component's tests: carbon snapshots, inventory nodes, a settable clock."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.cluster.inventory import NodeInfo
from shared.core.models import Cloud, Freshness, Intensity, Provenance, RegionInfo
from shared.scoring.tiers import TIER_LABEL

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REGION = "topology.kubernetes.io/region"


def snapshot(
    values: Mapping[str, float], *, stale: tuple[str, ...] = (), at: datetime = NOW
) -> CarbonSnapshot:
    """Regions → gCO2eq/kWh, live unless named in ``stale``."""
    regions: dict[str, RegionCarbon] = {}
    for region, value in values.items():
        freshness = Freshness.STALE if region in stale else Freshness.LIVE
        current = Intensity(
            zone=f"Z-{region}",
            g_per_kwh=value,
            observed_at=at,
            provenance=Provenance(provider="electricitymaps", fetched_at=at, freshness=freshness),
        )
        info = RegionInfo(cloud=Cloud.AWS, region=region, zone=f"Z-{region}")
        regions[region] = RegionCarbon(info=info, current=current)
    return CarbonSnapshot(taken_at=at, regions=regions)


def inventory_node(name: str, region: str | None, tier: str | None = None) -> NodeInfo:
    labels = {"kubernetes.io/hostname": name}
    if region is not None:
        labels[REGION] = region
    if tier is not None:
        labels[TIER_LABEL] = tier
    return NodeInfo(
        name=name,
        labels=labels,
        region=region,
        region_label=REGION if region else None,
        cloud=Cloud.AWS,
    )


class Clock:
    """A clock tests move by hand."""

    def __init__(self, at: datetime = NOW) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, delta: timedelta) -> None:
        self.at += delta

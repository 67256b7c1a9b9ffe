"""Cluster-wide totals and data freshness for ``GET /metrics`` (the API's, not Prometheus').

Pure functions over node footprints and the snapshot. Totals add up only what is known: nodes in a
region without any intensity add power but no emissions, and are counted so a partial total is
never mistaken for a complete one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reporter.footprints import NodeFootprint
from shared.carbon.snapshot import CarbonSnapshot
from shared.core.clock import rfc3339
from shared.core.models import Freshness


def totals(footprints: Sequence[NodeFootprint]) -> dict[str, Any]:
    known = [fp for fp in footprints if fp.emissions is not None and fp.intensity is not None]
    g_per_hour = sum(fp.emissions.g_per_hour for fp in known if fp.emissions is not None)
    kg_per_day = sum(fp.emissions.kg_per_day for fp in known if fp.emissions is not None)
    intensities = [fp.intensity.g_per_kwh for fp in known if fp.intensity is not None]
    regions = {fp.node.region for fp in footprints if fp.node.region is not None}
    return {
        "nodes": len(footprints),
        "schedulableNodes": sum(fp.node.schedulable for fp in footprints),
        "nodesWithIntensity": len(known),
        "nodesWithoutIntensity": len(footprints) - len(known),
        "nodesWithoutRegion": sum(fp.node.region is None for fp in footprints),
        "regions": len(regions),
        "powerWatts": round(sum(fp.power.watts for fp in footprints), 3),
        "gCO2eqPerHour": round(g_per_hour, 4) if known else None,
        "kgCO2eqPerDay": round(kg_per_day, 6) if known else None,
        "nodeWeightedCarbonIntensity": (
            round(sum(intensities) / len(intensities), 3) if intensities else None
        ),
    }


@dataclass(frozen=True, slots=True)
class RegionFreshness:
    """The regions behind an answer, by how trustworthy their current value is."""

    unknown: tuple[str, ...]
    stale: tuple[str, ...]
    static: tuple[str, ...]
    oldest_age_seconds: float | None
    """Oldest ``observed_at`` among live and stale values; static averages have no real age."""
    oldest_region: str | None


def classify(snapshot: CarbonSnapshot, regions: Iterable[str], *, now: datetime) -> RegionFreshness:
    unknown: list[str] = []
    stale: list[str] = []
    static: list[str] = []
    oldest: tuple[float, str] | None = None
    for region in sorted(set(regions)):
        carbon = snapshot.get(region)
        current = carbon.current if carbon is not None else None
        if current is None:
            unknown.append(region)
            continue
        if current.provenance.freshness is Freshness.STATIC:
            static.append(region)
            continue
        if current.provenance.freshness is Freshness.STALE:
            stale.append(region)
        age = max(0.0, (now - current.observed_at).total_seconds())
        if oldest is None or age > oldest[0]:
            oldest = (age, region)
    return RegionFreshness(
        unknown=tuple(unknown),
        stale=tuple(stale),
        static=tuple(static),
        oldest_age_seconds=oldest[0] if oldest else None,
        oldest_region=oldest[1] if oldest else None,
    )


def freshness(snapshot: CarbonSnapshot, regions: Iterable[str], *, now: datetime) -> dict[str, Any]:
    """How old and how trustworthy the values behind ``regions`` are."""
    found = classify(snapshot, regions, now=now)
    oldest = found.oldest_age_seconds
    return {
        "snapshotTakenAt": rfc3339(snapshot.taken_at),
        "snapshotAgeSeconds": round(max(0.0, (now - snapshot.taken_at).total_seconds()), 1),
        "oldestValueAgeSeconds": round(oldest, 1) if oldest is not None else None,
        "oldestValueRegion": found.oldest_region,
        "stale": bool(found.stale),
        "static": bool(found.static),
        "staleRegions": list(found.stale),
        "staticRegions": list(found.static),
        "unknownRegions": list(found.unknown),
    }

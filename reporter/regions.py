"""Region rows: what the API says about each region the cluster uses or the operator configured.

Pure functions over a ``CarbonSnapshot``, the inventory's nodes and the region catalog. A region's
carbon tier is the one its nodes' ``carbon.stellar.org/tier`` labels hold (the tier most of them
carry), and it last changed when the newest of those labels was written (``NodeInfo.tier_set_at``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo
from shared.core.clock import rfc3339
from shared.core.models import Cloud, Intensity, RegionInfo
from shared.scoring.ranking import Ranking, rank
from shared.scoring.tiers import TIER_LABEL, prevailing_tier, tier_value

DEFAULT_HORIZON_HOURS = 24


class RegionLookup(Protocol):
    """The part of ``shared.regions.catalog.RegionCatalog`` the reporter uses."""

    def resolve(self, region: str, cloud: Cloud | None = None) -> RegionInfo | None: ...

    def close_matches(self, name: str, n: int = 3) -> list[str]: ...


@dataclass(frozen=True, slots=True)
class RegionRow:
    """One region as reported: catalog facts, live carbon data, rank and node counts."""

    region: str
    info: RegionInfo | None
    current: Intensity | None
    expected_g_per_kwh: float | None
    """Time-weighted mean of the current value and the forecast over the ranking horizon."""
    has_forecast: bool
    rank: int | None
    """1 = greenest; regions with equal expected intensity share a rank; None when unknown."""
    nodes: int
    schedulable_nodes: int
    configured: bool
    horizon_hours: int = DEFAULT_HORIZON_HOURS
    tier: int | None = None
    """The carbon tier the region's nodes are labelled with; None when none is."""
    tier_changed_at: datetime | None = None
    """When the newest of those labels was written; None when the cluster does not say."""


@dataclass(frozen=True, slots=True)
class LabelledTier:
    """A region's tier as its nodes' labels hold it, and when it last changed."""

    tier: int
    changed_at: datetime | None


def labelled_tiers(nodes: Iterable[NodeInfo]) -> dict[str, LabelledTier]:
    """Each region's tier from its nodes' labels: the tier most carry, the greener on a tie, dated
    by the newest label write among the nodes that carry it. Regions without labels are absent."""
    tiered: dict[str, list[tuple[int, datetime | None]]] = {}
    for node in nodes:
        tier = tier_value(node.labels.get(TIER_LABEL))
        if node.region is not None and tier is not None:
            tiered.setdefault(node.region, []).append((tier, node.tier_set_at))
    out: dict[str, LabelledTier] = {}
    for region, labelled in tiered.items():
        tier = prevailing_tier(t for t, _ in labelled)
        if tier is None:
            continue
        times = [at for t, at in labelled if t == tier and at is not None]
        out[region] = LabelledTier(tier, max(times, default=None))
    return out


def region_info(
    region: str, snapshot: CarbonSnapshot, catalog: RegionLookup, cloud: Cloud | None = None
) -> RegionInfo | None:
    """Catalog facts for ``region``: the snapshot's copy (what was fetched), else the catalog."""
    carbon = snapshot.get(region)
    if carbon is not None:
        return carbon.info
    return catalog.resolve(region, cloud)


def competition_ranks(ranking: Ranking) -> dict[str, int]:
    """``1, 1, 3``-style ranks: ties share a rank and the next rank skips."""
    ranks: dict[str, int] = {}
    previous: float | None = None
    current_rank = 0
    for position, score in enumerate(ranking.scores, start=1):
        if previous is None or score.expected_g_per_kwh != previous:
            current_rank = position
            previous = score.expected_g_per_kwh
        ranks[score.region] = current_rank
    return ranks


def region_rows(
    snapshot: CarbonSnapshot,
    nodes: Iterable[NodeInfo],
    catalog: RegionLookup,
    *,
    extra_regions: Sequence[str],
    now: datetime,
    horizon_hours: int = DEFAULT_HORIZON_HOURS,
) -> tuple[RegionRow, ...]:
    """Rows for the regions with nodes in the cluster plus the configured extra ones, by name."""
    counts: dict[str, list[int]] = {}
    clouds: dict[str, Cloud] = {}
    nodes = tuple(nodes)
    tiers = labelled_tiers(nodes)
    for node in nodes:
        if node.region is None:
            continue
        count = counts.setdefault(node.region, [0, 0])
        count[0] += 1
        count[1] += node.schedulable
        if node.cloud is not None:
            clouds.setdefault(node.region, node.cloud)
    names = set(counts) | set(extra_regions)
    ranking = rank(snapshot, names, now=now, horizon_hours=horizon_hours)
    ranks = competition_ranks(ranking)
    expected = {score.region: score.expected_g_per_kwh for score in ranking.scores}
    configured = set(extra_regions)
    rows = []
    for name in sorted(names):
        carbon = snapshot.get(name)
        forecast = carbon.forecast if carbon is not None else None
        total, schedulable = counts.get(name, (0, 0))
        tier = tiers.get(name)
        rows.append(
            RegionRow(
                region=name,
                info=region_info(name, snapshot, catalog, clouds.get(name)),
                current=carbon.current if carbon is not None else None,
                expected_g_per_kwh=expected.get(name),
                has_forecast=forecast is not None and bool(forecast.points),
                rank=ranks.get(name),
                nodes=total,
                schedulable_nodes=schedulable,
                configured=name in configured,
                horizon_hours=horizon_hours,
                tier=tier.tier if tier is not None else None,
                tier_changed_at=tier.changed_at if tier is not None else None,
            )
        )
    return tuple(rows)


def region_json(row: RegionRow) -> dict[str, Any]:
    info, current = row.info, row.current
    provenance = current.provenance if current is not None else None
    return {
        "region": row.region,
        "cloud": str(info.cloud) if info is not None else None,
        "zone": info.zone if info is not None else None,
        "location": (info.location or None) if info is not None else None,
        "latitude": info.latitude if info is not None else None,
        "longitude": info.longitude if info is not None else None,
        "pue": info.pue if info is not None else None,
        "carbonIntensity": _round(current.g_per_kwh) if current is not None else None,
        "renewablePercentage": _round(current.renewable_pct) if current is not None else None,
        "expectedCarbonIntensity": _round(row.expected_g_per_kwh),
        "horizonHours": row.horizon_hours,
        "hasForecast": row.has_forecast,
        "rank": row.rank,
        "nodes": row.nodes,
        "schedulableNodes": row.schedulable_nodes,
        "configured": row.configured,
        "source": provenance.label if provenance is not None else None,
        "freshness": str(provenance.freshness) if provenance is not None else None,
        "estimated": current.estimated if current is not None else None,
        "observedAt": rfc3339(current.observed_at) if current is not None else None,
        "fetchedAt": rfc3339(provenance.fetched_at) if provenance is not None else None,
        "annualCarbonIntensity": info.annual_g_per_kwh if info is not None else None,
        "tier": row.tier,
        "tierChangedAt": rfc3339(row.tier_changed_at) if row.tier_changed_at is not None else None,
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)

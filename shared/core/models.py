"""Plain values shared by every layer: intensity readings, forecasts, their provenance, regions.

Everything here is a frozen dataclass with no behaviour beyond small derived properties, so the
pure core (ranking, footprint, mutation) can be tested without any I/O.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta

TIER_LABEL = "carbon.stellar.org/tier"
"""The node label holding a region's carbon tier (``"0"`` greenest): the tier component writes it,
the webhook writes pod terms on it, the node inventory records when it was last written."""


class Cloud(enum.StrEnum):
    """The cloud a region belongs to; ``onprem`` for user-defined regions."""

    AWS = "aws"
    GCP = "gcp"
    AZURE = "azure"
    ONPREM = "onprem"


class Freshness(enum.StrEnum):
    """How trustworthy a value is, from best to worst."""

    LIVE = "live"  # fetched within its TTL
    STALE = "stale"  # last good value, past its TTL but within the maximum stale age
    STATIC = "static"  # annual average from the catalog (last resort)


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a value came from. Travels with the value to annotations and API output."""

    provider: str
    """Provider name as configured, e.g. ``electricitymaps``, ``mock``, ``static``."""
    fetched_at: datetime
    """When this process (or a replica sharing the cache) obtained the value."""
    freshness: Freshness = Freshness.LIVE
    fallback_from: tuple[str, ...] = ()
    """Providers tried before this one that failed for this value, in chain order."""

    @property
    def label(self) -> str:
        """Compact text for annotations: ``electricitymaps``, ``mock(stale)``, ``static``."""
        if self.freshness is Freshness.STALE:
            return f"{self.provider}(stale)"
        return self.provider


@dataclass(frozen=True, slots=True)
class Intensity:
    """One carbon-intensity reading for a grid zone, in gCO2eq/kWh."""

    zone: str
    g_per_kwh: float
    observed_at: datetime
    """Start of the interval the value describes (provider's ``datetime``)."""
    provenance: Provenance
    estimated: bool = False
    """The provider says the value is estimated rather than measured."""
    renewable_pct: float | None = None
    """Share of renewable electricity, 0–100, when known."""

    @property
    def stale(self) -> bool:
        return self.provenance.freshness is not Freshness.LIVE


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """Expected intensity from ``starts_at`` for ``duration``."""

    starts_at: datetime
    g_per_kwh: float
    duration: timedelta = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Forecast:
    """A provider's forecast for one zone; points sorted by time."""

    zone: str
    generated_at: datetime
    points: tuple[ForecastPoint, ...]
    provenance: Provenance


@dataclass(frozen=True, slots=True)
class RegionInfo:
    """One cloud region (or user-defined region) and the grid it draws from."""

    cloud: Cloud
    region: str
    """The value nodes carry in their region label, e.g. ``us-west-2``, ``europe-west1``."""
    zone: str | None
    """Electricity Maps zone key, e.g. ``US-NW-BPAT``; None when unmapped."""
    watttime_region: str | None = None
    location: str = ""
    latitude: float | None = None
    longitude: float | None = None
    pue: float | None = None
    annual_g_per_kwh: float | None = None
    """Annual average grid intensity (the static fallback), gCO2eq/kWh."""
    annual_year: int | None = None
    aliases: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return f"{self.cloud}/{self.region}"

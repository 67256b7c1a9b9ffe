"""The in-memory picture of carbon data that callers read synchronously.

A background refresher (``shared.carbon.refresh``) builds a new ``CarbonSnapshot`` every cycle and
swaps it in atomically; the webhook's admission path and the reporter's handlers only ever read one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from shared.core.models import Forecast, Intensity, RegionInfo


@dataclass(frozen=True, slots=True)
class RegionCarbon:
    """What is known about one region's grid right now."""

    info: RegionInfo
    current: Intensity | None
    """Live, stale or static reading; None only when nothing at all is known."""
    forecast: Forecast | None = None


@dataclass(frozen=True, slots=True)
class CarbonSnapshot:
    """Carbon data for every tracked region, keyed by the region name nodes carry in their label."""

    taken_at: datetime
    regions: Mapping[str, RegionCarbon] = field(default_factory=dict)

    def get(self, region: str) -> RegionCarbon | None:
        return self.regions.get(region)

    @property
    def empty(self) -> bool:
        return not any(rc.current is not None for rc in self.regions.values())

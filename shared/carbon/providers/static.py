"""The last-resort provider: a region's annual average grid intensity from the region catalog.

It never fails for a region the catalog has a number for, never forecasts, and marks every value
``Freshness.STATIC`` so rankings, annotations and the reporter can say the number is an annual
average rather than a live reading.
"""

from __future__ import annotations

from datetime import UTC, datetime

from shared.core.clock import Clock, utcnow
from shared.core.errors import NoForecast, UnknownZone
from shared.core.models import Forecast, Freshness, Intensity, Provenance, RegionInfo

NAME = "static"


class StaticProvider:
    """Serves ``RegionInfo.annual_g_per_kwh``; no I/O."""

    name = NAME

    def __init__(self, clock: Clock = utcnow) -> None:
        self._clock = clock

    def location_key(self, region: RegionInfo) -> str | None:
        # Keyed by region, not zone: two regions on one zone can carry different annual values
        # (a user override, or a value from another year), and there is nothing to fetch anyway.
        if region.annual_g_per_kwh is None:
            return None
        return region.key

    async def current(self, region: RegionInfo) -> Intensity:
        """The annual average, observed at the start of the year it describes.

        ``observed_at`` is 1 January (UTC) of ``annual_year``, the year the catalog's number is an
        average over; for a value without a year (a user override) it is 1 January of the current
        year, since the user states it as today's figure. The value is flagged ``estimated``: it
        stands in for the current intensity, it does not measure it.
        """
        annual = region.annual_g_per_kwh
        if annual is None:
            raise UnknownZone(NAME, f"no annual grid intensity for region {region.key}")
        now = self._clock()
        year = region.annual_year if region.annual_year is not None else now.year
        return Intensity(
            zone=region.zone or region.key,
            g_per_kwh=annual,
            observed_at=datetime(year, 1, 1, tzinfo=UTC),
            provenance=Provenance(provider=NAME, fetched_at=now, freshness=Freshness.STATIC),
            estimated=True,
            renewable_pct=None,
        )

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        raise NoForecast(NAME, "annual averages have no forecast")

    async def close(self) -> None:
        return None

"""The provider interface every carbon source implements."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from shared.core.models import Forecast, Intensity, RegionInfo


@runtime_checkable
class CarbonProvider(Protocol):
    """A source of current and forecast carbon intensity.

    Providers raise the ``shared.core.errors.ProviderError`` subclasses; they never return 0 or a
    negative value for something they do not know. They are called only from background refresh.
    """

    name: str
    """Name used in settings, provenance and metrics, e.g. ``electricitymaps``."""

    def location_key(self, region: RegionInfo) -> str | None:
        """What this provider fetches by (zone, WattTime region, location name).

        Regions with the same key are fetched once. None means the provider cannot serve the region.
        """
        ...

    async def current(self, region: RegionInfo) -> Intensity:
        """The latest intensity (and renewable share when the provider has it)."""
        ...

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        """Points covering up to ``hours`` ahead; raises ``NoForecast`` when unsupported."""
        ...

    async def close(self) -> None:
        """Release HTTP sessions and the like."""
        ...

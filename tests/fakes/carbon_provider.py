"""A scriptable carbon provider and a hand-driven clock for cache, chain and refresh tests.

The provider counts every upstream call, can take a little time (so concurrent callers really
overlap), and fails on demand with any ``ProviderError``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from shared.core.errors import NoForecast
from shared.core.models import (
    Cloud,
    Forecast,
    ForecastPoint,
    Freshness,
    Intensity,
    Provenance,
    RegionInfo,
)

START = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


class ManualClock:
    """A clock that moves only when a test says so."""

    def __init__(self, at: datetime = START) -> None:
        self.now = at

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def region(name: str, zone: str | None = None, *, annual: float | None = None) -> RegionInfo:
    return RegionInfo(
        cloud=Cloud.AWS,
        region=name,
        zone=zone if zone is not None else name.upper(),
        annual_g_per_kwh=annual,
    )


class FakeProvider:
    """Answers ``values[zone]`` (or ``default``) for current and a flat forecast of it."""

    def __init__(
        self,
        name: str = "fake",
        values: dict[str, float] | None = None,
        *,
        default: float | None = 100.0,
        delay: float = 0.0,
        clock: ManualClock | None = None,
        freshness: Freshness = Freshness.LIVE,
        forecasts: bool = True,
    ) -> None:
        self.name = name
        self.values = dict(values or {})
        self.default = default
        self.delay = delay
        self.clock = clock or ManualClock()
        self.freshness = freshness
        self.forecasts = forecasts
        self.error: BaseException | None = None
        """Raised by every call while set."""
        self.current_calls = 0
        self.forecast_calls = 0
        self.closed = False

    @property
    def calls(self) -> int:
        return self.current_calls + self.forecast_calls

    def location_key(self, region: RegionInfo) -> str | None:
        if region.zone is None:
            return None
        if region.zone not in self.values and self.default is None:
            return None
        return region.zone

    def _value(self, region: RegionInfo) -> float:
        assert region.zone is not None
        value = self.values.get(region.zone, self.default)
        assert value is not None
        return value

    def _provenance(self) -> Provenance:
        return Provenance(provider=self.name, fetched_at=self.clock(), freshness=self.freshness)

    async def current(self, region: RegionInfo) -> Intensity:
        self.current_calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        return Intensity(
            zone=region.zone or "",
            g_per_kwh=self._value(region),
            observed_at=self.clock(),
            provenance=self._provenance(),
            renewable_pct=40.0,
        )

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        self.forecast_calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.error is not None:
            raise self.error
        if not self.forecasts:
            raise NoForecast(self.name, "this plan has no forecasts")
        now = self.clock()
        return Forecast(
            zone=region.zone or "",
            generated_at=now,
            points=tuple(
                ForecastPoint(starts_at=now + timedelta(hours=h), g_per_kwh=self._value(region))
                for h in range(1, hours + 1)
            ),
            provenance=self._provenance(),
        )

    async def close(self) -> None:
        self.closed = True

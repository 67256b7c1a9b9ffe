"""The Green Software Foundation Carbon Aware SDK WebAPI as a carbon source.

The SDK sits in front of WattTime, Electricity Maps or a JSON file and speaks one API for all of
them, keyed by a location name of its own configuration (usually the cloud region name). This is
the way to reach WattTime. Values are gCO2eq/kWh as the SDK reports them; when the SDK is backed
by WattTime they are marginal (MOER) rather than average intensities.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from typing import Any, Literal

import aiohttp
from pydantic import TypeAdapter

from shared.carbon.providers._http import DEFAULT_TIMEOUT, ProviderHttp, spacing
from shared.carbon.providers._payload import IsoTime, Payload, PayloadError, parse_payload
from shared.core.clock import Clock, rfc3339, utcnow
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderError,
    ProviderUnavailable,
    UnknownZone,
    truncate,
)
from shared.core.models import Forecast, ForecastPoint, Intensity, Provenance, RegionInfo

logger = logging.getLogger(__name__)

LocationNaming = Literal["region", "zone", "watttime"]
"""Which name of a region the SDK's location files use: the cloud region (``eastus``), the
Electricity Maps zone (``US-MIDA-PJM``) or the WattTime region (``PJM_DC``)."""

DEFAULT_LOOKBACK = timedelta(hours=2)
"""How far back ``current()`` asks for observations. Long enough to contain the last hourly
point even when the upstream publishes late, short enough to keep the answer small."""


class _Emission(Payload):
    """One item of ``GET /emissions/bylocations``."""

    time: IsoTime
    rating: float | None = None


class _ForecastPoint(Payload):
    timestamp: IsoTime
    value: float | None = None
    duration: float | None = None
    """Minutes; absent, null, zero or negative means the spacing of the points."""


class _Forecast(Payload):
    """One item of ``GET /emissions/forecasts/current``: one per requested location."""

    location: Any = None
    forecast_data: list[_ForecastPoint]
    generated_at: IsoTime | None = None


_EMISSIONS = TypeAdapter(list[_Emission])
_FORECASTS = TypeAdapter(list[_Forecast])


class CarbonAwareSdkProvider:
    """Carbon intensity from a Carbon Aware SDK WebAPI deployment (no authentication)."""

    name = "carbon-aware-sdk"

    def __init__(
        self,
        base_url: str,
        *,
        location_naming: LocationNaming = "region",
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = utcnow,
        lookback: timedelta = DEFAULT_LOOKBACK,
    ) -> None:
        if location_naming not in ("region", "zone", "watttime"):
            raise ValueError(
                f"location_naming must be region, zone or watttime, got {location_naming!r}"
            )
        if lookback <= timedelta(0):
            raise ValueError("lookback must be positive")
        self._base_url = base_url.rstrip("/")
        self._naming = location_naming
        self._clock = clock
        self._lookback = lookback
        self._http = ProviderHttp(self.name, timeout=timeout, session=session, clock=clock)

    def __repr__(self) -> str:
        return f"CarbonAwareSdkProvider(base_url={self._base_url!r}, naming={self._naming!r})"

    def location_key(self, region: RegionInfo) -> str | None:
        if self._naming == "zone":
            return region.zone
        if self._naming == "watttime":
            return region.watttime_region
        return region.region

    async def current(self, region: RegionInfo) -> Intensity:
        location = self._location(region)
        now = self._clock()
        body = await self._http.get_json(
            f"{self._base_url}/emissions/bylocations",
            params={
                "location": location,
                "time": rfc3339(now - self._lookback),
                "toTime": rfc3339(now),
            },
            on_status=self._read_error,
        )
        fetched_at = self._clock()
        try:
            observed_at, rating = _newest_rating(body)
        except PayloadError as e:
            raise BadResponse(self.name, f"emissions for {location}: {e}") from e
        logger.debug("%s: %s = %g g/kWh at %s", self.name, location, rating, observed_at)
        return Intensity(
            zone=location,
            g_per_kwh=rating,
            observed_at=observed_at,
            provenance=Provenance(provider=self.name, fetched_at=fetched_at),
        )

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        if hours <= 0:
            raise ValueError(f"hours must be positive, got {hours}")
        location = self._location(region)
        body = await self._http.get_json(
            f"{self._base_url}/emissions/forecasts/current",
            params={"location": location},
            on_status=self._read_error,
        )
        fetched_at = self._clock()
        try:
            generated_at, points = _forecast(body, location, fetched_at)
        except PayloadError as e:
            raise BadResponse(self.name, f"forecast for {location}: {e}") from e
        end = points[0].starts_at + timedelta(hours=hours)
        return Forecast(
            zone=location,
            generated_at=generated_at,
            points=tuple(p for p in points if p.starts_at < end),
            provenance=Provenance(provider=self.name, fetched_at=fetched_at),
        )

    async def close(self) -> None:
        await self._http.close()

    def _location(self, region: RegionInfo) -> str:
        location = self.location_key(region)
        if not location:
            raise UnknownZone(self.name, f"region {region.key} has no {self._naming} name")
        return location

    def _read_error(self, status: int, body: str) -> ProviderError | None:
        if status == 204:
            # The SDK answers 204 No Content when the window holds no observation.
            return BadResponse(self.name, "no emissions data in the requested window")
        if status == 400 and "location" in body.lower():
            # An unknown location surfaces as ArgumentException "Unknown Location: 'x' not found".
            return UnknownZone(self.name, f"HTTP 400: {_problem(body)}")
        if status == 501:
            return NoForecast(self.name, "the SDK's data source does not forecast")
        if status == 404:
            # The SDK reports unknown locations with 400; a 404 is a route missing behind the
            # configured base URL, which no region can fix.
            return ProviderUnavailable(self.name, f"HTTP 404: {_problem(body)} (check the URL)")
        return None


def _newest_rating(body: object) -> tuple[datetime, float]:
    newest: tuple[datetime, float] | None = None
    for entry in parse_payload(_EMISSIONS, body, "emissions"):
        rating = _known(entry.rating)
        if rating is not None and (newest is None or entry.time > newest[0]):
            newest = (entry.time, rating)
    if newest is None:
        raise PayloadError("no observation with a known rating")
    return newest


def _forecast(
    body: object, location: str, fetched_at: datetime
) -> tuple[datetime, list[ForecastPoint]]:
    forecasts = parse_payload(_FORECASTS, body, "forecasts")
    if not forecasts:
        raise PayloadError("empty list of forecasts")
    # One forecast per requested location; prefer the one that names ours.
    chosen = next((f for f in forecasts if f.location == location), forecasts[0])
    step = spacing(sorted(e.timestamp for e in chosen.forecast_data)) or timedelta(hours=1)
    points: list[ForecastPoint] = []
    for entry in chosen.forecast_data:
        value = _known(entry.value)
        if value is None:
            continue
        duration = step
        if entry.duration is not None and entry.duration > 0:
            duration = timedelta(minutes=entry.duration)
        points.append(ForecastPoint(starts_at=entry.timestamp, g_per_kwh=value, duration=duration))
    if not points:
        raise PayloadError("no forecast point with a known value")
    points.sort(key=lambda p: p.starts_at)
    return chosen.generated_at or fetched_at, points


def _problem(body: str) -> str:
    """The readable part of an ASP.NET ``ValidationProblemDetails`` body (title, detail)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return truncate(body, 120)
    if not isinstance(doc, dict):
        return truncate(body, 120)
    parts = [str(doc[k]) for k in ("title", "detail") if isinstance(doc.get(k), str)]
    return truncate(": ".join(parts) or body, 120)


def _known(rating: float | None) -> float | None:
    """A rating in gCO2eq/kWh, or None when unknown.

    The SDK encodes a missing upstream value as a negative rating (Electricity Maps nulls become
    -1), so null and negative both mean "unknown here": the point is skipped, never read as 0.
    Anything that is not a number at all is a malformed answer, refused by the models.
    """
    return None if rating is None or rating < 0 else rating

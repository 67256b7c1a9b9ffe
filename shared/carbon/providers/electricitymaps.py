"""Electricity Maps API v3: latest and forecast carbon intensity per grid zone, renewable share.

Requests always name the zone explicitly (``zone=``): without it the API falls back to the
caller's IP location, which would silently describe the wrong grid. The token travels in the
``auth-token`` header and nowhere else.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from pydantic import Field, TypeAdapter

from shared.carbon.providers._http import DEFAULT_TIMEOUT, ProviderHttp, spacing
from shared.carbon.providers._payload import (
    GramsPerKwh,
    IsoTime,
    Payload,
    PayloadError,
    Percentage,
    parse_payload,
)
from shared.core.clock import Clock, utcnow
from shared.core.errors import BadResponse, NoForecast, ProviderError, UnknownZone, truncate
from shared.core.models import Forecast, ForecastPoint, Intensity, Provenance, RegionInfo
from shared.core.secret import Secret

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.electricitymaps.com/v3"

_HORIZONS = (6, 24, 48, 72)
"""``horizonHours`` values the forecast route is known to accept."""

_GRANULARITY = {
    "5_minutes": timedelta(minutes=5),
    "15_minutes": timedelta(minutes=15),
    "hourly": timedelta(hours=1),
}

# A valid token whose plan lacks the route (the free tier has no forecast) is answered with
# 401/403 and a body naming the endpoint; an invalid token says "Invalid auth-token" instead.
_ROUTE_UNAVAILABLE = re.compile(
    r"(endpoint|route)s?\b[^.]{0,80}\bnot\s+(available|allowed|included|accessible)"
    r"|not\s+available\s+(for|on|in|with)\s+(your|this|the)\s+(token|plan|subscription|tier)",
    re.IGNORECASE,
)


class _Latest(Payload):
    """``GET /carbon-intensity/latest``."""

    carbon_intensity: GramsPerKwh
    datetime: IsoTime
    is_estimated: bool | None = None


class _PowerBreakdown(Payload):
    """``GET /power-breakdown/latest``: only the renewable share is read."""

    renewable_percentage: Percentage | None = None


class _ForecastPoint(Payload):
    at: IsoTime = Field(alias="datetime")
    carbon_intensity: GramsPerKwh | None = None
    """None is a gap in the forecast, not a value: the point is dropped, never read as 0."""


class _Forecast(Payload):
    """``GET /carbon-intensity/forecast``."""

    forecast: list[_ForecastPoint]
    temporal_granularity: Any = None
    updated_at: IsoTime | None = None


_LATEST = TypeAdapter(_Latest)
_POWER_BREAKDOWN = TypeAdapter(_PowerBreakdown)
_FORECAST = TypeAdapter(_Forecast)


class ElectricityMapsProvider:
    """Carbon intensity from Electricity Maps, keyed by zone (``RegionInfo.zone``)."""

    name = "electricitymaps"

    def __init__(
        self,
        token: Secret,
        *,
        base_url: str = DEFAULT_BASE_URL,
        emission_factor_type: str = "lifecycle",
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = utcnow,
    ) -> None:
        if emission_factor_type not in ("lifecycle", "direct"):
            raise ValueError(
                "emission_factor_type must be 'lifecycle' or 'direct', "
                f"got {emission_factor_type!r}"
            )
        self._token = token
        self._base_url = base_url.rstrip("/")
        self._emission_factor_type = str(emission_factor_type)
        self._clock = clock
        self._http = ProviderHttp(
            self.name, timeout=timeout, session=session, clock=clock, secrets=(token,)
        )

    def __repr__(self) -> str:
        return f"ElectricityMapsProvider(base_url={self._base_url!r}, token={self._token!r})"

    def location_key(self, region: RegionInfo) -> str | None:
        return region.zone

    async def current(self, region: RegionInfo) -> Intensity:
        zone = self._zone(region)
        body = await self._http.get_json(
            f"{self._base_url}/carbon-intensity/latest",
            params={"zone": zone, "emissionFactorType": self._emission_factor_type},
            headers=self._headers(),
            on_status=self._read_error,
        )
        fetched_at = self._clock()
        try:
            latest = parse_payload(_LATEST, body, "latest carbon intensity")
        except PayloadError as e:
            raise BadResponse(self.name, f"latest intensity for {zone}: {e}") from e
        g_per_kwh, observed_at = latest.carbon_intensity, latest.datetime
        renewable_pct = await self._renewable_pct(zone)
        logger.debug("%s: %s = %g g/kWh at %s", self.name, zone, g_per_kwh, observed_at)
        return Intensity(
            zone=zone,
            g_per_kwh=g_per_kwh,
            observed_at=observed_at,
            provenance=Provenance(provider=self.name, fetched_at=fetched_at),
            estimated=bool(latest.is_estimated),
            renewable_pct=renewable_pct,
        )

    async def _renewable_pct(self, zone: str) -> float | None:
        # The renewable share is a nice-to-have beside the intensity: losing it must not lose
        # the intensity we already hold.
        try:
            body = await self._http.get_json(
                f"{self._base_url}/power-breakdown/latest",
                params={"zone": zone},
                headers=self._headers(),
                on_status=self._read_error,
            )
            return parse_payload(_POWER_BREAKDOWN, body, "power breakdown").renewable_percentage
        except (ProviderError, PayloadError) as e:
            logger.warning("%s: no renewable share for %s: %s", self.name, zone, e)
            return None

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        if hours <= 0:
            raise ValueError(f"hours must be positive, got {hours}")
        zone = self._zone(region)
        horizon = next((h for h in _HORIZONS if h >= hours), _HORIZONS[-1])
        # No emissionFactorType here: the forecast route is not documented to take it.
        body = await self._http.get_json(
            f"{self._base_url}/carbon-intensity/forecast",
            params={"zone": zone, "horizonHours": str(horizon)},
            headers=self._headers(),
            on_status=self._read_forecast_error,
        )
        fetched_at = self._clock()
        try:
            generated_at, points = _forecast_points(body, fetched_at)
        except PayloadError as e:
            raise BadResponse(self.name, f"forecast for {zone}: {e}") from e
        end = points[0].starts_at + timedelta(hours=hours)
        points = [p for p in points if p.starts_at < end]
        return Forecast(
            zone=zone,
            generated_at=generated_at,
            points=tuple(points),
            provenance=Provenance(provider=self.name, fetched_at=fetched_at),
        )

    async def close(self) -> None:
        await self._http.close()

    def _zone(self, region: RegionInfo) -> str:
        if not region.zone:
            raise UnknownZone(self.name, f"region {region.key} has no Electricity Maps zone")
        return region.zone

    def _headers(self) -> dict[str, str]:
        return {"auth-token": self._token.reveal(), "Accept": "application/json"}

    def _read_error(self, status: int, body: str) -> ProviderError | None:
        # 400 InputError for a zone key the API does not know: the zone is unknown, not the request
        # malformed.
        if status == 400 and "zone" in body.lower():
            return UnknownZone(self.name, f"HTTP 400: {_short(body)}")
        return None

    def _read_forecast_error(self, status: int, body: str) -> ProviderError | None:
        if status in (401, 403) and _ROUTE_UNAVAILABLE.search(body):
            return NoForecast(
                self.name, f"the token's plan has no forecast (HTTP {status}: {_short(body)})"
            )
        return self._read_error(status, body)


def _forecast_points(body: object, fetched_at: datetime) -> tuple[datetime, list[ForecastPoint]]:
    doc = parse_payload(_FORECAST, body, "forecast")
    step = spacing(sorted(p.at for p in doc.forecast)) or _GRANULARITY.get(
        str(doc.temporal_granularity), timedelta(hours=1)
    )
    points = sorted(
        (
            ForecastPoint(starts_at=p.at, g_per_kwh=p.carbon_intensity, duration=step)
            for p in doc.forecast
            if p.carbon_intensity is not None
        ),
        key=lambda p: p.starts_at,
    )
    if not points:
        raise PayloadError("no forecast point has a carbonIntensity")
    return doc.updated_at or fetched_at, points


def _short(body: str) -> str:
    return truncate(body, 120)

"""A carbon API of the operator's own, in the upstream Stellar-K8s contract.

``GET url`` answers one document for every region::

    {"regions": [{"region": "us-west-2", "carbonIntensity": 118.0,
                  "timestamp": "2026-11-26T12:00:00Z", "renewablePercentage": 61.5}]}

and the optional ``forecast_url`` answers::

    {"generatedAt": "2026-11-26T11:55:00Z",
     "regions": [{"region": "us-west-2",
                  "forecast": [{"timestamp": "2026-11-26T12:00:00Z", "carbonIntensity": 120.5}]}]}

``docs/custom-api.schema.json`` is the normative description of both documents; the checks here
follow it, and a document that breaks it is refused as a whole (``BadResponse``). Because one
document serves every region, it is kept for a short time so that a refresh cycle over N regions
costs one request.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

import aiohttp
from pydantic import TypeAdapter

from shared.carbon.providers._http import DEFAULT_TIMEOUT, ProviderHttp, spacing
from shared.carbon.providers._payload import (
    GramsPerKwh,
    Name,
    OptionalRfc3339Time,
    Payload,
    PayloadError,
    Percentage,
    Rfc3339Time,
    parse_payload,
)
from shared.core.clock import Clock, utcnow
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderError,
    ProviderUnavailable,
    UnknownZone,
    truncate,
)
from shared.core.models import Forecast, ForecastPoint, Intensity, Provenance, RegionInfo
from shared.core.secret import Secret
from shared.core.tasks import SingleFlight

logger = logging.getLogger(__name__)

DEFAULT_CACHE_TTL = timedelta(seconds=30)
"""How long one fetched document serves every region."""

_ERROR_TTL = timedelta(seconds=5)
"""How long a failed fetch is remembered: long enough to spare the API N identical failures in
one cycle, short enough not to defeat the caller's own retry."""

T = TypeVar("T")


class _CurrentRegion(Payload):
    region: Name
    carbon_intensity: GramsPerKwh | None
    """Required, but null: unknown right now, refused when asked for, never read as 0."""
    timestamp: OptionalRfc3339Time = None
    renewable_percentage: Percentage | None = None


class _CurrentDocument(Payload):
    regions: list[_CurrentRegion]


class _Point(Payload):
    timestamp: Rfc3339Time
    carbon_intensity: GramsPerKwh | None


class _ForecastRegion(Payload):
    region: Name
    forecast: list[_Point]


class _ForecastDocument(Payload):
    generated_at: OptionalRfc3339Time = None
    regions: list[_ForecastRegion]


_CURRENT = TypeAdapter(_CurrentDocument)
_FORECAST = TypeAdapter(_ForecastDocument)


@dataclass(frozen=True, slots=True)
class _Reading:
    g_per_kwh: float | None
    observed_at: datetime | None
    renewable_pct: float | None


@dataclass(frozen=True, slots=True)
class _Fetched(Generic[T]):
    value: T
    fetched_at: datetime


class _SharedDocument(Generic[T]):
    """One upstream document shared by every caller for ``ttl``; concurrent callers wait for one
    fetch instead of each starting their own."""

    def __init__(self, fetch: Callable[[], Awaitable[T]], *, ttl: timedelta, clock: Clock) -> None:
        self._fetch = fetch
        self._ttl = ttl
        self._clock = clock
        self._flights: SingleFlight[str] = SingleFlight()
        self._value: _Fetched[T] | None = None
        self._error: ProviderError | None = None
        self._expires_at: datetime | None = None

    async def get(self) -> _Fetched[T]:
        if self._expires_at is not None and self._clock() < self._expires_at:
            if self._error is not None:
                raise self._error.with_traceback(None)
            if self._value is not None:
                return self._value
        return await self._flights.run("document", self._refetch)

    def cancel(self) -> None:
        self._flights.cancel_all()

    async def _refetch(self) -> _Fetched[T]:
        now = self._clock()
        try:
            value = await self._fetch()
        except ProviderError as e:
            self._value, self._error = None, e
            self._expires_at = now + min(self._ttl, _ERROR_TTL)
            raise
        self._value = _Fetched(value, self._clock())
        self._error = None
        self._expires_at = now + self._ttl
        return self._value


class CustomHttpProvider:
    """Carbon intensity from an operator's own HTTP API, keyed by cloud region name."""

    name = "http"

    def __init__(
        self,
        url: str,
        *,
        forecast_url: str | None = None,
        token: Secret | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        session: aiohttp.ClientSession | None = None,
        clock: Clock = utcnow,
        cache_ttl: timedelta = DEFAULT_CACHE_TTL,
    ) -> None:
        if cache_ttl < timedelta(0):
            raise ValueError("cache_ttl must not be negative")
        self._url = url
        self._forecast_url = forecast_url
        self._token = token
        self._clock = clock
        self._http = ProviderHttp(
            self.name,
            timeout=timeout,
            session=session,
            clock=clock,
            secrets=(token,) if token else (),
        )
        self._current_doc = _SharedDocument(self._fetch_current, ttl=cache_ttl, clock=clock)
        self._forecast_doc = _SharedDocument(self._fetch_forecast, ttl=cache_ttl, clock=clock)

    def __repr__(self) -> str:
        return (
            f"CustomHttpProvider(token={self._token!r}, forecast={self._forecast_url is not None})"
        )

    def location_key(self, region: RegionInfo) -> str | None:
        return region.region

    async def current(self, region: RegionInfo) -> Intensity:
        doc = await self._current_doc.get()
        name, reading = _find(doc.value, region)
        if reading is None:
            raise UnknownZone(self.name, f"region {region.region!r} is not in the document")
        if reading.g_per_kwh is None:
            raise BadResponse(self.name, f"carbonIntensity of {name!r} is null (unknown)")
        return Intensity(
            zone=region.region,
            g_per_kwh=reading.g_per_kwh,
            observed_at=reading.observed_at or doc.fetched_at,
            provenance=Provenance(provider=self.name, fetched_at=doc.fetched_at),
            renewable_pct=reading.renewable_pct,
        )

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast:
        if hours <= 0:
            raise ValueError(f"hours must be positive, got {hours}")
        if self._forecast_url is None:
            raise NoForecast(self.name, "no forecast URL configured")
        doc = await self._forecast_doc.get()
        generated_at, per_region = doc.value
        _, points = _find(per_region, region)
        if not points:
            raise NoForecast(
                self.name, f"the forecast document has no points for {region.region!r}"
            )
        end = points[0].starts_at + timedelta(hours=hours)
        return Forecast(
            zone=region.region,
            generated_at=generated_at or doc.fetched_at,
            points=tuple(p for p in points if p.starts_at < end),
            provenance=Provenance(provider=self.name, fetched_at=doc.fetched_at),
        )

    async def close(self) -> None:
        self._current_doc.cancel()
        self._forecast_doc.cancel()
        await self._http.close()

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token.reveal()}"
        return headers

    def _read_error(self, status: int, body: str) -> ProviderError | None:
        if status == 404:
            # The document's own URL is missing (a wrong path, an API mid-deploy): that says
            # nothing about any region, so it is an outage, not an unknown zone.
            return ProviderUnavailable(
                self.name, f"HTTP 404 from the configured URL: {truncate(body, 120)}"
            )
        return None

    async def _fetch_current(self) -> Mapping[str, _Reading]:
        body = await self._http.get_json(
            self._url, headers=self._headers(), on_status=self._read_error
        )
        try:
            doc = _parse_current_document(body)
        except PayloadError as e:
            raise BadResponse(self.name, f"current document: {e}") from e
        logger.debug("%s: current document with %d regions", self.name, len(doc))
        return doc

    async def _fetch_forecast(
        self,
    ) -> tuple[datetime | None, Mapping[str, tuple[ForecastPoint, ...]]]:
        assert self._forecast_url is not None  # forecast() checks before asking
        body = await self._http.get_json(
            self._forecast_url, headers=self._headers(), on_status=self._read_error
        )
        try:
            doc = _parse_forecast_document(body)
        except PayloadError as e:
            raise BadResponse(self.name, f"forecast document: {e}") from e
        logger.debug("%s: forecast document with %d regions", self.name, len(doc[1]))
        return doc


def _find(doc: Mapping[str, T], region: RegionInfo) -> tuple[str, T | None]:
    for name in (region.region, *region.aliases):
        if name in doc:
            return name, doc[name]
    return region.region, None


def _unique(names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise PayloadError(f"region {name!r} appears twice")
        seen.add(name)


def _parse_current_document(body: object) -> dict[str, _Reading]:
    """The current document, region by region; ``PayloadError`` when it breaks the schema."""
    doc = parse_payload(_CURRENT, body, "document")
    _unique(entry.region for entry in doc.regions)
    return {
        entry.region: _Reading(
            g_per_kwh=entry.carbon_intensity,
            observed_at=entry.timestamp,
            renewable_pct=entry.renewable_percentage,
        )
        for entry in doc.regions
    }


def _parse_forecast_document(
    body: object,
) -> tuple[datetime | None, dict[str, tuple[ForecastPoint, ...]]]:
    """The forecast document: its generation time and each region's points, sorted by time."""
    doc = parse_payload(_FORECAST, body, "document")
    _unique(entry.region for entry in doc.regions)
    per_region: dict[str, tuple[ForecastPoint, ...]] = {}
    for entry in doc.regions:
        timed = sorted(entry.forecast, key=lambda p: p.timestamp)
        step = spacing(p.timestamp for p in timed) or timedelta(hours=1)
        per_region[entry.region] = tuple(
            ForecastPoint(starts_at=p.timestamp, g_per_kwh=p.carbon_intensity, duration=step)
            for p in timed
            if p.carbon_intensity is not None
        )
    return doc.generated_at, per_region

"""A fake GSF Carbon Aware SDK WebAPI on loopback, serving the documented payload shapes.

``GET /emissions/bylocations`` answers a list of ``EmissionsData`` (``location``, ``time``,
``rating``, ``duration`` as a .NET TimeSpan) for the ``time``/``toTime`` window, or 204 when the
window is empty; ``GET /emissions/forecasts/current`` answers a list of ``EmissionsForecastDTO``
whose ``forecastData`` points carry ``duration`` in minutes. Unknown locations get the SDK's 400
``ValidationProblemDetails``. Behaviour per route is switchable through ``modes``.
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from tests.fakes import upstream

NOW = datetime(2026, 11, 26, 12, 20, tzinfo=UTC)


class Mode(enum.StrEnum):
    OK = "ok"
    UNKNOWN_LOCATION = "unknown-location"  # 400 ArgumentException, as for a location not configured
    NOT_IMPLEMENTED = "not-implemented"  # 501, the data source cannot forecast
    EMPTY = "empty"  # 204 for emissions, [] forecast data
    RATE_LIMITED = "rate-limited"  # 429 with Retry-After (forwarded from the data source)
    SERVER_ERROR = "server-error"  # 500
    SLOW = "slow"
    MALFORMED = "malformed"
    NEWEST_UNKNOWN = "newest-unknown"  # newest rating -1, the SDK's encoding of an upstream null
    ALL_UNKNOWN = "all-unknown"  # every rating -1 / every forecast value null
    TEXT_RATING = "text-rating"


ROUTES = ("emissions", "forecast")


@dataclass
class Location:
    reported_as: str
    """What the SDK's data source calls it (a zone or balancing authority)."""
    rating: float
    daily_shape: tuple[float, ...] = (1.0,)


def default_locations() -> dict[str, Location]:
    return {
        "eastus": Location("US-MIDA-PJM", 392.4, (0.99, 0.98, 0.97, 1.01, 1.04)),
        "westus": Location("US-CAL-CISO", 226.0, (1.28, 0.84, 0.61, 0.58, 1.08)),
        "northeurope": Location("IE", 403.4),
    }


@dataclass
class FakeCarbonAwareSdk(upstream.FakeUpstream[Mode]):
    modes: dict[str, Mode] = field(default_factory=lambda: dict.fromkeys(ROUTES, Mode.OK))
    retry_after: str = "120"
    now: datetime = NOW
    locations: dict[str, Location] = field(default_factory=default_locations)
    forecast_step: timedelta = timedelta(minutes=5)
    """WattTime-backed SDKs forecast in 5-minute points."""
    forecast_hours: int = 24
    queries: list[dict[str, list[str]]] = field(default_factory=list)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/emissions/bylocations", self._emissions)
        app.router.add_get("/emissions/forecasts/current", self._forecast)
        return app

    async def _emissions(self, request: web.Request) -> web.StreamResponse:
        refused, names = await self._admit("emissions", request)
        if refused is not None:
            return refused
        mode = self.modes["emissions"]
        start = _param_time(request, "time") or self.now - timedelta(days=1)
        end = _param_time(request, "toTime") or self.now
        hour = self.now.replace(minute=0, second=0, microsecond=0)
        hours = [hour - timedelta(hours=h) for h in range(24)]
        items: list[dict[str, object]] = []
        for name in names:
            where = self.locations[name]
            for h, at in enumerate(hours):
                # The SDK's EmissionsData.TimeBetween: from < Time <= to.
                if not start < at <= end or mode is Mode.EMPTY:
                    continue
                rating: object = round(
                    where.rating * where.daily_shape[h % len(where.daily_shape)], 2
                )
                if mode is Mode.ALL_UNKNOWN or (mode is Mode.NEWEST_UNKNOWN and h == 0):
                    rating = -1
                elif mode is Mode.TEXT_RATING:
                    rating = str(rating)
                items.append(
                    {
                        "location": where.reported_as,
                        "time": _dotnet(at),
                        "rating": rating,
                        "duration": "01:00:00",
                    }
                )
        if not items:
            return web.Response(status=204)
        return web.json_response(items)

    async def _forecast(self, request: web.Request) -> web.StreamResponse:
        refused, names = await self._admit("forecast", request)
        if refused is not None:
            return refused
        mode = self.modes["forecast"]
        if mode is Mode.NOT_IMPLEMENTED:
            return _problem(501, "NotImplementedException", "Forecast is not supported")
        step = self.forecast_step
        first = self.now.replace(second=0, microsecond=0) + timedelta(minutes=5)
        first -= timedelta(minutes=first.minute % 5)
        count = 0 if mode is Mode.EMPTY else int(timedelta(hours=self.forecast_hours) / step)
        minutes = int(step / timedelta(minutes=1))
        body = []
        for name in names:
            where = self.locations[name]
            data: list[dict[str, object]] = []
            for i in range(count):
                at = first + i * step
                hour = int((at - first) / timedelta(hours=1))
                value: object = where.rating * where.daily_shape[hour % len(where.daily_shape)]
                if mode is Mode.ALL_UNKNOWN:
                    value = None
                elif mode is Mode.TEXT_RATING:
                    value = f"{value}"
                point = {
                    "location": where.reported_as,
                    "timestamp": _offset(at),
                    "duration": minutes,
                    "value": value,
                }
                data.append(point)
            body.append(
                {
                    "generatedAt": _offset(self.now - timedelta(minutes=3)),
                    "requestedAt": _offset(self.now),
                    "location": name,
                    "dataStartAt": _offset(first),
                    "dataEndAt": _offset(first + count * step),
                    "windowSize": minutes,
                    "optimalDataPoints": [min(data, key=_value)]
                    if data and mode is Mode.OK
                    else [],
                    "forecastData": data,
                }
            )
        return web.json_response(body)

    async def _admit(
        self, route: str, request: web.Request
    ) -> tuple[web.StreamResponse | None, list[str]]:
        self.queries.append({k: request.query.getall(k) for k in request.query})
        mode = await self._enter(route)
        names = request.query.getall("location", [])
        if not names:
            return _problem(400, "One or more validation errors occurred.", None), names
        unknown = next((n for n in names if n not in self.locations), None)
        if mode is Mode.UNKNOWN_LOCATION or unknown is not None:
            detail = f"Unknown Location: '{unknown or names[0]}' not found"
            return _problem(400, "ArgumentException", detail), names
        if mode is Mode.RATE_LIMITED:
            return self._rate_limited(
                _problem(429, "TooManyRequests", "rate limit exceeded")
            ), names
        if mode is Mode.SERVER_ERROR:
            return _problem(500, "InternalServerError", None), names
        if mode is Mode.MALFORMED:
            return web.Response(status=200, text="[{", content_type="application/json"), names
        return None, names


def _value(point: dict[str, object]) -> float:
    value = point["value"]
    assert isinstance(value, float)
    return value


def _param_time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    return None if text is None else datetime.fromisoformat(text)


def _dotnet(at: datetime) -> str:
    """``DateTimeOffset`` as System.Text.Json writes it: seven fraction digits and an offset."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"


def _offset(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _problem(status: int, title: str, detail: str | None) -> web.Response:
    body: dict[str, object] = {
        "type": "https://tools.ietf.org/html/rfc7231#section-6.5.1",
        "title": title,
        "status": status,
        "traceId": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }
    if detail is not None:
        body["detail"] = detail
    return web.Response(
        status=status, text=json.dumps(body), content_type="application/problem+json"
    )


def serve(
    fake: FakeCarbonAwareSdk | None = None,
) -> contextlib.AbstractAsyncContextManager[FakeCarbonAwareSdk]:
    """Run ``fake`` (a default one when None) on loopback; ``base_url`` is its root."""
    return upstream.serve(fake or FakeCarbonAwareSdk())


@pytest.fixture
async def fake_carbon_aware_sdk() -> AsyncIterator[FakeCarbonAwareSdk]:
    """A running fake Carbon Aware SDK WebAPI (import it into a conftest)."""
    async with serve() as fake:
        yield fake

"""A fake Electricity Maps API v3 on loopback, serving the documented payload shapes.

Shapes follow the v3 reference and the public client fixtures (``carbon-intensity/latest``,
``carbon-intensity/forecast``, ``power-breakdown/latest``, the 401/404 error bodies). Each route's
behaviour is switchable per test through ``modes``; ``requests`` counts calls per route.

Reuse: ``async with serve() as fake`` in a fixture of your own, the ``fake_electricitymaps`` fixture
(``pytest_plugins = ["tests.fakes.electricitymaps"]`` in the root conftest), or ``make_app()``
with any aiohttp test server.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web

from tests.fakes import upstream
from tests.fakes.upstream import json_body

TOKEN = "em-test-token-5f1c0b7e9a"
"""The token the fake accepts; any other (or none) is answered like an invalid token."""

NOW = datetime(2026, 11, 26, 12, 20, tzinfo=UTC)
"""The fake's idea of now: latest values describe the hour starting at 12:00."""


class Mode(enum.StrEnum):
    OK = "ok"
    INVALID_TOKEN = "invalid-token"  # 401, as for a wrong or missing token
    ROUTE_NOT_AVAILABLE = "route-not-available"  # 401, valid token whose plan lacks the route
    ROUTE_FORBIDDEN = "route-forbidden"  # 403, the same refusal with the other status
    UNKNOWN_ZONE = "unknown-zone"  # 404 NoDataError
    RATE_LIMITED = "rate-limited"  # 429 with Retry-After
    SERVER_ERROR = "server-error"  # 500
    SLOW = "slow"  # answers only when released (or after slow_seconds)
    MALFORMED = "malformed"  # 200 with a body that is not JSON
    NULL_INTENSITY = "null-intensity"  # carbonIntensity null (every forecast point)
    FORECAST_GAPS = "forecast-gaps"  # every other forecast point null
    NEGATIVE_INTENSITY = "negative-intensity"
    TEXT_INTENSITY = "text-intensity"  # carbonIntensity as a string


ROUTES = ("latest", "forecast", "breakdown")


@dataclass
class Zone:
    """What the fake knows of one zone. Values are realistic for the zone, not live data."""

    intensity: float
    renewable_pct: float | None
    daily_shape: tuple[float, ...] = (1.0,)
    """Forecast multipliers applied hour by hour, cycling."""


def default_zones() -> dict[str, Zone]:
    return {
        "DE": Zone(599, 33, (1.0, 0.98, 0.95, 0.9, 0.86, 0.84, 0.88, 0.94)),
        "US-CAR-DUK": Zone(216, 12),
        "US-NW-BPAT": Zone(120, 88, (1.0, 1.02, 0.99, 1.01)),
        "US-CAL-CISO": Zone(226, 52, (1.28, 1.07, 0.84, 0.67, 0.61, 0.59, 0.58, 0.6)),
        "IE": Zone(403, 40),
    }


@dataclass
class FakeElectricityMaps(upstream.FakeUpstream[Mode]):
    """Routes ``latest``, ``forecast``, ``breakdown``; ``base_url`` is ``http://127.0.0.1:PORT/v3``."""

    modes: dict[str, Mode] = field(default_factory=lambda: dict.fromkeys(ROUTES, Mode.OK))
    token: str = TOKEN
    now: datetime = NOW
    zones: dict[str, Zone] = field(default_factory=default_zones)
    forecast_step: timedelta = timedelta(hours=1)
    queries: list[dict[str, str]] = field(default_factory=list)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/v3/carbon-intensity/latest", self._latest)
        app.router.add_get("/v3/carbon-intensity/forecast", self._forecast)
        app.router.add_get("/v3/power-breakdown/latest", self._breakdown)
        return app

    # ------------------------------------------------------------------------------ handlers

    async def _latest(self, request: web.Request) -> web.StreamResponse:
        refused, zone = await self._admit("latest", request)
        if refused is not None:
            return refused
        mode = self.modes["latest"]
        hour = self.now.replace(minute=0, second=0, microsecond=0)
        return web.json_response(
            {
                "zone": zone,
                "carbonIntensity": _value(self.zones[zone].intensity, mode),
                "datetime": _iso(hour),
                "updatedAt": _iso(self.now - timedelta(minutes=12)),
                "createdAt": _iso(hour - timedelta(days=3)),
                "emissionFactorType": request.query.get("emissionFactorType", "lifecycle"),
                "isEstimated": True,
                "estimationMethod": "TIME_SLICER_AVERAGE",
            }
        )

    async def _forecast(self, request: web.Request) -> web.StreamResponse:
        refused, zone = await self._admit("forecast", request)
        if refused is not None:
            return refused
        mode = self.modes["forecast"]
        data = self.zones[zone]
        horizon = int(request.query.get("horizonHours", "24"))
        start = self.now.replace(minute=0, second=0, microsecond=0)
        count = int(timedelta(hours=horizon) / self.forecast_step)
        points = []
        for i in range(count):
            value = data.intensity * data.daily_shape[i % len(data.daily_shape)]
            shown: object = round(value)
            if mode is Mode.FORECAST_GAPS:
                shown = None if i % 2 == 1 else shown
            elif mode is Mode.NEGATIVE_INTENSITY:
                shown = -1 if i == 2 else shown  # one bad point spoils the document
            else:
                shown = _value(round(value), mode)
            points.append(
                {"carbonIntensity": shown, "datetime": _iso(start + i * self.forecast_step)}
            )
        return web.json_response(
            {"zone": zone, "forecast": points, "updatedAt": _iso(self.now - timedelta(minutes=8))}
        )

    async def _breakdown(self, request: web.Request) -> web.StreamResponse:
        refused, zone = await self._admit("breakdown", request)
        if refused is not None:
            return refused
        mode = self.modes["breakdown"]
        data = self.zones[zone]
        hour = self.now.replace(minute=0, second=0, microsecond=0)
        renewable = None if mode is Mode.NULL_INTENSITY else data.renewable_pct
        fossil_free = None if renewable is None else min(100.0, renewable + 8)
        return web.json_response(
            {
                "zone": zone,
                "datetime": _iso(hour),
                "updatedAt": _iso(self.now - timedelta(minutes=12)),
                "createdAt": _iso(hour - timedelta(days=3)),
                "powerConsumptionBreakdown": {
                    "nuclear": 440,
                    "biomass": 5896,
                    "coal": 23893,
                    "wind": 6998,
                    "solar": 0,
                    "hydro": 2870,
                    "gas": 10334,
                    "hydro discharge": 1706,
                    "battery discharge": None,
                },
                "fossilFreePercentage": fossil_free,
                "renewablePercentage": renewable,
                "powerConsumptionTotal": 52901,
                "isEstimated": True,
                "estimationMethod": "TIME_SLICER_AVERAGE",
            }
        )

    async def _admit(
        self, route: str, request: web.Request
    ) -> tuple[web.StreamResponse | None, str]:
        """Count the call, apply the route's failure mode and the API's own checks."""
        self.queries.append(dict(request.query))
        mode = await self._enter(route)
        zone = request.query.get("zone", "")
        if request.headers.get("auth-token") != self.token or mode is Mode.INVALID_TOKEN:
            return json_body(
                401,
                {
                    "error": "Invalid auth-token",
                    "message": "The provided token is invalid. Please check your token.",
                },
            ), zone
        if mode in (Mode.ROUTE_NOT_AVAILABLE, Mode.ROUTE_FORBIDDEN):
            status = 401 if mode is Mode.ROUTE_NOT_AVAILABLE else 403
            return json_body(
                status,
                {
                    "error": "Endpoint not available",
                    "message": f"The endpoint {request.path} is not available for this token. "
                    "Upgrade your plan to get access.",
                },
            ), zone
        if not zone:
            return json_body(400, {"status": "error", "message": "Please provide a zone"}), zone
        if mode is Mode.UNKNOWN_ZONE or zone not in self.zones:
            return json_body(
                404,
                {
                    "status": "error",
                    "message": "No recent data available for this zone",
                },
            ), zone
        if mode is Mode.RATE_LIMITED:
            return self._rate_limited(json_body(429, {"error": "Too many requests"})), zone
        if mode is Mode.SERVER_ERROR:
            return web.Response(status=500, text="Internal Server Error"), zone
        if mode is Mode.MALFORMED:
            return web.Response(
                status=200,
                text='{"zone": "' + zone + '", "carbonIntensity": 3',
                content_type="application/json",
            ), zone
        return None, zone


def _value(value: float, mode: Mode) -> object:
    if mode is Mode.NULL_INTENSITY:
        return None
    if mode is Mode.NEGATIVE_INTENSITY:
        return -abs(value) or -1
    if mode is Mode.TEXT_INTENSITY:
        return f"{value}"
    return value


def _iso(at: datetime) -> str:
    """The API's own format: UTC, milliseconds, ``Z``."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def serve(
    fake: FakeElectricityMaps | None = None,
) -> contextlib.AbstractAsyncContextManager[FakeElectricityMaps]:
    """Run ``fake`` (a default one when None) on loopback; ``base_url`` points at its ``/v3``."""
    return upstream.serve(fake or FakeElectricityMaps(), "/v3")


@pytest.fixture
async def fake_electricitymaps() -> AsyncIterator[FakeElectricityMaps]:
    """A running fake Electricity Maps (import it into a conftest)."""
    async with serve() as fake:
        yield fake

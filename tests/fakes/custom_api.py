"""A fake operator carbon API in the upstream Stellar-K8s contract, on loopback.

``GET /carbon`` answers the current document and ``GET /forecast`` the forecast document described
by ``docs/custom-api.schema.json``. Set ``documents[route]`` to serve any JSON verbatim (e.g. a
document that breaks the schema); ``modes`` switches failure behaviour; ``requests`` counts calls.
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

NOW = datetime(2026, 11, 26, 12, 20, tzinfo=UTC)
TOKEN = "custom-api-token-3d2e7f"


class Mode(enum.StrEnum):
    OK = "ok"
    NOT_FOUND = "not-found"  # 404, e.g. a wrong URL path
    RATE_LIMITED = "rate-limited"
    SERVER_ERROR = "server-error"
    SLOW = "slow"
    MALFORMED = "malformed"
    NULL_INTENSITY = "null-intensity"  # one region reports null ("unknown right now")


ROUTES = ("current", "forecast")


@dataclass
class Region:
    intensity: float
    renewable_pct: float | None = None
    daily_shape: tuple[float, ...] = (1.0,)


def default_regions() -> dict[str, Region]:
    return {
        "us-west-2": Region(118.0, 88.0, (1.0, 1.02, 0.99)),
        "eu-central-1": Region(371.0, 61.8, (1.08, 0.95, 0.78, 0.81, 1.06)),
        "europe-west1": Region(178.0, None),
        "eastus": Region(396.0, 7.6),
    }


@dataclass
class FakeCustomApi(upstream.FakeUpstream[Mode]):
    modes: dict[str, Mode] = field(default_factory=lambda: dict.fromkeys(ROUTES, Mode.OK))
    retry_after: str = "15"
    now: datetime = NOW
    token: str | None = None
    """When set, requests must carry ``Authorization: Bearer <token>``."""
    regions: dict[str, Region] = field(default_factory=default_regions)
    documents: dict[str, object] = field(default_factory=dict)
    """Raw documents to serve instead of the generated ones, by route."""
    forecast_step: timedelta = timedelta(hours=1)
    forecast_hours: int = 48

    @property
    def url(self) -> str:
        return f"{self.base_url}/carbon"

    @property
    def forecast_url(self) -> str:
        return f"{self.base_url}/forecast"

    def current_document(self) -> dict[str, object]:
        null_region = (
            next(iter(self.regions)) if self.modes["current"] is Mode.NULL_INTENSITY else None
        )
        hour = self.now.replace(minute=0, second=0, microsecond=0)
        entries: list[dict[str, object]] = []
        for name, region in self.regions.items():
            entry: dict[str, object] = {
                "region": name,
                "carbonIntensity": None if name == null_region else region.intensity,
                "timestamp": _rfc3339(hour),
            }
            if region.renewable_pct is not None:
                entry["renewablePercentage"] = region.renewable_pct
            entries.append(entry)
        return {"regions": entries}

    def forecast_document(self) -> dict[str, object]:
        start = self.now.replace(minute=0, second=0, microsecond=0)
        count = int(timedelta(hours=self.forecast_hours) / self.forecast_step)
        entries = []
        for name, region in self.regions.items():
            points = [
                {
                    "timestamp": _rfc3339(start + i * self.forecast_step),
                    "carbonIntensity": round(
                        region.intensity * region.daily_shape[i % len(region.daily_shape)], 1
                    ),
                }
                for i in range(count)
            ]
            entries.append({"region": name, "forecast": points})
        return {"generatedAt": _rfc3339(self.now - timedelta(minutes=5)), "regions": entries}

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/carbon", self._current)
        app.router.add_get("/forecast", self._forecast)
        return app

    async def _current(self, request: web.Request) -> web.StreamResponse:
        refused = await self._admit("current", request)
        if refused is not None:
            return refused
        return web.json_response(self.documents.get("current", self.current_document()))

    async def _forecast(self, request: web.Request) -> web.StreamResponse:
        refused = await self._admit("forecast", request)
        if refused is not None:
            return refused
        return web.json_response(self.documents.get("forecast", self.forecast_document()))

    async def _admit(self, route: str, request: web.Request) -> web.StreamResponse | None:
        mode = await self._enter(route)
        if (
            self.token is not None
            and request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            return json_body(401, {"error": "unauthorized"})
        if mode is Mode.NOT_FOUND:
            return json_body(404, {"error": "not found"})
        if mode is Mode.RATE_LIMITED:
            return self._rate_limited(json_body(429, {"error": "slow down"}))
        if mode is Mode.SERVER_ERROR:
            return web.Response(
                status=502, text="<html>Bad Gateway</html>", content_type="text/html"
            )
        if mode is Mode.MALFORMED:
            return web.Response(status=200, text='{"regions": [', content_type="application/json")
        return None


def _rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def serve(
    fake: FakeCustomApi | None = None,
) -> contextlib.AbstractAsyncContextManager[FakeCustomApi]:
    """Run ``fake`` (a default one when None) on loopback; see ``url`` and ``forecast_url``."""
    return upstream.serve(fake or FakeCustomApi())


@pytest.fixture
async def fake_custom_api() -> AsyncIterator[FakeCustomApi]:
    """A running fake custom carbon API (import it into a conftest)."""
    async with serve() as fake:
        yield fake

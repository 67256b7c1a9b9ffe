"""The fake carbon API served from a thread, and the carbon settings that point a service at it.

``CarbonApiThread`` serves ``FakeCustomApi`` from an event loop of its own, so fixtures without an
event loop can own it and switch it into an outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.e2e.fleet import FLEET_REGIONS
from tests.e2e.processes import ServiceError
from tests.fakes.custom_api import FakeCustomApi, Region


def fleet_carbon_api(values: Mapping[str, float]) -> FakeCustomApi:
    """A fake carbon API for every region of the session fleet, without forecasts: ``values``
    where given, else 300 gCO2eq/kWh and up (20 more per region, by name), all dirtier than what
    a test makes green."""
    regions = sorted(region for names in FLEET_REGIONS.values() for region in names)
    every = {region: 300.0 + 20 * i for i, region in enumerate(regions)} | dict(values)
    return FakeCustomApi(
        now=datetime.now(UTC),
        regions={region: Region(value, None) for region, value in every.items()},
    )


class CarbonApiThread:
    """``FakeCustomApi`` served on loopback from an event loop in a background thread.

    ``outage = True`` makes every route answer HTTP 500, as an API whose backend is down would.
    """

    def __init__(self, fake: FakeCustomApi) -> None:
        self.fake = fake
        self.outage = False
        self.refused = 0
        """Requests answered 500 because of the outage."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return self.fake.url

    @property
    def forecast_url(self) -> str:
        return self.fake.forecast_url

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-carbon-api", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise ServiceError("the fake carbon API did not start within 30s")
        if self._error is not None:
            raise ServiceError(f"the fake carbon API failed to start: {self._error!r}")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop may already be gone
                self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> CarbonApiThread:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported to start(); a thread has nowhere else to say it
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        app = self.fake.make_app()
        app.middlewares.append(self._outage_middleware)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            host, port = runner.addresses[0][:2]
            self.fake.base_url = f"http://{host}:{port}"
            self._ready.set()
            await self._stop.wait()
        finally:
            self.fake.release()
            await runner.cleanup()

    @web.middleware
    async def _outage_middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Any],
    ) -> web.StreamResponse:
        if self.outage:
            self.refused += 1
            return web.json_response({"error": "carbon backend unavailable"}, status=500)
        response: web.StreamResponse = await handler(request)
        return response


# --- environments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CarbonTimings:
    """Cache and refresh timings. The defaults are short so that outages show within seconds."""

    current_ttl: float = 2.0
    forecast_ttl: float = 2.0
    max_stale: float = 10.0
    refresh_interval: float = 1.0
    backoff_base: float = 1.0
    backoff_max: float = 2.0
    http_timeout: float = 2.0

    def env(self) -> dict[str, str]:
        return {
            "STELLAR_CARBON_CURRENT_TTL": f"{self.current_ttl:g}",
            "STELLAR_CARBON_FORECAST_TTL": f"{self.forecast_ttl:g}",
            "STELLAR_CARBON_MAX_STALE": f"{self.max_stale:g}",
            "STELLAR_CARBON_REFRESH_INTERVAL": f"{self.refresh_interval:g}",
            "STELLAR_CARBON_BACKOFF_BASE": f"{self.backoff_base:g}",
            "STELLAR_CARBON_BACKOFF_MAX": f"{self.backoff_max:g}",
            "STELLAR_CARBON_HTTP_TIMEOUT": f"{self.http_timeout:g}",
        }


def custom_api_carbon_env(
    api: CarbonApiThread, timings: CarbonTimings = CarbonTimings()
) -> dict[str, str]:
    """Carbon settings for the custom HTTP provider on ``api``, static annual averages behind."""
    return {
        "STELLAR_CARBON_PROVIDERS": "http,static",
        "STELLAR_CARBON_CUSTOM_URL": api.url,
        "STELLAR_CARBON_CUSTOM_FORECAST_URL": api.forecast_url,
        **timings.env(),
    }


def mock_carbon_env(seed: int = 0) -> dict[str, str]:
    """Carbon settings for the built-in mock provider, static annual averages behind."""
    return {"STELLAR_CARBON_PROVIDERS": "mock,static", "STELLAR_CARBON_MOCK_SEED": str(seed)}

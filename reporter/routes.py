"""HTTP handlers: parse the request, read the current view, answer JSON.

No handler awaits anything but writing its response; every number comes from the in-memory
``View`` (or, for forecasts, straight from the snapshot), so no request ever reaches a provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from reporter import openapi, params
from reporter.errors import BadParameter, RegionNotFound
from reporter.forecast import optimal_windows, points_within, rolling_average
from reporter.health import HealthSource, carbon_check, health_json, kubernetes_check
from reporter.history.instruments import Instrument
from reporter.history.recorder import HistoryRecorder
from reporter.metrics import Exposition
from reporter.placement import placement_json
from reporter.regions import RegionLookup
from reporter.settings import MAX_PAGE_SIZE, ReporterSettings
from reporter.summary import freshness
from reporter.views import View, ViewCache
from shared.core.clock import Clock, rfc3339

API = "/api/v1/sustainability"
MAX_FORECAST_HOURS = 72
MAX_REGION_NAME = 100
"""Longest region name worth matching against the catalog for suggestions."""
FOOTPRINT_METHOD = (
    "Cloud Carbon Footprint: power = vCPUs x (min + utilisation x (max - min)) W + memory W; "
    "emissions = power x PUE x grid intensity. Operational emissions only; an estimate."
)


@dataclass(frozen=True, slots=True)
class Reporter:
    """Everything the handlers read, stored on the application under ``REPORTER``."""

    settings: ReporterSettings
    views: ViewCache
    catalog: RegionLookup
    clock: Clock
    health_source: HealthSource | None
    exposition: Exposition
    history: HistoryRecorder | None = None
    instruments: Mapping[str, tuple[Instrument, ...]] = field(default_factory=dict)
    """Declared market-based instruments by region."""


REPORTER = web.AppKey("reporter", Reporter)


def _state(request: web.Request) -> Reporter:
    return request.app[REPORTER]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def metrics_summary(request: web.Request) -> web.Response:
    state = _state(request)
    view = state.views.current()
    now = state.clock()
    return _json(
        {
            "generatedAt": rfc3339(now),
            **view.totals,
            "readReplicas": placement_json(view.placement),
            "dataFreshness": freshness(view.snapshot, view.region_names(), now=now),
            "footprintMethod": FOOTPRINT_METHOD,
        }
    )


async def list_regions(request: web.Request) -> web.Response:
    state = _state(request)
    cloud = params.cloud(request.query)
    view = state.views.current()
    rows = [
        item for item in view.region_items.values() if cloud is None or item["cloud"] == cloud.value
    ]
    horizon = state.settings.carbon.horizon_hours
    return _json({"regions": rows, "count": len(rows), "rankHorizonHours": horizon})


def _region_or_404(state: Reporter, view: View, region: str) -> dict[str, Any]:
    item = view.region_items.get(region)
    if item is None:
        raise RegionNotFound(region, state.catalog.close_matches(region[:MAX_REGION_NAME]))
    return item


async def get_region(request: web.Request) -> web.Response:
    state = _state(request)
    view = state.views.current()
    return _json(_region_or_404(state, view, request.match_info["region"]))


async def get_forecast(request: web.Request) -> web.Response:
    state = _state(request)
    hours = params.integer(request.query, "hours", default=24, low=1, high=MAX_FORECAST_HOURS)
    window = params.optional_integer(request.query, "window", low=1, high=MAX_FORECAST_HOURS * 60)
    if window is not None and window > hours * 60:
        raise BadParameter("window", f"must not exceed hours x 60 ({hours * 60} minutes)")
    view = state.views.current()
    name = request.match_info["region"]
    carbon = view.snapshot.get(name)
    if carbon is None and name not in view.region_items:
        raise RegionNotFound(name, state.catalog.close_matches(name[:MAX_REGION_NAME]))
    now = state.clock()
    forecast = carbon.forecast if carbon is not None else None
    points = points_within(forecast.points, now=now, hours=hours) if forecast else ()
    windows = rolling_average(points, timedelta(minutes=window) if window else None)
    info = carbon.info if carbon is not None else None
    body = {
        "region": name,
        "zone": info.zone if info is not None else None,
        "hours": hours,
        "windowMinutes": window,
        "forecastAvailable": bool(points),
        "generatedAt": rfc3339(forecast.generated_at) if forecast else None,
        "source": forecast.provenance.label if forecast else None,
        "freshness": str(forecast.provenance.freshness) if forecast else None,
        "dataStartAt": rfc3339(points[0].starts_at) if points else None,
        "dataEndAt": rfc3339(points[-1].starts_at + points[-1].duration) if points else None,
        "points": [
            {
                "timestamp": rfc3339(p.starts_at),
                "durationMinutes": p.duration.total_seconds() / 60,
                "carbonIntensity": round(p.g_per_kwh, 3),
            }
            for p in points
        ],
        "optimalDataPoints": [
            {
                "timestamp": rfc3339(w.starts_at),
                "durationMinutes": w.duration.total_seconds() / 60,
                "carbonIntensity": round(w.g_per_kwh, 3),
            }
            for w in optimal_windows(windows)
        ],
    }
    return _json(body)


async def list_nodes(request: web.Request) -> web.Response:
    state = _state(request)
    query = request.query
    limit = params.integer(
        query, "limit", default=state.settings.default_page_size, low=1, high=MAX_PAGE_SIZE
    )
    after = params.decode_continue(query)
    region = params.text(query, "region")
    page = state.views.current().nodes_page(region=region, after=after, limit=limit)
    token = params.encode_continue(page.last_name) if page.remaining and page.last_name else None
    return _json(
        {
            "nodes": list(page.items),
            "total": page.total,
            "remainingItemCount": page.remaining,
            "continue": token,
            "footprintMethod": FOOTPRINT_METHOD,
        }
    )


async def health(request: web.Request) -> web.Response:
    state = _state(request)
    view = state.views.current()
    now = state.clock()
    checks = [
        carbon_check(view.snapshot, view.region_names(), now=now),
        kubernetes_check(state.views.inventory),
    ]
    if state.health_source is not None:
        checks.extend(state.health_source.checks())
    if state.history is not None:
        checks.append(state.history.check())
    body, status = health_json(checks, now=now)
    return _json(body, status)


async def liveness(request: web.Request) -> web.Response:
    """The process answers: all a liveness probe should ask. Readiness (data, Kubernetes) is
    ``/api/v1/sustainability/health``; a provider outage must not restart the pod."""
    return web.Response(text="ok\n")


async def openapi_document(request: web.Request) -> web.Response:
    return web.Response(body=openapi.document_json(), content_type="application/json")


async def prometheus(request: web.Request) -> web.Response:
    response = web.Response(body=_state(request).exposition.render())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/metrics", metrics_summary, name="metrics")
    app.router.add_get(f"{API}/regions", list_regions, name="regions")
    app.router.add_get(f"{API}/regions/{{region}}", get_region, name="region")
    app.router.add_get(f"{API}/forecast/{{region}}", get_forecast, name="forecast")
    app.router.add_get(f"{API}/nodes", list_nodes, name="nodes")
    app.router.add_get(f"{API}/health", health, name="health")
    app.router.add_get(f"{API}/openapi.json", openapi_document, name="openapi")
    app.router.add_get("/openapi.json", openapi_document, name="openapi-root")
    app.router.add_get("/metrics", prometheus, name="prometheus")
    app.router.add_get("/healthz", liveness, name="liveness")

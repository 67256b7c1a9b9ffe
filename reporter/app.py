"""``create_app``: the reporter's aiohttp application, reused as is by tests and ``__main__``.

Everything the handlers read is injected: the snapshot source (the background refresher), the
inventory, the region catalog, the clock, optional health, CPU-usage and provider-error sources,
the history store the hourly recorder writes to, the declared market-based instruments and the
optional poller of the Karmada controller's policies.
Background work (refresher, inventory watch, metrics polling) is passed in as cleanup contexts so
its lifetime is the application's.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from reporter.dashboard import add_dashboard_routes
from reporter.errors import error_middleware
from reporter.health import HealthSource
from reporter.history import api as history_api
from reporter.history.instruments import Instrument, by_region
from reporter.history.recorder import HistoryRecorder
from reporter.history.store import HistoryStore
from reporter.karmada import KarmadaPoller
from reporter.karmada import add_routes as add_karmada_routes
from reporter.metrics import Exposition, ProviderErrors
from reporter.regions import RegionLookup
from reporter.routes import API, REPORTER, Reporter, add_routes
from reporter.settings import ReporterSettings
from reporter.views import NodeUsage, SnapshotSource, ViewCache
from shared.cluster.inventory import Inventory
from shared.core.clock import Clock, utcnow

logger = logging.getLogger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""Methods counted by name; anything else a client invents is counted as ``other``."""


def _count_requests(reporter: Reporter) -> Middleware:
    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        # The route's name, never the raw path: a scanner must not create unbounded series.
        route = request.match_info.route.name or "unmatched"
        method = request.method if request.method in _METHODS else "other"
        reporter.exposition.requests.labels(route, method, str(response.status)).inc()
        return response

    return count


def create_app(
    settings: ReporterSettings,
    *,
    snapshot_source: SnapshotSource,
    inventory: Inventory,
    catalog: RegionLookup,
    clock: Clock = utcnow,
    health_source: HealthSource | None = None,
    usage: NodeUsage | None = None,
    provider_errors: ProviderErrors | None = None,
    background: Sequence[CleanupContext] = (),
    history: HistoryStore | None = None,
    instruments: Sequence[Instrument] = (),
    karmada: KarmadaPoller | None = None,
) -> web.Application:
    views = ViewCache(
        snapshot_source=snapshot_source,
        inventory=inventory,
        catalog=catalog,
        clock=clock,
        extra_regions=settings.carbon.extra_regions,
        usage=usage,
        horizon_hours=settings.carbon.horizon_hours,
    )
    exposition = Exposition(views, clock, provider_errors)
    recorder = (
        HistoryRecorder(
            history,
            views,
            clock=clock,
            interval=timedelta(seconds=settings.history_interval_seconds),
            retention=timedelta(days=settings.history_retention_days),
        )
        if history is not None
        else None
    )
    reporter = Reporter(
        settings=settings,
        views=views,
        catalog=catalog,
        clock=clock,
        health_source=health_source,
        exposition=exposition,
        history=recorder,
        instruments=by_region(tuple(instruments)),
    )
    # Counting sits outside the error middleware so it sees the final (JSON error) status.
    app = web.Application(middlewares=[_count_requests(reporter), error_middleware])
    app[REPORTER] = reporter
    add_routes(app)
    add_dashboard_routes(app)
    history_api.add_routes(app)
    app.cleanup_ctx.extend(background)
    add_karmada_routes(app, karmada, prefix=API)
    if recorder is not None:
        # After the background work, so it stops first and the last sample is not cut short.
        app.cleanup_ctx.append(recorder.lifecycle)
    return app

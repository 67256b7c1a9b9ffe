"""The Karmada controller's plain-HTTP site: ``/healthz``, ``/readyz``, ``/metrics`` and
``/api/v1/policies`` (the per-policy views behind the metrics, as JSON, for the reporter).

``/readyz`` is 200 once the clusters, policies and bindings have been listed from the Karmada API
server and carbon data is present for its member clusters, on the leader and the standby alike: a
standby is ready to take over. The body says whether this replica leads.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from multicluster.karmada import KarmadaWatches
from multicluster.lease import LeaderLease
from multicluster.metrics import KarmadaMetrics
from multicluster.report import policies_document
from shared.carbon.snapshot import CarbonSnapshot
from shared.health import readiness_body

_WATCHES = web.AppKey("watches", KarmadaWatches)
_LEASE = web.AppKey("lease", LeaderLease)
_SNAPSHOT_SOURCE: web.AppKey[Callable[[], CarbonSnapshot]] = web.AppKey("snapshot_source")
METRICS = web.AppKey("metrics", KarmadaMetrics)


def create_app(
    *,
    watches: KarmadaWatches,
    lease: LeaderLease,
    snapshot_source: Callable[[], CarbonSnapshot],
    metrics: KarmadaMetrics,
) -> web.Application:
    app = web.Application()
    app[_WATCHES] = watches
    app[_LEASE] = lease
    app[_SNAPSHOT_SOURCE] = snapshot_source
    app[METRICS] = metrics
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/api/v1/policies", _policies)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    watches = request.app[_WATCHES]
    reasons = []
    if not watches.synced:
        error = watches.last_error
        reasons.append("Karmada API not listed yet" + (f": {error}" if error else ""))
    elif watches.members() and request.app[_SNAPSHOT_SOURCE]().empty:
        reasons.append("no carbon data yet")
    body, status = readiness_body(reasons)
    body["leader"] = request.app[_LEASE].leading
    return web.json_response(body, status=status)


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def _policies(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    leader = request.app[_LEASE].leading
    return web.json_response(
        policies_document(metrics.views, mode=metrics.running_mode, leader=leader)
    )

"""The tier component's plain-HTTP site: ``/healthz``, ``/readyz`` and ``/metrics``.

``/readyz`` is 200 once the node inventory has synced and carbon data is present: before that, a
cycle would have nothing to decide on. The component serves no other traffic; readiness tells a
rollout and an operator that it is working.
"""

from __future__ import annotations

import logging

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from shared.cluster.inventory import Inventory
from shared.health import not_ready_reasons, readiness_body
from tiers.loop import SnapshotSource
from tiers.metrics import TierMetrics

logger = logging.getLogger(__name__)

_INVENTORY = web.AppKey("inventory", Inventory)
_SNAPSHOT_SOURCE: web.AppKey[SnapshotSource] = web.AppKey("snapshot_source")
METRICS = web.AppKey("metrics", TierMetrics)


def create_app(
    *, inventory: Inventory, snapshot_source: SnapshotSource, metrics: TierMetrics
) -> web.Application:
    """The health and metrics site over the state the tier loop reads."""
    app = web.Application()
    app[_INVENTORY] = inventory
    app[_SNAPSHOT_SOURCE] = snapshot_source
    app[METRICS] = metrics
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    reasons = not_ready_reasons(request.app[_SNAPSHOT_SOURCE], request.app[_INVENTORY])
    body, status = readiness_body(reasons)
    return web.json_response(body, status=status)


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response

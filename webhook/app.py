"""The aiohttp edge: ``POST /mutate`` (served over HTTPS) and the plain-HTTP health/metrics app.

Handlers only parse, call ``webhook.admission.admit`` and map the outcome to HTTP: a body that is
not an AdmissionReview gets a 400 with a one-line reason; everything else gets a 200 AdmissionReview
that allows the pod, with or without a patch. Every other failure (an unknown path, a wrong
method, a body over the size limit, a bug) gets the same JSON error document from
``shared.http_errors``, which serves both sites. Nothing here does I/O beyond the request itself:
carbon data, nodes and workloads come from in-memory sources kept current in the background.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory
from shared.cluster.workloads import EMPTY, Workloads
from shared.core.clock import Clock
from shared.core.shapes import quote
from shared.health import not_ready_reasons, readiness_body
from shared.http_errors import error_middleware, error_response
from shared.scoring.ranking import DEFAULT_HORIZON_HOURS
from webhook.admission import Admitter, Placement
from webhook.decisions import DecisionCache
from webhook.errors import BadReview
from webhook.metrics import WatchSource, WebhookMetrics
from webhook.recall import Recall
from webhook.review import parse_review
from webhook.settings import WebhookSettings

logger = logging.getLogger(__name__)

SnapshotSource = Callable[[], CarbonSnapshot]

MUTATE_PATH = "/mutate"

_SNAPSHOT_SOURCE: web.AppKey[SnapshotSource] = web.AppKey("snapshot_source")
_INVENTORY = web.AppKey("inventory", Inventory)
_ADMIT = web.AppKey("admit", Admitter)
_SERVING: web.AppKey[Callable[[], bool]] = web.AppKey("serving")
_DRAINING: web.AppKey[Callable[[], bool]] = web.AppKey("draining")
_WATCHES: web.AppKey[WatchSource] = web.AppKey("watches")
METRICS = web.AppKey("metrics", WebhookMetrics)

_JSON_ERRORS = error_middleware("webhook")


def create_app(
    settings: WebhookSettings,
    *,
    snapshot_source: SnapshotSource,
    inventory: Inventory,
    clock: Clock,
    metrics: WebhookMetrics | None = None,
    horizon_hours: int = DEFAULT_HORIZON_HOURS,
    workloads: Callable[[], Workloads] = lambda: EMPTY,
    draining: Callable[[], bool] = lambda: False,
) -> web.Application:
    """The admission app. Serve it with an SSL context (the API server only calls HTTPS).

    ``workloads`` gives the StatefulSets, namespaces and bound pods read pools are sized from
    (``shared.cluster.kube.KubeWorkloads.state``); none without a cluster. While ``draining``
    holds, each response closes its connection: the API server keeps idle connections to a
    replica after its endpoint is gone, and one closed after a response is never reused, whereas
    one closed while idle can meet a review already on its way."""
    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[_JSON_ERRORS])
    app[_SNAPSHOT_SOURCE] = snapshot_source
    app[_INVENTORY] = inventory
    # Bound once: the handler runs for every pod, and these are the same throughout.
    decide = Admitter(
        carbon=snapshot_source,
        nodes=lambda: inventory.nodes,
        workloads=workloads,
        placement=Placement(
            default_policy=settings.default_policy,
            horizon_hours=horizon_hours,
            low_carbon_fraction=settings.low_carbon_fraction,
        ),
        clock=clock,
        cache=DecisionCache(),
        recall=Recall(),
    )
    app[_ADMIT] = decide
    app[METRICS] = metrics or WebhookMetrics()
    app[_DRAINING] = draining
    app.router.add_post(MUTATE_PATH, _mutate)
    return app


def create_health_app(
    *,
    snapshot_source: SnapshotSource,
    inventory: Inventory,
    clock: Clock,
    metrics: WebhookMetrics,
    serving: Callable[[], bool] = lambda: True,
    watches: WatchSource = tuple,
    draining: Callable[[], bool] = lambda: False,
) -> web.Application:
    """``/healthz``, ``/readyz`` and ``/metrics`` on plain HTTP, for probes and Prometheus.

    ``serving`` tells whether the HTTPS site accepts connections yet: the health site starts
    first, and a replica must not be ready (and get traffic) before ``/mutate`` answers.
    ``watches`` gives the workload watches (``KubeWorkloads.stats``; none without a cluster):
    a replica is ready once each has listed, since read pools get preferred terms only before.
    ``draining``: the replica got SIGTERM and serves only until its endpoint is gone.
    """
    metrics.bind(snapshot_source=snapshot_source, inventory=inventory, clock=clock, watches=watches)
    app = web.Application(middlewares=[_JSON_ERRORS])
    app[_SNAPSHOT_SOURCE] = snapshot_source
    app[_INVENTORY] = inventory
    app[METRICS] = metrics
    app[_SERVING] = serving
    app[_WATCHES] = watches
    app[_DRAINING] = draining
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


async def _mutate(request: web.Request) -> web.Response:
    started = time.perf_counter()
    app = request.app
    try:
        review = parse_review(await _body(request))
    except BadReview as e:
        app[METRICS].bad_requests.inc()
        logger.info("rejected a request to %s: %s", MUTATE_PATH, e)
        return error_response(400, "bad_review", str(e))
    admission = app[_ADMIT](review)
    app[METRICS].observe(admission.outcome, time.perf_counter() - started)
    if logger.isEnabledFor(logging.DEBUG):
        # The API server appends ``?timeout=Ns``; the answer takes microseconds, so it is only
        # logged (and the query only parsed when it is).
        logger.debug(
            "%s uid=%s outcome=%s timeout=%s",
            review.display_name,
            review.uid,
            admission.outcome,
            request.query.get("timeout"),
        )
    response = web.Response(
        body=admission.encoded(), content_type="application/json", charset="utf-8"
    )
    if app[_DRAINING]():
        response.force_close()
    return response


async def _body(request: web.Request) -> bytes:
    """The request body, decoded as its ``Content-Encoding`` says (aiohttp does the decoding)."""
    try:
        return await request.read()
    except (RequestPayloadError, HttpProcessingError) as e:
        # aiohttp reports a body that does not decode as its Content-Encoding claims as a payload
        # error when it is read; without this it would be a 500.
        encoding = request.headers.get("Content-Encoding", "identity")
        raise BadReview(f"body does not decode as Content-Encoding {quote(encoding)}") from e


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    reasons: list[str] = []
    if request.app[_DRAINING]():
        reasons.append("shutting down")
    if not request.app[_SERVING]():
        reasons.append("HTTPS site not serving yet")
    reasons += not_ready_reasons(request.app[_SNAPSHOT_SOURCE], request.app[_INVENTORY])
    try:
        waiting = [w.resource for w in request.app[_WATCHES]() if not w.synced]
    except Exception:
        logger.exception("cannot read the workload watches")
        waiting = ["unreadable"]
    if waiting:
        reasons.append(f"workload watches not synced yet: {', '.join(waiting)}")
    body, status = readiness_body(reasons)
    return web.json_response(body, status=status)


async def _metrics(request: web.Request) -> web.Response:
    response = web.Response(body=request.app[METRICS].exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response

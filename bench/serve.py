"""The servers the benchmarks measure, each run in its own process (``python -m bench.serve``).

* ``floor``: the least any Python admission webhook pays: an aiohttp HTTPS handler that parses the
  AdmissionReview and allows it, echoing the uid. Same TLS and body limit as the webhook. With
  ``--patch-file`` it answers every review with that patch (its ``response.patch`` text): the
  least a mutating webhook pays, for the API-server load.
* ``webhook``: the product's ``/mutate`` app (``webhook.app.create_app``) on mock carbon data and
  the demo inventory, or a generated cluster of ``--nodes`` nodes.
* ``history``: the product's reporter app over an existing history file (``--history-file``),
  its clock pinned at ``--clock``, for the ``history`` and ``report`` endpoints. No carbon data
  is ever ready, so its recorder adds nothing to the file.
* ``reporter``: the product's reporter app on a generated cluster, fed by the real background
  refresher, provider chain and cache over the mock provider. ``--time-scale`` runs the clock the
  refresher and cache see that many times faster than real time (refresh interval scaled to
  match), so an hour of upstream traffic can be observed in seconds. ``/_bench/stats`` reports
  upstream calls so far.

Each prints one JSON line ``{"ready": true, ...}`` on stdout once it serves, and stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import ssl
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from bench.cluster import inventory_regions, mock_snapshot, synthetic_cluster
from reporter.app import create_app as create_reporter_app
from reporter.history.store import HistoryStore
from reporter.settings import ReporterSettings
from shared.carbon.cache import CarbonCache
from shared.carbon.chain import ProviderChain
from shared.carbon.providers.mock import MockProvider
from shared.carbon.refresh import CarbonRefresher
from shared.cluster.demo import StaticInventory, demo_inventory
from shared.core.clock import Clock, fixed, rfc3339
from shared.entrypoint import freeze_startup_objects
from shared.regions.catalog import RegionCatalog
from shared.settings import CarbonSettings
from webhook.app import MUTATE_PATH
from webhook.app import create_app as create_webhook_app
from webhook.certs import KeyPair
from webhook.settings import WebhookSettings
from webhook.tls import load_pair, server_context

CERT_FILE = "tls.crt"
KEY_FILE = "tls.key"


def _ssl(cert_dir: str) -> ssl.SSLContext:
    context = server_context()
    directory = Path(cert_dir)
    load_pair(
        context, KeyPair((directory / CERT_FILE).read_bytes(), (directory / KEY_FILE).read_bytes())
    )
    return context


_FLOOR_PATCH: web.AppKey[dict[str, str]] = web.AppKey("floor_patch")


async def _floor(request: web.Request) -> web.Response:
    # The same parser and serialiser as the webhook (orjson), so the ratio prices the decision,
    # not a faster JSON library.
    review = orjson.loads(await request.read())
    body = orjson.dumps(
        {
            "apiVersion": review.get("apiVersion", "admission.k8s.io/v1"),
            "kind": "AdmissionReview",
            "response": {
                "uid": review["request"]["uid"],
                "allowed": True,
                **request.app[_FLOOR_PATCH],
            },
        }
    )
    return web.Response(body=body, content_type="application/json", charset="utf-8")


def floor_app(patch: str = "") -> web.Application:
    """The floor; with ``patch`` (a ``response.patch`` text) it sends that patch every time."""
    app = web.Application(client_max_size=WebhookSettings().max_body_bytes)
    app[_FLOOR_PATCH] = {"patch": patch, "patchType": "JSONPatch"} if patch else {}
    app.router.add_post(MUTATE_PATH, _floor)
    return app


def _inventory(nodes: int, pods: int) -> StaticInventory:
    return synthetic_cluster(nodes, pods) if nodes else demo_inventory()


async def webhook_app(nodes: int, pods: int) -> tuple[web.Application, dict[str, Any]]:
    inventory = _inventory(nodes, pods)
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    snapshot = await mock_snapshot(inventory_regions(inventory), at=at)
    app = create_webhook_app(
        WebhookSettings(), snapshot_source=lambda: snapshot, inventory=inventory, clock=fixed(at)
    )
    return app, {"nodes": len(inventory.nodes), "regions": len(snapshot.regions)}


def scaled_clock(scale: float) -> Clock:
    """Wall time running ``scale`` times faster from now on."""
    origin = datetime.now(UTC)
    start = time.monotonic()
    return lambda: origin + timedelta(seconds=(time.monotonic() - start) * scale)


def reporter_app(nodes: int, pods: int, scale: float) -> tuple[web.Application, dict[str, Any]]:
    inventory = _inventory(nodes, pods)
    catalog = RegionCatalog.load()
    regions = {info.region: info for info in inventory_regions(inventory, catalog)}
    clock = scaled_clock(scale)
    defaults = CarbonSettings()
    settings = CarbonSettings(
        providers=("mock",), refresh_interval=defaults.refresh_interval / scale
    )
    retain = max(settings.max_stale, settings.current_ttl, settings.forecast_ttl) + 60.0
    chain = ProviderChain(
        [MockProvider(clock=clock)],
        CarbonCache.memory(clock=clock, retain=retain),
        settings=settings,
        clock=clock,
    )
    refresher = CarbonRefresher(chain, regions.get, settings=settings, clock=clock)
    refresher.track(regions)

    async def refreshing(app: web.Application) -> AsyncIterator[None]:
        await refresher.start()
        yield
        await refresher.stop()
        await chain.close()

    app = create_reporter_app(
        ReporterSettings(host="127.0.0.1"),
        snapshot_source=refresher,
        inventory=inventory,
        catalog=catalog,
        clock=clock,
        background=[refreshing],
    )

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": dict(chain.calls),
                "cycles": refresher.cycles,
                "clock": rfc3339(clock()),
                "zones": len({info.zone for info in regions.values()}),
                "regions": len(regions),
            }
        )

    app.router.add_get("/_bench/stats", stats)
    return app, {"nodes": len(inventory.nodes), "pods": len(inventory.pods)}


class _NoSnapshot:
    snapshot = None


def history_app(history_file: str, clock: str) -> tuple[web.Application, dict[str, Any]]:
    settings = ReporterSettings(host="127.0.0.1")
    app = create_reporter_app(
        settings,
        snapshot_source=_NoSnapshot(),
        inventory=demo_inventory(),
        catalog=RegionCatalog.load(),
        clock=fixed(datetime.fromisoformat(clock)),
        history=HistoryStore.open(history_file),
    )
    return app, {"history": history_file}


async def serve(args: argparse.Namespace) -> None:
    context: ssl.SSLContext | None = None
    info: dict[str, Any] = {}
    if args.kind == "floor":
        app = floor_app(args.patch)
        context = _ssl(args.cert_dir)
    elif args.kind == "webhook":
        app, info = await webhook_app(args.nodes, args.pods)
        context = _ssl(args.cert_dir)
    elif args.kind == "history":
        app, info = history_app(args.history_file, args.clock)
    else:
        app, info = reporter_app(args.nodes, args.pods, args.time_scale)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, ssl_context=context, backlog=1024)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    freeze_startup_objects()  # as the services do once they serve
    print(json.dumps({"ready": True, "pid": os.getpid(), **info}), flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.serve")
    parser.add_argument("kind", choices=("floor", "webhook", "reporter", "history"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--patch-file", help="floor: the response.patch text to send every time")
    parser.add_argument("--cert-dir", help="directory with tls.crt and tls.key (HTTPS servers)")
    parser.add_argument("--nodes", type=int, default=0, help="generated nodes; 0: demo inventory")
    parser.add_argument("--pods", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--cpu", type=int, help="pin the process to this CPU")
    parser.add_argument("--history-file", help="the SQLite history a history server reads")
    parser.add_argument("--clock", help="RFC 3339 time a history server's clock is pinned at")
    args = parser.parse_args()
    args.patch = Path(args.patch_file).read_text().strip() if args.patch_file else ""
    if args.cpu is not None:
        with contextlib.suppress(OSError, AttributeError):
            os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()

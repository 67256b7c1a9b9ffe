"""``python -m reporter``: serve the sustainability API on port 9090 until SIGTERM.

The port is bound at once; the node inventory's first list and the first carbon refresh happen in
the background, and ``GET health`` answers 503 until both are done, so a readiness probe holds
traffic back without a liveness probe killing a slow start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from reporter.app import CleanupContext, create_app
from reporter.health import RefresherHealth
from reporter.history.instruments import load_instruments
from reporter.history.store import HistoryStore
from reporter.karmada import KarmadaPoller
from reporter.settings import InventorySource, ReporterSettings
from reporter.usage import NodeMetricsPoller
from shared.cluster.demo import demo_inventory
from shared.cluster.inventory import RunningInventory
from shared.cluster.kube import load_api_client
from shared.entrypoint import (
    freeze_startup_objects,
    run,
    settings_or_exit,
    start_logging,
    stop_on_signals,
)
from shared.factory import CarbonRuntime, build_runtime
from shared.http_errors import JsonErrorRunner

logger = logging.getLogger("reporter")


def main() -> None:
    settings = settings_or_exit("stellar-carbon-reporter", ReporterSettings.from_env)
    start_logging(settings.log_level, logger, reporter=settings.describe())
    run(serve(settings), logger)


async def serve(settings: ReporterSettings, *, stopping: asyncio.Event | None = None) -> None:
    """Serve until SIGTERM or SIGINT (or ``stopping`` is set), then clean up.

    The application runs behind ``JsonErrorRunner`` (not ``web.run_app``), so even what aiohttp's
    HTTP parser rejects is answered with the documented JSON error.
    """
    if stopping is None:
        stopping = stop_on_signals()
    runner = JsonErrorRunner(await build_app(settings), service="reporter", access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        freeze_startup_objects()
        logger.info("serving on http://%s:%d", settings.host, settings.port)
        await stopping.wait()
        logger.info("shutting down")
    finally:
        await runner.cleanup()


async def build_app(
    settings: ReporterSettings, *, runtime: CarbonRuntime | None = None
) -> web.Application:
    """The application with its background work; ``runtime`` replaces the configured one."""
    runtime = runtime or build_runtime(settings.carbon)
    api: ApiClient | None = None
    if settings.inventory is InventorySource.KUBERNETES:
        api = await load_api_client()
    inventory = _inventory(settings, runtime, api)
    usage = (
        NodeMetricsPoller(api, interval=settings.node_metrics_interval_seconds)
        if settings.node_metrics and api is not None
        else None
    )
    # Cleanup runs in reverse: the API client closes after everything that uses it has stopped.
    background: list[CleanupContext] = [_closing(api)] if api is not None else []
    background.append(_carbon_and_inventory(runtime, inventory))
    if usage is not None:
        background.append(_poll(usage))
    return create_app(
        settings,
        snapshot_source=runtime.refresher,
        inventory=inventory,
        catalog=runtime.catalog,
        clock=runtime.clock,
        health_source=RefresherHealth(
            runtime.refresher.status,
            max_age_seconds=max(180.0, 3 * settings.carbon.refresh_interval),
        ),
        usage=usage,
        provider_errors=lambda: runtime.chain.error_kinds,
        background=background,
        history=HistoryStore.open(settings.history_url.reveal()),
        instruments=load_instruments(settings.instruments_file)
        if settings.instruments_file
        else (),
        karmada=KarmadaPoller(
            settings.karmada_url,
            interval=settings.karmada_interval_seconds,
            clock=runtime.clock,
        )
        if settings.karmada_url
        else None,
    )


def _inventory(
    settings: ReporterSettings, runtime: CarbonRuntime, api: ApiClient | None
) -> RunningInventory:
    if api is None:
        return demo_inventory(settings.carbon.region_label)
    return runtime.kube_inventory(
        api,
        watch_pods=True,
        pod_namespace=settings.pod_namespace,
        pod_selectors=settings.pod_selector,
    )


def _carbon_and_inventory(runtime: CarbonRuntime, inventory: RunningInventory) -> CleanupContext:
    async def start() -> None:
        try:
            await runtime.follow(inventory)
        except Exception:
            # Health keeps answering 503 and says why; the process stays up for inspection.
            logger.exception("starting the inventory or the carbon refresh failed")
        else:
            logger.info("carbon data and node inventory ready")

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(start(), name="reporter-start")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await runtime.close()
        await inventory.stop()

    return lifecycle


def _poll(usage: NodeMetricsPoller) -> CleanupContext:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(usage.run(), name="node-metrics")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return lifecycle


def _closing(api: ApiClient) -> CleanupContext:
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        yield
        await api.close()

    return lifecycle


if __name__ == "__main__":
    main()

"""``python -m webhook``: run the admission webhook until SIGTERM.

Startup order: settings (logged once), the health site (so liveness answers while the rest
starts; readiness stays false), the serving certificate (fail fast when it is missing), the node
inventory, the first carbon refresh, the StatefulSet, namespace and pod watches (on a cluster)
with the check for restricted pods left unschedulable, then the HTTPS site. Shutdown first
drains (``shutdown_delay``: not ready, still serving, each connection closed after its response,
until the endpoints have dropped the replica), then stops accepting, lets in-flight reviews
finish and stops the background tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from shared.cluster.demo import StaticInventory, demo_inventory
from shared.cluster.inventory import RunningInventory
from shared.cluster.kube import KubeApiError, KubeWorkloads, load_api_client
from shared.cluster.workloads import EMPTY, Workloads
from shared.core.backoff import Backoff
from shared.core.clock import utcnow
from shared.core.errors import ConfigError
from shared.core.tasks import cancel_and_wait
from shared.entrypoint import (
    freeze_startup_objects,
    run,
    settings_or_exit,
    start_logging,
    stop_on_signals,
)
from shared.factory import CarbonRuntime, build_runtime
from shared.http_errors import JsonErrorRunner
from shared.settings import CarbonSettings
from webhook.app import create_app, create_health_app
from webhook.errors import CertificateError, WebhookError
from webhook.metrics import WebhookMetrics
from webhook.rotation import SelfManagedCertificates
from webhook.settings import InventorySource, TlsMode, WebhookSettings
from webhook.stranded import StrandedPods
from webhook.tls import CertificateFiles, server_context

logger = logging.getLogger("webhook")

_CERT_ATTEMPTS = 5


def main() -> None:
    settings, carbon = settings_or_exit(
        "stellar-carbon-webhook",
        lambda env: (WebhookSettings.from_env(env), CarbonSettings.from_env(env)),
    )
    start_logging(settings.log_level, logger, webhook=settings.describe(), carbon=carbon.describe())
    run(serve(settings, carbon), logger, fatal=(ConfigError, WebhookError))


async def serve(
    settings: WebhookSettings,
    carbon: CarbonSettings,
    *,
    stopping: asyncio.Event | None = None,
) -> None:
    """Run until ``stopping`` is set (by SIGTERM/SIGINT when not given)."""
    if stopping is None:
        stopping = stop_on_signals()

    async with contextlib.AsyncExitStack() as stack:
        needs_api = (
            settings.tls_mode is TlsMode.SELF_MANAGED
            or settings.inventory is InventorySource.KUBERNETES
        )
        api: ApiClient | None = None
        if needs_api:
            api = await load_api_client(settings.kubeconfig)
            stack.push_async_callback(api.close)

        runtime = build_runtime(carbon)
        stack.push_async_callback(runtime.close)
        clock, refresher = runtime.clock, runtime.refresher
        inventory = _inventory(settings, carbon, api, runtime)
        metrics = WebhookMetrics()
        serving = asyncio.Event()
        draining = asyncio.Event()
        workloads = _workloads(settings, api)

        health = create_health_app(
            snapshot_source=lambda: refresher.snapshot,
            inventory=inventory,
            clock=clock,
            metrics=metrics,
            serving=serving.is_set,
            watches=workloads.stats if workloads is not None else tuple,
            draining=draining.is_set,
        )
        await stack.enter_async_context(
            _site(health, settings.bind_address, settings.health_port, settings)
        )

        context = server_context(settings.tls_min_version)
        if settings.tls_mode is TlsMode.FILES:
            files = CertificateFiles(
                context,
                settings.cert_dir,
                interval=settings.cert_check_interval,
                on_reload=lambda _: metrics.certificate_reloads.inc(),
            )
            files.load()
            files.start()
            stack.push_async_callback(files.stop)
        else:
            assert api is not None
            rotation = SelfManagedCertificates(
                api,
                settings,
                context,
                clock=utcnow,  # certificates follow real time even when carbon data is pinned
                on_reload=lambda _: metrics.certificate_reloads.inc(),
            )
            await _first_certificate(rotation)
            rotation.start()
            stack.push_async_callback(rotation.stop)

        stack.push_async_callback(inventory.stop)
        await runtime.follow(inventory)
        if workloads is not None:
            # Not waited for: until listed, read pools get preferred terms only.
            await workloads.start()
            stack.push_async_callback(workloads.stop)
            stranded = StrandedPods(
                _state(workloads),
                grace=timedelta(seconds=settings.unschedulable_grace),
                # The pods' conditions follow real time even when carbon data is pinned.
                clock=utcnow,
                gauge=metrics.restricted_unschedulable,
                counter=metrics.restricted_stranded,
            )
            checking = asyncio.create_task(stranded.run(), name="restricted-pods")
            stack.push_async_callback(cancel_and_wait, checking)

        app = create_app(
            settings,
            snapshot_source=lambda: refresher.snapshot,
            inventory=inventory,
            clock=clock,
            metrics=metrics,
            horizon_hours=carbon.horizon_hours,
            workloads=_state(workloads),
            draining=draining.is_set,
        )
        await stack.enter_async_context(
            _site(app, settings.bind_address, settings.port, settings, ssl_context=context)
        )
        serving.set()
        freeze_startup_objects()
        logger.info(
            "serving /mutate on https://%s:%d, health on http://%s:%d",
            settings.bind_address,
            settings.port,
            settings.bind_address,
            settings.health_port,
        )
        await stopping.wait()
        await _drain(stopping, draining, settings.shutdown_delay)
        logger.info("shutting down")


async def _drain(stopping: asyncio.Event, draining: asyncio.Event, delay: float) -> None:
    """Serve on for ``delay`` seconds after the signal, not ready, while the endpoints (and
    kube-proxy, where it routes the Service) drop this replica; a second signal ends it early."""
    if delay <= 0:
        return
    draining.set()
    stopping.clear()
    logger.info("draining for %.0fs: not ready, closing connections after each review", delay)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), delay)


def _inventory(
    settings: WebhookSettings,
    carbon: CarbonSettings,
    api: ApiClient | None,
    runtime: CarbonRuntime,
) -> RunningInventory:
    match settings.inventory:
        case InventorySource.DEMO:
            return demo_inventory(carbon.region_label)
        case InventorySource.FILE:
            assert settings.inventory_file is not None  # checked by WebhookSettings.from_env
            return StaticInventory.from_file(
                settings.inventory_file, extra_region_key=carbon.region_label
            )
        case _:
            assert api is not None
            return runtime.kube_inventory(api)


def _workloads(settings: WebhookSettings, api: ApiClient | None) -> KubeWorkloads | None:
    """StatefulSets, namespaces and pods, watched only on a real cluster."""
    if settings.inventory is not InventorySource.KUBERNETES:
        return None
    assert api is not None
    return KubeWorkloads(
        api, pod_selectors=() if settings.watch_all_pods else settings.pod_selector
    )


def _state(workloads: KubeWorkloads | None) -> Callable[[], Workloads]:
    if workloads is None:
        return lambda: EMPTY
    return lambda: workloads.state


async def _first_certificate(rotation: SelfManagedCertificates) -> None:
    """The HTTPS site cannot start without a pair: retry briefly, then give up loudly."""
    # 2, 4, 8, 16 s: unjittered, since a replica waits on the API server here, not on the others.
    backoff = Backoff(2.0, 30.0, jitter=0.0)
    for attempt in range(1, _CERT_ATTEMPTS + 1):
        try:
            await rotation.ensure()
            return
        except (WebhookError, KubeApiError, OSError) as e:
            if attempt == _CERT_ATTEMPTS:
                if isinstance(e, KubeApiError):
                    # Startup reports webhook errors as "cannot start" rather than a traceback.
                    raise CertificateError(str(e)) from e
                raise
            delay = backoff.delay(attempt)
            logger.warning("serving certificate not ready (%s); retrying in %.0fs", e, delay)
            await asyncio.sleep(delay)


@contextlib.asynccontextmanager
async def _site(
    app: web.Application,
    host: str,
    port: int,
    settings: WebhookSettings,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[None]:
    # Even what aiohttp's HTTP parser rejects is answered with the JSON error document.
    runner = JsonErrorRunner(
        app,
        service="webhook",
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=None,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        yield
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    main()

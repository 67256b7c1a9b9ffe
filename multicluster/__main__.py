"""``python -m multicluster``: weigh opted-in Karmada policies by carbon until SIGTERM.

Startup order: settings (logged once), the health site, the watches on the Karmada API server
(clusters, policies, bindings) and, once the clusters are listed, the carbon refresh for their
regions; then the Lease and the weight cycle. Shutdown stops the cycle first and gives the Lease
up, so the standby takes over at once. Policies keep the weights last written: stopping the
controller moves no replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from multicluster.app import create_app
from multicluster.karmada import KarmadaWatches, KarmadaWriter
from multicluster.lease import LeaderLease
from multicluster.loop import WeightLoop
from multicluster.metrics import KarmadaMetrics
from multicluster.settings import KarmadaMode, KarmadaSettings
from shared.cluster.kube import load_api_client
from shared.core.tasks import cancel_and_wait
from shared.entrypoint import health_site, run, settings_or_exit, start_logging, stop_on_signals
from shared.factory import CarbonRuntime, build_runtime

logger = logging.getLogger("multicluster")

_SYNC_WAIT = 30.0


def main() -> None:
    settings = settings_or_exit("stellar-carbon-multicluster", KarmadaSettings.from_env)
    start_logging(settings.log_level, logger, karmada=settings.describe())
    run(serve(settings), logger)


async def serve(
    settings: KarmadaSettings,
    *,
    stopping: asyncio.Event | None = None,
    runtime: CarbonRuntime | None = None,
    identity: str | None = None,
) -> None:
    """Run until ``stopping`` is set (by SIGTERM/SIGINT when not given); ``runtime`` replaces
    the configured carbon runtime and ``identity`` the host name in the Lease (tests)."""
    if stopping is None:
        stopping = stop_on_signals()

    async with contextlib.AsyncExitStack() as stack:
        # Outside a pod the kubeconfig names the Karmada API server; inside one, the chart mounts
        # it from a Secret: the in-cluster service account belongs to the host cluster instead.
        api = await load_api_client(settings.kubeconfig)
        stack.push_async_callback(api.close)
        runtime = runtime or build_runtime(settings.carbon)
        stack.push_async_callback(runtime.close)
        refresher = runtime.refresher
        metrics = KarmadaMetrics(settings.mode)
        weights: WeightLoop | None = None

        def changed() -> None:
            if weights is not None:
                weights.wake.set()

        watches = KarmadaWatches(api, label_selector=settings.label_selector, on_change=changed)
        stack.push_async_callback(watches.stop)
        lease = LeaderLease(
            api,
            name=settings.lease_name,
            namespace=settings.lease_namespace,
            duration=settings.lease_duration,
            clock=runtime.clock,
            identity=identity,
        )
        app = create_app(
            watches=watches,
            lease=lease,
            snapshot_source=lambda: refresher.snapshot,
            metrics=metrics,
        )
        await stack.enter_async_context(
            health_site(app, settings.bind_address, settings.health_port)
        )
        await watches.start()
        if not await watches.wait_synced(_SYNC_WAIT):
            logger.warning("Karmada API not listed after %.0fs; going on", _SYNC_WAIT)
        weights = WeightLoop(
            watches=watches,
            writer=KarmadaWriter(
                api,
                clock=runtime.clock,
                event_namespace=settings.lease_namespace,
                instance=identity,
            ),
            lease=lease,
            resolve=runtime.catalog.resolve,
            track=refresher.track,
            snapshot_source=lambda: refresher.snapshot,
            clock=runtime.clock,
            rules=settings.rules,
            metrics=metrics,
            apply=settings.mode is KarmadaMode.APPLY,
            horizon_hours=settings.carbon.horizon_hours,
            interval=settings.interval,
        )
        await weights.cycle()  # tracks the clusters' regions before the first refresh
        await runtime.start()
        tasks = [
            asyncio.create_task(lease.run(), name="karmada-lease"),
            asyncio.create_task(weights.run(), name="karmada-weights"),
        ]
        logger.info(
            "karmada controller in %s mode; health on http://%s:%d",
            settings.mode,
            settings.bind_address,
            settings.health_port,
        )
        try:
            await stopping.wait()
        finally:
            logger.info("shutting down")
            await cancel_and_wait(*tasks)
            await lease.release()


if __name__ == "__main__":
    main()

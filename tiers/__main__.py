"""``python -m tiers``: label nodes with their region's carbon tier until SIGTERM.

Startup order: settings (logged once), the health site (liveness answers while the rest starts;
readiness waits for the inventory and carbon data), the node inventory and the first carbon
refresh, then the tier loop. Shutdown stops the loop first, then the inventory and the refresh.
Nodes keep their labels when the component stops: pods go on preferring the tiers they saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from shared.cluster.kube import load_api_client
from shared.core.tasks import cancel_and_wait
from shared.entrypoint import health_site, run, settings_or_exit, start_logging, stop_on_signals
from shared.factory import CarbonRuntime, build_runtime
from tiers.app import create_app
from tiers.labeller import NodeLabeller
from tiers.loop import TierLoop
from tiers.metrics import TierMetrics
from tiers.settings import TierMode, TiersSettings

logger = logging.getLogger("tiers")


def main() -> None:
    settings = settings_or_exit("stellar-carbon-tiers", TiersSettings.from_env)
    start_logging(settings.log_level, logger, tiers=settings.describe())
    run(serve(settings), logger)


async def serve(
    settings: TiersSettings,
    *,
    stopping: asyncio.Event | None = None,
    runtime: CarbonRuntime | None = None,
) -> None:
    """Run until ``stopping`` is set (by SIGTERM/SIGINT when not given); ``runtime`` replaces
    the configured carbon runtime (tests)."""
    if stopping is None:
        stopping = stop_on_signals()

    async with contextlib.AsyncExitStack() as stack:
        api = await load_api_client(settings.kubeconfig)
        stack.push_async_callback(api.close)
        runtime = runtime or build_runtime(settings.carbon)
        stack.push_async_callback(runtime.close)
        inventory = runtime.kube_inventory(api)
        stack.push_async_callback(inventory.stop)
        refresher = runtime.refresher
        metrics = TierMetrics(settings.mode)

        app = create_app(
            inventory=inventory, snapshot_source=lambda: refresher.snapshot, metrics=metrics
        )
        await stack.enter_async_context(
            health_site(app, settings.bind_address, settings.health_port)
        )
        await runtime.follow(inventory)

        tiers = TierLoop(
            inventory=inventory,
            snapshot_source=lambda: refresher.snapshot,
            clock=runtime.clock,
            policy=settings.policy,
            metrics=metrics,
            labeller=(
                NodeLabeller(api, clock=runtime.clock) if settings.mode is TierMode.LABEL else None
            ),
            horizon_hours=settings.carbon.horizon_hours,
            interval=settings.interval,
        )
        task = asyncio.create_task(tiers.run(), name="tiers")
        logger.info(
            "tiers in %s mode; health on http://%s:%d",
            settings.mode,
            settings.bind_address,
            settings.health_port,
        )
        try:
            await stopping.wait()
        finally:
            logger.info("shutting down")
            await cancel_and_wait(task)


if __name__ == "__main__":
    main()

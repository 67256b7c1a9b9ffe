"""The controller's health site: not ready until the Karmada objects are listed, then ready on the
leader and the standby alike."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from kubernetes_asyncio.client import ApiClient

from multicluster.app import create_app
from multicluster.karmada import KarmadaWatches
from multicluster.lease import LeaderLease
from multicluster.metrics import KarmadaMetrics
from multicluster.settings import KarmadaMode
from tests.fakes.karmada_api import FakeKarmadaApi
from tests.fakes.kube_api import FAST, WAIT
from tests.unit.multicluster.builders import GRID, NOW, snapshot
from tests.unit.tiers.builders import Clock


async def test_readiness_waits_for_the_karmada_objects_and_says_who_leads(
    fake: FakeKarmadaApi, client: ApiClient
) -> None:
    watches = KarmadaWatches(client, settings=FAST)
    lease = LeaderLease(client, name="l", namespace="karmada-system", duration=15, clock=Clock(NOW))
    app = create_app(
        watches=watches,
        lease=lease,
        snapshot_source=lambda: snapshot(GRID),
        metrics=KarmadaMetrics(KarmadaMode.DRY_RUN),
    )
    async with TestClient(TestServer(app)) as http:
        before = await http.get("/readyz")
        assert before.status == 503
        assert "Karmada API not listed yet" in (await before.json())["reasons"][0]

        await watches.start()
        try:
            assert await watches.wait_synced(WAIT)
            after = await http.get("/readyz")
            assert after.status == 200
            assert (await after.json())["leader"] is False
            assert (await http.get("/healthz")).status == 200
            metrics = await (await http.get("/metrics")).text()
            assert 'stellar_carbon_karmada_mode{mode="dry-run"} 1.0' in metrics
        finally:
            await watches.stop()

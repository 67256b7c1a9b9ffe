"""A burst of concurrent requests is answered from memory: no provider call, one view build."""

from __future__ import annotations

import asyncio

from reporter.routes import REPORTER
from shared.carbon.cache import CarbonCache
from shared.carbon.chain import ProviderChain
from shared.carbon.refresh import CarbonRefresher
from shared.regions.catalog import RegionCatalog
from shared.settings import CarbonSettings
from tests.fakes.carbon_provider import FakeProvider, ManualClock
from tests.unit.reporter.cluster import NOW, FixedSnapshot, node
from tests.unit.reporter.conftest import ClientFactory, demo_cluster, demo_snapshot

API = "/api/v1/sustainability"
PATHS = (
    f"{API}/metrics",
    f"{API}/regions",
    f"{API}/regions/us-west-2",
    f"{API}/forecast/europe-west1?hours=12&window=90",
    f"{API}/nodes?limit=2",
    f"{API}/health",
    "/metrics",
)


async def test_a_1000_request_burst_never_reaches_the_provider(
    reporter_client: ClientFactory,
) -> None:
    clock = ManualClock(NOW)
    provider = FakeProvider("fake", {"US-NW-BPAT": 120.0, "IE": 300.0, "BE": 180.0}, clock=clock)
    settings = CarbonSettings(providers=("fake",))
    catalog = RegionCatalog.load()
    chain = ProviderChain(
        [provider], CarbonCache.memory(clock=clock), settings=settings, clock=clock
    )
    refresher = CarbonRefresher(chain, catalog.resolve, settings=settings, clock=clock)
    cluster = demo_cluster()
    refresher.track({n.region for n in cluster.nodes.values() if n.region})
    await refresher.refresh_once()
    calls_after_refresh = provider.calls
    assert calls_after_refresh > 0
    assert refresher.snapshot.get("us-west-2") is not None

    client = await reporter_client(
        snapshot_source=refresher, cluster=cluster, catalog=catalog, clock=clock
    )
    responses = await asyncio.gather(*(client.get(PATHS[i % len(PATHS)]) for i in range(1000)))
    statuses = [r.status for r in responses]
    for response in responses:
        await response.read()
    assert statuses.count(200) == 1000
    assert provider.calls == calls_after_refresh
    # Every request read the same precomputed view.
    assert client.app[REPORTER].views.builds == 1
    await chain.close()


async def test_a_new_snapshot_or_inventory_change_rebuilds_the_view_once(
    reporter_client: ClientFactory,
) -> None:
    source = FixedSnapshot(demo_snapshot())
    cluster = demo_cluster()
    client = await reporter_client(snapshot_source=source, cluster=cluster)
    views = client.app[REPORTER].views
    for _ in range(3):
        assert (await client.get(f"{API}/metrics")).status == 200
    assert views.builds == 1
    source.snapshot = demo_snapshot()
    for _ in range(3):
        assert (await client.get(f"{API}/nodes")).status == 200
    assert views.builds == 2
    cluster.replace([*cluster.nodes.values(), node("extra", "us-west-2")], cluster.pods.values())
    response = await client.get(f"{API}/metrics")
    assert (await response.json())["nodes"] == 5
    assert views.builds == 3

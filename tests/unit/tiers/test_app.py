"""The tier component's health site: readiness waits for nodes and carbon data; metrics export
the tiers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo, PodInfo
from shared.scoring.tiers import TierPolicy
from tests.unit.tiers.builders import Clock, inventory_node, snapshot
from tiers.app import create_app
from tiers.loop import TierLoop
from tiers.metrics import TierMetrics
from tiers.settings import TierMode


class Nodes:
    """An in-memory inventory whose sync the test decides."""

    def __init__(self, nodes: Mapping[str, NodeInfo]) -> None:
        self.nodes = nodes
        self.pods: Mapping[tuple[str, str], PodInfo] = {}
        self.synced = False


async def test_ready_only_once_the_nodes_are_listed_and_carbon_data_is_in(
    aiohttp_client: Any,
) -> None:
    nodes = Nodes({})
    carbon = {"now": snapshot({})}

    def source() -> CarbonSnapshot:
        return carbon["now"]

    client = await aiohttp_client(
        create_app(inventory=nodes, snapshot_source=source, metrics=TierMetrics(TierMode.LABEL))
    )

    waiting = await client.get("/readyz")
    assert waiting.status == 503
    assert (await waiting.json())["reasons"] == [
        "node inventory not synced yet",
        "no carbon data yet",
    ]
    nodes.synced = True
    carbon["now"] = snapshot({"eu-north-1": 40.0})
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await client.get("/healthz")).status == 200


async def test_metrics_show_each_regions_tier_the_changes_and_the_mode(
    aiohttp_client: Any,
) -> None:
    nodes = Nodes({"a": inventory_node("a", "eu-north-1"), "b": inventory_node("b", "ap-south-1")})
    nodes.synced = True
    grid = snapshot({"eu-north-1": 40.0, "ap-south-1": 650.0})
    metrics = TierMetrics(TierMode.DRY_RUN)
    loop = TierLoop(
        inventory=nodes,
        snapshot_source=lambda: grid,
        clock=Clock(),
        policy=TierPolicy(),
        metrics=metrics,
        labeller=None,
        horizon_hours=24,
        interval=60,
    )
    await loop.cycle()
    client = await aiohttp_client(
        create_app(inventory=nodes, snapshot_source=lambda: grid, metrics=metrics)
    )

    response = await client.get("/metrics")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'stellar_carbon_tiers_region_tier{region="eu-north-1"} 0.0' in text
    assert 'stellar_carbon_tiers_region_tier{region="ap-south-1"} 9.0' in text
    assert 'stellar_carbon_tiers_changes_total{direction="new",region="eu-north-1"} 1.0' in text
    assert 'stellar_carbon_tiers_mode{mode="dry-run"} 1.0' in text
    assert 'stellar_carbon_tiers_mode{mode="label"} 0.0' in text
    assert 'stellar_carbon_tiers_label_writes_total{result="dry-run"} 2.0' in text
    assert "stellar_carbon_tiers_last_change_timestamp_seconds" in text
    assert "# TYPE stellar_carbon_tiers_held_moves_total counter" in text

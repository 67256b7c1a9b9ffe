"""The tier loop against a fake Kubernetes API: labels follow the plan, one label per node, under
the component's own field manager; dry-run touches nothing; restarts, outages and refused writes
leave the labels where they were."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import timedelta

import pytest
from kubernetes_asyncio.client import ApiClient

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.kube import KubeInventory
from shared.scoring.tiers import TIER_LABEL, TierPolicy
from tests.fakes.kube_api import WAIT, FakeKubeApi, node
from tests.unit.tiers.builders import Clock, snapshot
from tiers.labeller import EVENT_REASON, FIELD_MANAGER, NodeLabeller
from tiers.loop import TierLoop
from tiers.metrics import TierMetrics
from tiers.settings import TierMode

GRID = {"eu-north-1": 40.0, "us-west-2": 120.0, "ap-south-1": 650.0}
"""eu-north-1 tier 0, us-west-2 tier 5 (120 g is 2.7 × 44 g), ap-south-1 the last tier."""
EXPECTED = {"eu-north-1": "0", "us-west-2": "5", "ap-south-1": "9"}


class Carbon:
    """The snapshot the loop reads, replaced by the test."""

    def __init__(self, values: Mapping[str, float]) -> None:
        self.current: CarbonSnapshot = snapshot(values)

    def __call__(self) -> CarbonSnapshot:
        return self.current


async def cluster(
    fake: FakeKubeApi, inventory: KubeInventory, labels: Mapping[str, str] | None = None
) -> None:
    """Two nodes per region (``<region>-a``, ``<region>-b``), ``labels`` as node → tier."""
    for region in GRID:
        for suffix in ("a", "b"):
            name = f"{region}-{suffix}"
            tier = (labels or {}).get(name)
            await fake.put("nodes", node(name, region, labels={TIER_LABEL: tier} if tier else None))
    await inventory.start()
    assert await inventory.wait_synced(WAIT)


def node_labels(fake: FakeKubeApi) -> dict[str, str | None]:
    return {
        name: obj["metadata"]["labels"].get(TIER_LABEL)
        for (_, name), obj in fake.objects["nodes"].items()
    }


def caught_up(inventory: KubeInventory, fake: FakeKubeApi) -> bool:
    in_inventory = {name: info.labels.get(TIER_LABEL) for name, info in inventory.nodes.items()}
    return in_inventory == node_labels(fake)


async def seen(inventory: KubeInventory, fake: FakeKubeApi) -> None:
    """Wait until the inventory's watch has caught up with every label in the fake."""
    async with asyncio.timeout(WAIT):
        while not caught_up(inventory, fake):  # noqa: ASYNC110 - a watch has no event to await
            await asyncio.sleep(0.01)


@pytest.fixture
def make_loop(
    client: ApiClient, inventory: KubeInventory
) -> Callable[..., tuple[TierLoop, TierMetrics]]:
    def make(
        carbon: Carbon,
        clock: Clock,
        *,
        mode: TierMode = TierMode.LABEL,
        policy: TierPolicy | None = None,
    ) -> tuple[TierLoop, TierMetrics]:
        metrics = TierMetrics(mode)
        loop = TierLoop(
            inventory=inventory,
            snapshot_source=carbon,
            clock=clock,
            policy=policy or TierPolicy(),
            metrics=metrics,
            labeller=NodeLabeller(client, clock=clock, instance="test")
            if mode is TierMode.LABEL
            else None,
            horizon_hours=24,
            interval=0.01,
        )
        return loop, metrics

    return make


async def test_every_node_gets_its_regions_tier_as_one_label_under_the_components_field_manager(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    await cluster(fake, inventory)
    loop, _ = make_loop(Carbon(GRID), Clock())

    report = await loop.cycle()

    assert node_labels(fake) == {f"{r}-{s}": tier for r, tier in EXPECTED.items() for s in "ab"}
    assert len(report.written) == len(fake.patches) == 6
    for patch in fake.patches:
        assert patch.content_type == "application/strategic-merge-patch+json"
        assert patch.field_manager == FIELD_MANAGER
        assert patch.body == {"metadata": {"labels": {TIER_LABEL: EXPECTED[patch.name[:-2]]}}}
    event = next(e for e in fake.events if e["involvedObject"]["name"] == "eu-north-1-a")
    assert len(fake.events) == 6
    assert event["metadata"]["namespace"] == "default"
    assert event["involvedObject"]["kind"] == "Node"
    assert event["reason"] == EVENT_REASON
    assert event["message"] == f"region eu-north-1: {TIER_LABEL} none -> 0 (expected 40 gCO2eq/kWh)"


async def test_a_later_cycle_writes_only_the_nodes_whose_label_differs(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    await cluster(fake, inventory)
    clock = Clock()
    loop, _ = make_loop(Carbon(GRID), clock)
    await loop.cycle()
    await seen(inventory, fake)
    fake.patches.clear()

    clock.advance(timedelta(minutes=1))
    assert (await loop.cycle()).writes == ()
    await fake.put("nodes", node("eu-north-1-c", "eu-north-1"))
    await fake.put("nodes", node("no-region", None))
    async with asyncio.timeout(WAIT):
        while "no-region" not in inventory.nodes:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await loop.cycle()

    assert [(p.name, p.body["metadata"]["labels"][TIER_LABEL]) for p in fake.patches] == [
        ("eu-north-1-c", "0")
    ]
    assert node_labels(fake)["no-region"] is None


async def test_dry_run_writes_nothing_but_reports_and_exports_the_tiers(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    await cluster(fake, inventory)
    loop, metrics = make_loop(Carbon(GRID), Clock(), mode=TierMode.DRY_RUN)

    report = await loop.cycle()

    assert fake.patches == []
    assert fake.events == []
    assert {w.node: w.value for w in report.writes} == {
        f"{r}-{s}": tier for r, tier in EXPECTED.items() for s in "ab"
    }
    assert {region: held.tier for region, held in loop.tiers.items()} == {
        region: int(tier) for region, tier in EXPECTED.items()
    }
    sample = metrics.registry.get_sample_value
    assert sample("stellar_carbon_tiers_region_tier", {"region": "us-west-2"}) == 5
    assert sample("stellar_carbon_tiers_label_writes_total", {"result": "dry-run"}) == 6
    assert sample("stellar_carbon_tiers_mode", {"mode": "dry-run"}) == 1
    # A second cycle has no news: nothing is reported twice.
    await loop.cycle()
    assert sample("stellar_carbon_tiers_label_writes_total", {"result": "dry-run"}) == 6


async def test_a_restart_keeps_the_tiers_the_labels_hold_until_the_dwell_has_passed(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    # The last process left ap-south-1 in tier 9; its grid is now the cleanest.
    labels = {f"{r}-{s}": tier for r, tier in EXPECTED.items() for s in "ab"}
    await cluster(fake, inventory, labels)
    clock = Clock()
    loop, metrics = make_loop(Carbon({**GRID, "ap-south-1": 30.0}), clock)

    report = await loop.cycle()

    assert fake.patches == []
    assert node_labels(fake) == labels
    assert report.plan is not None
    assert "ap-south-1" in report.plan.held
    sample = metrics.registry.get_sample_value
    assert sample("stellar_carbon_tiers_held_moves_total", {"reason": "dwell"}) >= 1

    clock.advance(timedelta(hours=2))
    await loop.cycle()
    assert node_labels(fake)["ap-south-1-a"] == "0"
    assert (
        sample(
            "stellar_carbon_tiers_changes_total", {"region": "ap-south-1", "direction": "greener"}
        )
        == 1
    )
    assert (
        sample("stellar_carbon_tiers_last_change_timestamp_seconds", {"region": "ap-south-1"})
        == clock().timestamp()
    )


@pytest.mark.parametrize(
    "outage",
    [snapshot({}), snapshot({**GRID, "ap-south-1": 30.0}, stale=("ap-south-1",))],
    ids=["no data", "stale data"],
)
async def test_a_carbon_data_outage_keeps_every_label(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
    outage: CarbonSnapshot,
) -> None:
    await cluster(fake, inventory)
    clock = Clock()
    carbon = Carbon(GRID)
    loop, _ = make_loop(carbon, clock)
    await loop.cycle()
    await seen(inventory, fake)
    before = node_labels(fake)
    fake.patches.clear()

    carbon.current = outage
    clock.advance(timedelta(hours=3))
    await loop.cycle()

    assert fake.patches == []
    assert node_labels(fake) == before


async def test_a_refused_patch_on_one_node_leaves_the_others_labelled_and_is_retried(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    await cluster(fake, inventory)
    fake.fail_patch["us-west-2-a"] = [500]
    clock = Clock()
    loop, metrics = make_loop(Carbon(GRID), clock)

    report = await loop.cycle()

    assert set(report.failed) == {"us-west-2-a"}
    assert "HTTP 500" in report.failed["us-west-2-a"]
    assert len(report.written) == 5
    assert node_labels(fake)["us-west-2-a"] is None
    assert (
        metrics.registry.get_sample_value(
            "stellar_carbon_tiers_label_writes_total", {"result": "failed"}
        )
        == 1
    )
    await seen(inventory, fake)

    clock.advance(timedelta(minutes=1))
    retry = await loop.cycle()
    assert [w.node for w in retry.written] == ["us-west-2-a"]
    assert node_labels(fake)["us-west-2-a"] == "5"


async def test_the_hourly_node_budget_holds_a_move_that_would_exceed_it(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    await cluster(fake, inventory)
    clock = Clock()
    carbon = Carbon(GRID)
    loop, _ = make_loop(carbon, clock, policy=TierPolicy(max_node_changes_per_hour=3))
    await loop.cycle()  # first tiers are new labels: free
    await seen(inventory, fake)

    clock.advance(timedelta(hours=3))
    carbon.current = snapshot({"eu-north-1": 300.0, "us-west-2": 120.0, "ap-south-1": 40.0})
    report = await loop.cycle()

    # ap-south-1 (9 → 0) moves first and spends 2 of 3; eu-north-1 (0 → 6) would need 2 more.
    assert {w.region for w in report.written} == {"ap-south-1"}
    assert report.plan is not None
    assert "node changes per hour" in report.plan.held["eu-north-1"]


async def test_an_unexpected_error_ends_a_cycle_but_not_the_loop(
    fake: FakeKubeApi,
    inventory: KubeInventory,
    make_loop: Callable[..., tuple[TierLoop, TierMetrics]],
) -> None:
    await cluster(fake, inventory)
    calls = 0

    class Flaky(Carbon):
        def __call__(self) -> CarbonSnapshot:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("snapshot broke")
            return super().__call__()

    loop, _ = make_loop(Flaky(GRID), Clock())
    task = asyncio.create_task(loop.run())
    try:
        async with asyncio.timeout(WAIT):
            while len(fake.patches) < 6:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert calls >= 2

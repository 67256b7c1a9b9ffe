"""The whole carbon-tier loop on the real control plane: a read pool follows the grid.

Everything but the grid is real: ``python -m tiers`` in ``label`` mode (a short interval and
dwell through its settings) on the fake carbon API (the custom provider), the webhook, the
reporter, the real scheduler and the real descheduler with the profile of docs/tiers.md, the
operator's read pool exactly as the operator writes it (required hostname anti-affinity, zone and
hostname spreads ``DoNotSchedule``) under a PodDisruptionBudget.

The story: the pool is placed in the green region; the fake API turns that region dirty and
another one green; once the dwell has passed the tier component moves the labels, and the
descheduler moves the replicas one at a time, the budget held at every moment a watch reports, to
the new green region, each replica once. Then the carbon API fails: nothing moves. Then the tier
component is killed and the grid turns back: nothing moves, no pod is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import pytest
from kubernetes_asyncio import client as k8s

from shared.scoring.tiers import TIER_LABEL
from tests.e2e.carbon_api import CarbonApiThread, custom_api_carbon_env, fleet_carbon_api
from tests.e2e.cluster import ControlPlane, free_port
from tests.e2e.descheduler import EVICTED, deschedule_once, descheduler, write_policy
from tests.e2e.fleet import FakeNode
from tests.e2e.kube import fresh_namespace, wait_for_admission, wait_for_pods
from tests.e2e.operator import (
    MAIN_SELECTOR,
    READ_POOL_SELECTOR,
    create_main_pod,
    create_operator_read_pool,
    create_read_pool_budget,
)
from tests.e2e.pool_watch import PoolWatch
from tests.e2e.probes import http_get, metric_samples
from tests.e2e.processes import LocalService, logs_on_failure
from tests.e2e.services import LocalReporter, LocalWebhook, serve_namespace
from tests.e2e.workloads import read_replica_pod
from tests.fakes.custom_api import FakeCustomApi

pytestmark = pytest.mark.e2e

REGION: Final = "topology.kubernetes.io/region"
GREEN: Final = "us-west-2"
NEXT: Final = "europe-west1"
MAIN_REGION: Final = "eastus"
REPLICAS: Final = 2
"""The session fleet has two nodes per region: a pool of two fills one region, a pod per node."""
MIN_AVAILABLE: Final = REPLICAS - 1
DWELL_SECONDS: Final = 20
CLEAN, MIDDLING, DIRTY = 80.0, 150.0, 320.0
# With the default band (10 %) and step (1.25): tier 0 ends at 88 g, 150 g is 1.7x that (tier 3),
# 320 g is 3.6x (tier 6). The other regions sit at 300 g and up, tier 6 and beyond.
BEFORE: Final = {GREEN: "0", NEXT: "3"}
AFTER: Final = {GREEN: "6", NEXT: "0"}
HELD_FROZEN: Final = ("stellar_carbon_tiers_held_moves_total", frozenset({("reason", "frozen")}))


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    return fleet_carbon_api({GREEN: CLEAN, NEXT: MIDDLING})


def set_grid(api: CarbonApiThread, values: Mapping[str, float]) -> None:
    """New values for some regions; the fake serves them from its next request on."""
    for region, value in values.items():
        api.fake.regions[region].intensity = value


def clear_tiers(control_plane: ControlPlane, nodes: tuple[FakeNode, ...]) -> None:
    for node in nodes:
        with contextlib.suppress(Exception):
            control_plane.request(
                "PATCH", f"/api/v1/nodes/{node.name}", {"metadata": {"labels": {TIER_LABEL: None}}}
            )


@pytest.fixture(scope="module")
def untiered_fleet(
    control_plane: ControlPlane, fake_nodes: tuple[FakeNode, ...]
) -> Iterator[tuple[FakeNode, ...]]:
    """The fleet without tier labels before and after this module: the other modules see it as
    it was."""
    clear_tiers(control_plane, fake_nodes)
    try:
        yield fake_nodes
    finally:
        clear_tiers(control_plane, fake_nodes)


class TierProcess:
    """``python -m tiers`` in label mode on the fake carbon API, as cluster admin."""

    def __init__(
        self, control_plane: ControlPlane, carbon_api: CarbonApiThread, log_dir: Path
    ) -> None:
        self.port = free_port()
        self.service = LocalService(
            "tiers",
            "tiers",
            {
                **custom_api_carbon_env(carbon_api),
                "STELLAR_CARBON_TIERS_MODE": "label",
                "STELLAR_CARBON_TIERS_INTERVAL": "1",
                "STELLAR_CARBON_TIERS_DWELL": str(DWELL_SECONDS),
                "STELLAR_CARBON_TIERS_BIND_ADDRESS": "127.0.0.1",
                "STELLAR_CARBON_TIERS_HEALTH_PORT": str(self.port),
                "STELLAR_CARBON_TIERS_KUBECONFIG": str(control_plane.kubeconfig_path),
            },
            log_dir,
        )

    def held_frozen(self) -> float:
        samples = metric_samples(f"http://127.0.0.1:{self.port}/metrics")
        return samples.get(HELD_FROZEN, 0.0)

    def start(self) -> None:
        self.service.start()
        self.service.wait_until(
            "ready",
            lambda: http_get(f"http://127.0.0.1:{self.port}/readyz")[0] == 200,
            timeout=60,
        )


@pytest.fixture
def tier_process(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    untiered_fleet: tuple[FakeNode, ...],
    carbon_api: CarbonApiThread,
    tmp_path: Path,
) -> Iterator[TierProcess]:
    process = TierProcess(control_plane, carbon_api, tmp_path)
    try:
        process.start()
        with logs_on_failure(request.config, process.service):
            yield process
    finally:
        process.service.stop()


@pytest.fixture
def reporter(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    carbon_api: CarbonApiThread,
    tmp_path: Path,
) -> Iterator[LocalReporter]:
    with (
        LocalReporter(
            control_plane, carbon=custom_api_carbon_env(carbon_api), log_dir=tmp_path
        ) as reporter,
        logs_on_failure(request.config, reporter.service),
    ):
        yield reporter


@pytest.fixture
async def pool_namespace(kube_api: k8s.ApiClient, webhook: LocalWebhook) -> AsyncIterator[str]:
    """A namespace the webhook serves, with the StellarNode's main pod on a dirty region's node
    (so it takes no green node from the pool's anti-affinity)."""
    async with fresh_namespace(kube_api, prefix="grid-") as name:
        await serve_namespace(kube_api, name)
        await create_main_pod(kube_api, name, node_selector={REGION: MAIN_REGION})
        await wait_for_pods(kube_api, name, MAIN_SELECTOR, count=1)
        yield name


async def region_tiers(api: k8s.ApiClient) -> dict[str, set[str | None]]:
    """The tier labels each region's nodes carry."""
    listed = await k8s.CoreV1Api(api).list_node(label_selector="type=kwok")
    tiers: dict[str, set[str | None]] = {}
    for node in listed.items:
        labels = node.metadata.labels or {}
        tiers.setdefault(labels[REGION], set()).add(labels.get(TIER_LABEL))
    return tiers


def carries(tiers: Mapping[str, set[str | None]], wanted: Mapping[str, str]) -> bool:
    return all(tiers.get(region) == {tier} for region, tier in wanted.items())


async def wait_for_tiers(
    api: k8s.ApiClient,
    wanted: Mapping[str, str],
    *,
    timeout: float,  # noqa: ASYNC109 - the labels at the deadline go into the failure
    while_waiting: Callable[[], None] = lambda: None,
) -> float:
    """Wait until each region of ``wanted`` carries its tier on every node, calling
    ``while_waiting`` (it may raise) on every poll; ``time.monotonic()`` when seen."""
    deadline = time.monotonic() + timeout
    while not carries(tiers := await region_tiers(api), wanted):
        while_waiting()
        assert time.monotonic() < deadline, f"no tiers {dict(wanted)} after {timeout:.0f}s: {tiers}"
        await asyncio.sleep(0.2)
    return time.monotonic()


def changed_at(reporter: LocalReporter, region: str) -> datetime:
    row = reporter.api(f"regions/{region}")
    return datetime.fromisoformat(row["tierChangedAt"])


async def test_a_read_pool_follows_the_grid_and_nothing_moves_in_an_outage_or_without_tiers(
    kube_api: k8s.ApiClient,
    control_plane: ControlPlane,
    untiered_fleet: tuple[FakeNode, ...],
    carbon_api: CarbonApiThread,
    tier_process: TierProcess,
    reporter: LocalReporter,
    pool_namespace: str,
    tmp_path: Path,
) -> None:
    nodes = untiered_fleet
    node_regions = {node.name: node.region for node in nodes}
    started = time.monotonic()

    # --- the tier component labels every node; the pool is placed green ----------------------
    await wait_for_tiers(kube_api, BEFORE, timeout=30)
    assert None not in set().union(*(await region_tiers(kube_api)).values())
    await wait_for_admission(
        kube_api,
        pool_namespace,
        read_replica_pod("probe"),
        lambda pod: TIER_LABEL in str(pod.spec.affinity),
    )
    reporter.service.wait_until(
        "the reporter shows the tiers",
        lambda: reporter.api(f"regions/{GREEN}")["tier"] == 0,
        timeout=30,
    )
    first_labelled = changed_at(reporter, NEXT)
    await create_operator_read_pool(kube_api, pool_namespace, REPLICAS, hpa=False)
    placed = await wait_for_pods(kube_api, pool_namespace, READ_POOL_SELECTOR, count=REPLICAS)
    assert {node_regions[pod.spec.node_name] for pod in placed} == {GREEN}
    await create_read_pool_budget(kube_api, pool_namespace, MIN_AVAILABLE)

    # --- the grid flips; after the dwell the tiers move, then the replicas -----------------
    policy = write_policy(tmp_path / "policy.yaml", pool_namespace)
    log = tmp_path / "descheduler.log"
    async with PoolWatch(kube_api, pool_namespace, READ_POOL_SELECTOR, node_regions) as pool:
        assert pool.ready_count() == REPLICAS
        async with descheduler(control_plane, policy, log) as process:
            set_grid(carbon_api, {GREEN: DIRTY, NEXT: CLEAN})
            flipped = time.monotonic()

            def running() -> None:
                pool.check()
                assert process.poll() is None, log.read_text()[-3000:]

            relabelled = await wait_for_tiers(
                kube_api, AFTER, timeout=DWELL_SECONDS + 40, while_waiting=running
            )
            # While the dwell held the tiers, the descheduler's cycles had nothing to evict.
            assert all(at >= relabelled - 1 for at in pool.deleted_at.values()), (
                "a replica was evicted before its tier changed"
            )
            settle = await pool.wait_until(
                "every replica ready in the new green region",
                lambda: pool.ready_count() == REPLICAS and set(pool.regions().values()) == {NEXT},
                timeout=120,
                also=running,
            )
        moving_output = log.read_text()
        pool.check()
        # One at a time, the budget held at every moment the watch reported, each replica once.
        assert pool.lowest_ready is not None
        assert pool.lowest_ready >= MIN_AVAILABLE, f"ready replicas fell to {pool.lowest_ready}"
        assert pool.moves() == dict.fromkeys(pool.moves(), 1)
        assert len(pool.moves()) == REPLICAS
        assert moving_output.count(EVICTED) == REPLICAS, moving_output[-3000:]
        settled_uids = {name: p.metadata.uid for name, p in pool.pods.items()}

        # Settled: another cycle evicts nothing.
        after = await deschedule_once(control_plane, policy)
        assert EVICTED not in after, after[-3000:]
        assert "RemovePodsViolatingNodeAffinity" in after, after[-3000:]

        # The reporter shows the new tiers, dated after the dwell.
        assert reporter.api(f"regions/{NEXT}")["tier"] == 0
        assert reporter.api(f"regions/{GREEN}")["tier"] == int(AFTER[GREEN])
        moved_at = changed_at(reporter, NEXT)
        assert moved_at - first_labelled >= timedelta(seconds=DWELL_SECONDS - 1)

        # --- the carbon API fails: the tiers freeze, nothing moves ------------------------------
        frozen_before = tier_process.held_frozen()
        carbon_api.outage = True
        try:
            # Past the stale age the static averages stand in; they rank the regions otherwise,
            # so the component wants other tiers and holds them: frozen.
            await pool.wait_until(
                "the tier component holding its tiers against static data",
                lambda: tier_process.held_frozen() > frozen_before,
                timeout=40,
            )
            in_outage = await deschedule_once(control_plane, policy)
            assert EVICTED not in in_outage, in_outage[-3000:]
            assert carries(await region_tiers(kube_api), AFTER)
        finally:
            carbon_api.outage = False
        assert carbon_api.refused > 0

        # --- the tier component is killed and the grid turns back: nothing moves ------------
        tier_process.service.kill()
        set_grid(carbon_api, {GREEN: CLEAN, NEXT: DIRTY})
        reporter.service.wait_until(
            "the reporter sees the grid turn back",
            lambda: reporter.api(f"regions/{GREEN}")["rank"] == 1,
            timeout=30,
        )
        without_tiers = await deschedule_once(control_plane, policy)
        assert EVICTED not in without_tiers, without_tiers[-3000:]
        assert carries(await region_tiers(kube_api), AFTER)
        assert reporter.api(f"regions/{NEXT}")["tierChangedAt"] == moved_at.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        pool.check()
        assert {name: p.metadata.uid for name, p in pool.pods.items()} == settled_uids
        assert pool.ready_count() == REPLICAS
        assert pool.lowest_ready >= MIN_AVAILABLE

    print(  # the numbers the scenario observed, for whoever runs it with -s
        f"\ngrid-follow: evictions={moving_output.count(EVICTED)}"
        f" lowest_ready={pool.lowest_ready} pod_events={pool.events}"
        f" flip_to_relabel={relabelled - flipped:.1f}s settle={settle:.1f}s"
        f" total={time.monotonic() - started:.1f}s"
    )

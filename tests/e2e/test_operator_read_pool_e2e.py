"""The upstream operator's read pools on the real control plane.

The StatefulSet, its HPA and the StellarNode's main pod are the operator's own
(``tests/e2e/operator.py``): a required hostname anti-affinity and two DoNotSchedule spread
constraints whose selector counts the main pod. The real kube-scheduler must still land every pool
in the greenest regions that can hold it, follow the HPA, never leave a replica Pending when green
nodes are cordoned, and leave opted-out StatefulSets and namespaces alone.

This module runs a control plane of its own with a fleet shaped like regional node pools (three
zones of three nodes in each of five regions), since a pool of 20, one pod per node, needs more
room than the session's fleet has.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Final

import pytest
from kubernetes_asyncio import client as k8s

from shared.core.models import Cloud
from tests.e2e.cluster import Binaries, ControlPlane
from tests.e2e.fleet import FakeNode, create_fake_nodes, zoned_fleet
from tests.e2e.kube import as_body, fresh_namespace, wait_for_admission, wait_for_pods
from tests.e2e.operator import (
    MAIN_SELECTOR,
    READ_POOL,
    READ_POOL_SELECTOR,
    create_main_pod,
    create_operator_read_pool,
)
from tests.e2e.services import LocalWebhook, serve_namespace
from tests.e2e.workloads import read_replica_pod
from tests.fakes.custom_api import FakeCustomApi, Region

pytestmark = pytest.mark.e2e

# gCO2eq/kWh, flat over the forecast; every region has three zones of three nodes.
INTENSITIES: Final = {
    "europe-west1": 60.0,
    "us-west-2": 90.0,
    "westeurope": 150.0,
    "eu-central-1": 340.0,
    "eastus": 420.0,
}
RANKED: Final = tuple(sorted(INTENSITIES, key=INTENSITIES.__getitem__))
FLEET: Final = zoned_fleet(
    {
        Cloud.GCP: ("europe-west1",),
        Cloud.AWS: ("us-west-2", "eu-central-1"),
        Cloud.AZURE: ("westeurope", "eastus"),
    },
    zones=3,
    nodes_per_zone=3,
)
NODE_REGION: Final = {node.name: node.region for node in FLEET}
CARBON_AWARE: Final = "stellar.org/carbon-aware"
RANKING: Final = "stellar.org/carbon-ranking"


@pytest.fixture(scope="module")
def control_plane() -> Iterator[ControlPlane]:
    """A control plane for this module alone, so its fleet does not change other modules'."""
    with ControlPlane(Binaries.locate()) as control_plane:
        yield control_plane


@pytest.fixture(scope="module")
def fake_nodes(control_plane: ControlPlane) -> tuple[FakeNode, ...]:
    create_fake_nodes(control_plane, FLEET)
    return FLEET


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    return FakeCustomApi(
        now=datetime.now(UTC),
        regions={region: Region(value, None) for region, value in INTENSITIES.items()},
    )


@pytest.fixture
async def pool_namespace(kube_api: k8s.ApiClient, webhook: LocalWebhook) -> AsyncIterator[str]:
    """A namespace the webhook serves, with the StellarNode's main pod Running in it."""
    async with fresh_namespace(kube_api, prefix="pool-") as name:
        await serve_namespace(kube_api, name)
        await create_main_pod(kube_api, name)
        await wait_for_pods(kube_api, name, MAIN_SELECTOR, count=1)
        yield name


# --- what the pool should get -------------------------------------------------------------------


async def main_pod_region(api: k8s.ApiClient, namespace: str) -> str:
    (main,) = await wait_for_pods(api, namespace, MAIN_SELECTOR, count=1)
    return NODE_REGION[main.spec.node_name]


def greenest_regions_holding(
    pool: int, *, main_region: str, cordoned: Sequence[str] = ()
) -> tuple[str, ...]:
    """The fewest greenest regions with a free node for every replica: one read pod per node (the
    anti-affinity), the main pod's node taken, cordoned regions skipped. Every zone has the same
    number of nodes, so the zone spread fits whenever the nodes do."""
    chosen: list[str] = []
    room = 0
    for region in RANKED:
        if region in cordoned:
            continue
        chosen.append(region)
        room += sum(1 for node in FLEET if node.region == region)
        room -= 1 if region == main_region else 0
        if room >= pool:
            return tuple(chosen)
    raise AssertionError(f"the fleet cannot hold {pool} replicas")


async def read_pods(
    api: k8s.ApiClient,
    namespace: str,
    count: int,
    *,
    timeout: float = 120.0,  # noqa: ASYNC109 - passed on to wait_for_pods
) -> list[k8s.V1Pod]:
    """The pool's ``count`` pods once each is Running (OrderedReady creates them one by one)."""
    return await wait_for_pods(api, namespace, READ_POOL_SELECTOR, count=count, timeout=timeout)


def regions_of(pods: Sequence[k8s.V1Pod]) -> dict[str, str]:
    """Pod name → region of its node; the counts per region are printed (``pytest -rP``)."""
    placed = {pod.metadata.name: NODE_REGION[pod.spec.node_name] for pod in pods}
    counts = Counter(placed.values())
    print(  # the placement is the scenario's evidence
        ", ".join(f"{region} ({INTENSITIES[region]:.0f} g): {counts[region]}" for region in RANKED)
    )
    return placed


@contextlib.asynccontextmanager
async def cordoned(api: k8s.ApiClient, region: str) -> AsyncIterator[None]:
    """Every node of ``region`` unschedulable, as ``kubectl cordon`` leaves it, until the end."""
    core = k8s.CoreV1Api(api)
    names = [node.name for node in FLEET if node.region == region]
    for name in names:
        await core.patch_node(name, as_body({"spec": {"unschedulable": True}}))
    try:
        yield
    finally:
        for name in names:
            await core.patch_node(name, as_body({"spec": {"unschedulable": False}}))


# --- scenarios ----------------------------------------------------------------------------------


@pytest.mark.parametrize("replicas", [3, 6, 20])
async def test_an_operator_read_pool_lands_in_the_greenest_regions_that_hold_it(
    kube_api: k8s.ApiClient, pool_namespace: str, replicas: int
) -> None:
    main_region = await main_pod_region(kube_api, pool_namespace)
    await create_operator_read_pool(kube_api, pool_namespace, replicas)

    pods = await read_pods(kube_api, pool_namespace, replicas)

    expected = greenest_regions_holding(replicas, main_region=main_region)
    placed = regions_of(pods)
    assert set(placed.values()) <= set(expected), placed
    assert all(RANKING in (pod.metadata.annotations or {}) for pod in pods)


async def test_replicas_the_hpa_adds_land_green_too(
    kube_api: k8s.ApiClient, pool_namespace: str
) -> None:
    main_region = await main_pod_region(kube_api, pool_namespace)
    await create_operator_read_pool(kube_api, pool_namespace, 6)
    await read_pods(kube_api, pool_namespace, 6)

    # The HPA scales within its bounds; raising the floor to its ceiling (18) makes its controller
    # scale the StatefulSet without waiting for load.
    await k8s.AutoscalingV2Api(kube_api).patch_namespaced_horizontal_pod_autoscaler(
        f"{READ_POOL}-hpa", pool_namespace, as_body({"spec": {"minReplicas": 18}})
    )
    pods = await read_pods(kube_api, pool_namespace, 18, timeout=180.0)

    placed = regions_of(pods)
    assert set(placed.values()) <= set(greenest_regions_holding(18, main_region=main_region))


async def test_every_replica_still_binds_when_the_green_nodes_are_cordoned(
    kube_api: k8s.ApiClient, pool_namespace: str
) -> None:
    main_region = await main_pod_region(kube_api, pool_namespace)
    await create_operator_read_pool(kube_api, pool_namespace, 6, hpa=False)
    before = regions_of(await read_pods(kube_api, pool_namespace, 6))
    assert set(before.values()) == {RANKED[0]}

    async with cordoned(kube_api, RANKED[0]):
        # A replica rescheduled (as a drain would evict it) and three more asked for.
        await k8s.CoreV1Api(kube_api).delete_namespaced_pod(f"{READ_POOL}-5", pool_namespace)
        await k8s.AppsV1Api(kube_api).patch_namespaced_stateful_set_scale(
            READ_POOL, pool_namespace, as_body({"spec": {"replicas": 9}})
        )
        pods = await read_pods(kube_api, pool_namespace, 9)

    after = regions_of(pods)
    moved = {
        name: region for name, region in after.items() if name not in before or name.endswith("-5")
    }
    expected = greenest_regions_holding(4, main_region=main_region, cordoned=(RANKED[0],))
    assert set(moved.values()) <= set(expected), after


async def test_a_statefulset_that_opts_out_is_left_alone(
    kube_api: k8s.ApiClient, pool_namespace: str
) -> None:
    await create_operator_read_pool(
        kube_api, pool_namespace, 3, hpa=False, annotations={CARBON_AWARE: "disabled"}
    )

    pods = await read_pods(kube_api, pool_namespace, 3)

    for pod in pods:
        assert RANKING not in (pod.metadata.annotations or {})
        assert pod.spec.affinity.node_affinity is None


async def test_a_namespace_that_opts_out_is_left_alone(
    kube_api: k8s.ApiClient, pool_namespace: str
) -> None:
    await k8s.CoreV1Api(kube_api).patch_namespace(
        pool_namespace, as_body({"metadata": {"annotations": {CARBON_AWARE: "disabled"}}})
    )
    # The webhook learns namespace annotations from a watch: wait until admission shows it.
    await wait_for_admission(
        kube_api,
        pool_namespace,
        read_replica_pod("probe"),
        lambda pod: RANKING not in (pod.metadata.annotations or {}),
    )
    await create_operator_read_pool(kube_api, pool_namespace, 3, hpa=False)

    pods = await read_pods(kube_api, pool_namespace, 3)

    for pod in pods:
        assert RANKING not in (pod.metadata.annotations or {})
        assert pod.spec.affinity.node_affinity is None

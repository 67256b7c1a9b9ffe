"""Running read replicas follow the grid: tier terms from the webhook, evictions by the real
descheduler, placement by the real scheduler.

The session fleet's nodes are labelled with carbon tiers as the tier component would label them
(``label`` mode). The operator's read pool then gets terms on ``carbon.stellar.org/tier`` and
lands on tier 0; the tiers are moved (the green region becomes tier 3, another region tier 0) and
the real descheduler, with the profile of docs/tiers.md, moves the replicas to the new tier 0 one
at a time under a PodDisruptionBudget. The labels are removed afterwards, so the other modules
see the fleet as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any, Final

import pytest
from kubernetes_asyncio import client as k8s

from shared.scoring.tiers import TIER_LABEL
from tests.e2e.carbon_api import fleet_carbon_api
from tests.e2e.cluster import ControlPlane
from tests.e2e.descheduler import descheduler, write_policy
from tests.e2e.fleet import FakeNode
from tests.e2e.kube import as_body, fresh_namespace, wait_for_admission, wait_for_pods
from tests.e2e.operator import (
    MAIN_SELECTOR,
    READ_POOL_SELECTOR,
    create_main_pod,
    create_operator_read_pool,
    create_read_pool_budget,
)
from tests.e2e.pool_watch import ready
from tests.e2e.services import LocalWebhook, serve_namespace
from tests.e2e.workloads import read_replica_pod
from tests.fakes.custom_api import FakeCustomApi

pytestmark = pytest.mark.e2e

PREFERRED: Final = "preferred_during_scheduling_ignored_during_execution"
REQUIRED: Final = "required_during_scheduling_ignored_during_execution"
REGION: Final = "topology.kubernetes.io/region"
GREEN: Final = "us-west-2"
NEXT: Final = "europe-west1"
MAIN_REGION: Final = "eastus"
REPLICAS: Final = 2
"""The session fleet has two nodes per region: a pool of two fills tier 0, one pod per node."""
BEFORE: Final = {GREEN: 0, NEXT: 2}
AFTER: Final = {GREEN: 3, NEXT: 0}
OTHER_TIER: Final = 5


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    return fleet_carbon_api({GREEN: 80.0, NEXT: 150.0})


async def label_tiers(
    api: k8s.ApiClient, nodes: tuple[FakeNode, ...], tiers: Mapping[str, int | None]
) -> None:
    """Every node's tier by its region, as the tier component writes it (``None`` removes it)."""
    core = k8s.CoreV1Api(api)
    for node in nodes:
        tier = tiers.get(node.region, OTHER_TIER) if tiers else None
        value = str(tier) if tier is not None else None
        await core.patch_node(node.name, as_body({"metadata": {"labels": {TIER_LABEL: value}}}))


@pytest.fixture
async def tiered(
    kube_api: k8s.ApiClient, fake_nodes: tuple[FakeNode, ...], webhook: LocalWebhook
) -> AsyncIterator[None]:
    await label_tiers(kube_api, fake_nodes, BEFORE)
    try:
        yield
    finally:
        await label_tiers(kube_api, fake_nodes, {})


@pytest.fixture
async def pool_namespace(kube_api: k8s.ApiClient, webhook: LocalWebhook) -> AsyncIterator[str]:
    """A namespace the webhook serves, with the StellarNode's main pod on a dirty region's node
    (so it takes no green node from the pool's anti-affinity)."""
    async with fresh_namespace(kube_api, prefix="follow-") as name:
        await serve_namespace(kube_api, name)
        await create_main_pod(kube_api, name, node_selector={REGION: MAIN_REGION})
        await wait_for_pods(kube_api, name, MAIN_SELECTOR, count=1)
        yield name


def region_of(pod: k8s.V1Pod, nodes: tuple[FakeNode, ...]) -> str:
    return next(node.region for node in nodes if node.name == pod.spec.node_name)


def match_keys(terms: list[Any]) -> set[str]:
    return {e.key for term in terms for e in term.preference.match_expressions}


async def test_read_replicas_follow_the_tier_label_to_the_new_greenest_region(
    kube_api: k8s.ApiClient,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    tiered: None,
    pool_namespace: str,
    tmp_path: Path,
) -> None:
    core = k8s.CoreV1Api(kube_api)
    # The webhook's node watch has seen the tiers once a read replica gets terms on them.
    await wait_for_admission(
        kube_api,
        pool_namespace,
        read_replica_pod("probe"),
        lambda pod: TIER_LABEL in str(pod.spec.affinity),
    )
    await create_operator_read_pool(kube_api, pool_namespace, REPLICAS, hpa=False)
    pods = await wait_for_pods(kube_api, pool_namespace, READ_POOL_SELECTOR, count=REPLICAS)

    # Tier terms instead of region terms, a required tier prefix for the pool, on tier 0.
    for pod in pods:
        affinity = pod.spec.affinity.node_affinity
        assert match_keys(getattr(affinity, PREFERRED)) == {TIER_LABEL}
        (term,) = getattr(affinity, REQUIRED).node_selector_terms
        assert [(e.key, e.values) for e in term.match_expressions] == [(TIER_LABEL, ["0"])]
        assert pod.metadata.annotations["stellar.org/carbon-required-regions"] == GREEN
        assert region_of(pod, fake_nodes) == GREEN
    await create_read_pool_budget(kube_api, pool_namespace, REPLICAS - 1)

    await label_tiers(kube_api, fake_nodes, AFTER)
    policy = write_policy(tmp_path / "policy.yaml", pool_namespace)
    log = tmp_path / "descheduler.log"
    lowest_ready = REPLICAS
    moved: list[str] = []
    async with descheduler(control_plane, policy, log) as process:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 150
        while loop.time() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            listed = await core.list_namespaced_pod(
                pool_namespace, label_selector=READ_POOL_SELECTOR
            )
            live = [p for p in listed.items if ready(p)]
            lowest_ready = min(lowest_ready, len(live))
            for pod in live:
                if region_of(pod, fake_nodes) == NEXT and pod.metadata.uid not in moved:
                    moved.append(pod.metadata.uid)
            if len(live) == REPLICAS and all(region_of(p, fake_nodes) == NEXT for p in live):
                break
            await asyncio.sleep(0.2)
    output = log.read_text()

    pods = await wait_for_pods(kube_api, pool_namespace, READ_POOL_SELECTOR, count=REPLICAS)
    assert {region_of(p, fake_nodes) for p in pods} == {NEXT}, output[-3000:]
    assert lowest_ready >= REPLICAS - 1, "the pool dropped below the budget's minAvailable"
    assert len(moved) == REPLICAS
    assert output.count("Evicted pod") >= REPLICAS, output[-3000:]
    # Both replicas violate their preferred terms in the first cycle; the budget held one back.
    assert "disruption budget" in output, output[-3000:]
    for pod in pods:
        (term,) = getattr(pod.spec.affinity.node_affinity, REQUIRED).node_selector_terms
        assert [(e.key, e.values) for e in term.match_expressions] == [(TIER_LABEL, ["0"])]
        assert match_keys(getattr(pod.spec.affinity.node_affinity, PREFERRED)) == {TIER_LABEL}

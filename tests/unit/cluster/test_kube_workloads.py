"""KubeWorkloads against the fake Kubernetes API: StatefulSets, namespaces and bound pods."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio.client import ApiClient, Configuration

from shared.cluster.kube import KubeWorkloads
from shared.cluster.workloads import Requested, RestrictedPod
from tests.fakes.kube_api import FAST, WAIT, FakeKubeApi, namespace, pod, serving

READ_REPLICA = {"stellar.org/role": "read-replica"}
FIXTURES = Path(__file__).parents[2] / "fixtures" / "operator-read-pool"


def operator_statefulset() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / "read-statefulset.yaml").read_text())
    return loaded


@pytest.fixture
async def fake() -> AsyncIterator[FakeKubeApi]:
    async with serving() as api:
        yield api


@pytest.fixture
async def workloads(fake: FakeKubeApi) -> AsyncIterator[KubeWorkloads]:
    """Watching every pod, so any pod a test puts there counts."""
    async with ApiClient(Configuration(host=fake.base_url)) as client:
        watched = KubeWorkloads(client, pod_selectors=(), settings=FAST)
        await watched.start()
        try:
            yield watched
        finally:
            await watched.stop()


async def until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        # The snapshot is read, not pushed: poll it briefly.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_statefulsets_namespaces_and_bound_pods_are_listed(
    fake: FakeKubeApi, workloads: KubeWorkloads
) -> None:
    await fake.put("statefulsets", operator_statefulset())
    await fake.put("namespaces", namespace("stellar", **{"stellar.org/carbon-aware": "disabled"}))
    await fake.put("pods", pod("bound", node_name="node-a", app="x"))
    await fake.put("pods", pod("pending", app="x"))

    assert await workloads.wait_synced(WAIT)
    await until(lambda: len(workloads.state.pods) == 1)

    state = workloads.state
    statefulset = state.statefulsets[("stellar", "carbon-validator-read")]
    assert statefulset.replicas == 20
    assert statefulset.carbon_aware == "enabled"
    assert statefulset.selector["stellar.org/role"] == "read-replica"
    assert state.namespaces["stellar"].carbon_aware == "disabled"
    assert [p.name for p in state.bound_in("stellar")] == ["bound"]
    assert state.requested_on("node-a") == Requested(cpu_millis=500)
    assert state.synced


async def test_a_scaled_statefulset_and_a_newly_bound_pod_reach_the_snapshot(
    fake: FakeKubeApi, workloads: KubeWorkloads
) -> None:
    await fake.put("statefulsets", operator_statefulset())
    assert await workloads.wait_synced(WAIT)
    before = workloads.state
    assert workloads.state is before  # unchanged state is not rebuilt

    scaled = operator_statefulset()
    scaled["spec"]["replicas"] = 6
    await fake.put("statefulsets", scaled)
    await fake.put("pods", pod("carbon-validator-read-0", node_name="node-b"))
    key = ("stellar", "carbon-validator-read")
    await until(lambda: workloads.state.statefulsets[key].replicas == 6)
    await until(lambda: len(workloads.state.bound_in("stellar")) == 1)

    await fake.delete("pods", "carbon-validator-read-0", "stellar")
    await until(lambda: not workloads.state.bound_in("stellar"))
    assert workloads.state.requested_on("node-b") == Requested()


async def test_finished_pods_free_their_room(fake: FakeKubeApi, workloads: KubeWorkloads) -> None:
    done = pod("job", node_name="node-a")
    done["status"]["phase"] = "Succeeded"
    await fake.put("pods", done)
    await fake.put("pods", pod("web", node_name="node-a"))
    assert await workloads.wait_synced(WAIT)

    await until(lambda: len(workloads.state.pods) == 1)
    assert workloads.state.requested_on("node-a") == Requested(cpu_millis=500)


def restricted(
    name: str, *, unschedulable_since: str | None = None, node_name: str | None = None
) -> dict[str, Any]:
    manifest = pod(name, node_name=node_name, **{"stellar.org/role": "read-replica"})
    manifest["metadata"]["uid"] = f"uid-{name}"
    manifest["metadata"]["annotations"] = {
        "stellar.org/carbon-required-regions": "eu-north-1,us-west-2"
    }
    if unschedulable_since is not None:
        manifest["status"]["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "lastTransitionTime": unschedulable_since,
            }
        ]
    return manifest


async def test_unbound_restricted_pods_are_kept_apart_from_bound_ones(
    fake: FakeKubeApi, workloads: KubeWorkloads
) -> None:
    await fake.put("pods", restricted("waiting", unschedulable_since="2026-11-26T12:00:00Z"))
    await fake.put("pods", restricted("fresh"))
    await fake.put("pods", pod("unrestricted-pending"))
    assert await workloads.wait_synced(WAIT)
    await until(lambda: len(workloads.state.restricted) == 2)

    waiting = workloads.state.restricted[("stellar", "waiting")]
    assert waiting == RestrictedPod(
        namespace="stellar",
        name="waiting",
        uid="uid-waiting",
        required_regions=("eu-north-1", "us-west-2"),
        unschedulable=True,
        unschedulable_since=datetime(2026, 11, 26, 12, tzinfo=UTC),
    )
    assert not workloads.state.restricted[("stellar", "fresh")].unschedulable
    assert not workloads.state.pods

    await fake.put("pods", restricted("waiting", node_name="node-a"))
    await until(lambda: ("stellar", "waiting") in workloads.state.pods)
    assert ("stellar", "waiting") not in workloads.state.restricted
    assert [p.name for p in workloads.state.bound_in("stellar")] == ["waiting"]


async def test_stats_give_each_watch_its_size_and_last_event(
    fake: FakeKubeApi, workloads: KubeWorkloads
) -> None:
    before = time.monotonic()
    await fake.put("pods", pod("bound", node_name="node-a"))
    await fake.put("namespaces", namespace("stellar"))
    assert await workloads.wait_synced(WAIT)
    await until(lambda: len(workloads.state.pods) == 1)

    stats = {s.resource: s for s in workloads.stats()}
    assert {r: (s.objects, s.synced) for r, s in stats.items()} == {
        "statefulsets": (0, True),
        "namespaces": (1, True),
        "pods": (1, True),
    }
    assert all(s.heard_at is not None and s.heard_at >= before for s in stats.values())


async def test_by_default_only_stellar_pods_are_watched_and_use_up_room(fake: FakeKubeApi) -> None:
    operator = {
        "app.kubernetes.io/name": "stellar-node",
        "app.kubernetes.io/component": "validator",
    }
    await fake.put("pods", pod("carbon-validator-0", node_name="node-a", **operator))
    await fake.put("pods", pod("read-0", node_name="node-a", **READ_REPLICA))
    await fake.put("pods", pod("web", "shop", node_name="node-a", app="web"))
    async with ApiClient(Configuration(host=fake.base_url)) as client:
        watched = KubeWorkloads(client, settings=FAST)
        await watched.start()
        try:
            assert await watched.wait_synced(WAIT)
            await until(lambda: len(watched.state.pods) == 2)
            # The other workload's request is not seen: room is what Stellar's pods leave.
            assert watched.state.requested_on("node-a") == Requested(cpu_millis=1000)
            assert not watched.state.bound_in("shop")
            assert all(q.get("labelSelector") for p, q in fake.requests if p == "/api/v1/pods")
        finally:
            await watched.stop()


async def test_watching_every_pod_counts_other_workloads_in_the_room(
    fake: FakeKubeApi, workloads: KubeWorkloads
) -> None:
    await fake.put("pods", pod("read-0", node_name="node-a", **READ_REPLICA))
    await fake.put("pods", pod("web", "shop", node_name="node-a", app="web"))
    assert await workloads.wait_synced(WAIT)
    await until(lambda: len(workloads.state.pods) == 2)
    assert workloads.state.requested_on("node-a") == Requested(cpu_millis=1000)
    assert not any("labelSelector" in q for p, q in fake.requests if p == "/api/v1/pods")


async def test_pods_restricted_while_others_are_bound_leave_the_bound_view_as_it_was(
    fake: FakeKubeApi, workloads: KubeWorkloads
) -> None:
    await fake.put("pods", pod("bound", node_name="node-a"))
    assert await workloads.wait_synced(WAIT)
    await until(lambda: bool(workloads.state.bound_in("stellar")))
    before = workloads.state

    await fake.put("pods", restricted("fresh"))
    await until(lambda: len(workloads.state.restricted) == 1)

    after = workloads.state
    assert after is not before
    assert [p.name for p in after.bound_in("stellar")] == ["bound"]
    assert after.requested_on("node-a") == before.requested_on("node-a") == Requested(500)

    await fake.put("pods", restricted("fresh", node_name="node-b"))
    await until(lambda: len(workloads.state.bound_in("stellar")) == 2)
    assert workloads.state.requested_on("node-b") == Requested(cpu_millis=500)
    assert not workloads.state.restricted

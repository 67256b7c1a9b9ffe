"""Smoke tests: the Karmada the multi-cluster tests rely on places workloads the way Karmada does.

Its scheduler, controllers, webhook and aggregated apiserver are the real ones
(``tests/e2e/karmada.py``). A PropagationPolicy with a static weight list divides a Deployment's
replicas between the member clusters in the weights' ratio, and a new list divides them again: the
shape in which carbon weights will be written.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from typing import Any, Final

import pytest
from kubernetes_asyncio import client as k8s
from kubernetes_asyncio.client.exceptions import ApiException

from shared.regions.catalog import RegionCatalog
from tests.e2e.karmada import KARMADA_BINARIES, KARMADA_VERSION, Karmada
from tests.e2e.karmada_members import CLUSTER_NAMESPACE, MEMBERS
from tests.e2e.kube import as_body, eventually, fresh_namespace
from tests.e2e.workloads import READ_REPLICA, stellar_core_container

pytestmark = pytest.mark.e2e

APP: Final = "stellar-core-read"
REPLICAS: Final = 12
# Cluster names in MEMBERS' order: AWS us-west-2, GCP europe-west1, Azure southeastasia.
FIRST_WEIGHTS: Final = dict(zip((m.name for m in MEMBERS), (1, 2, 3), strict=True))
SECOND_WEIGHTS: Final = dict(zip((m.name for m in MEMBERS), (3, 2, 1), strict=True))
PERMANENT_ID_LABEL: Final = "propagationpolicy.karmada.io/permanent-id"
SETTLE_SECONDS: Final = 120.0


def _deployment() -> dict[str, Any]:
    """Read replicas of stellar-core, as a Deployment Karmada knows how to divide."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP, "labels": {"app": APP}},
        "spec": {
            "replicas": REPLICAS,
            "selector": {"matchLabels": {"app": APP}},
            "template": {
                "metadata": {"labels": {**READ_REPLICA, "app": APP}},
                "spec": {"containers": [stellar_core_container()]},
            },
        },
    }


def _placement(weights: Mapping[str, int]) -> dict[str, Any]:
    return {
        "clusterAffinity": {"clusterNames": sorted(weights)},
        "replicaScheduling": {
            "replicaSchedulingType": "Divided",
            "replicaDivisionPreference": "Weighted",
            "weightPreference": {
                "staticWeightList": [
                    {"targetCluster": {"clusterNames": [cluster]}, "weight": weight}
                    for cluster, weight in weights.items()
                ]
            },
        },
    }


def _propagation_policy(weights: Mapping[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {"name": APP},
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": APP}],
            "placement": _placement(weights),
        },
    }


def _division(weights: Mapping[str, int]) -> dict[str, int]:
    """What a static weight list gives each cluster when the weights divide the replicas evenly
    (Karmada hands out remainders by its own rules; these tests avoid them)."""
    total = sum(weights.values())
    assert REPLICAS % total == 0, "pick weights that divide the replicas evenly"
    return {cluster: REPLICAS * weight // total for cluster, weight in weights.items()}


async def _scheduled(api: k8s.ApiClient, namespace: str) -> dict[str, int]:
    """The replicas per cluster in the Deployment's ResourceBinding, as the scheduler wrote them."""
    try:
        binding = await k8s.CustomObjectsApi(api).get_namespaced_custom_object(
            "work.karmada.io", "v1alpha2", namespace, "resourcebindings", f"{APP}-deployment"
        )
    except ApiException as e:
        if e.status == 404:
            return {}
        raise
    return {c["name"]: c["replicas"] for c in binding["spec"].get("clusters") or []}


async def _running_in_members(
    members: Mapping[str, k8s.ApiClient], namespace: str
) -> dict[str, tuple[int, int]]:
    """Each member's own Deployment: its replicas and how many of them are ready."""
    found = {}
    for name, api in members.items():
        try:
            deployment = await k8s.AppsV1Api(api).read_namespaced_deployment(APP, namespace)
        except ApiException as e:
            if e.status == 404:
                continue
            raise
        found[name] = (deployment.spec.replicas, deployment.status.ready_replicas or 0)
    return found


async def _divided_as(
    karmada_api: k8s.ApiClient,
    members: Mapping[str, k8s.ApiClient],
    namespace: str,
    expected: Mapping[str, int],
) -> None:
    """The binding says ``expected``, and every member runs exactly its share, ready.

    Only the settled state is asserted: while weights change, rounding can briefly give a
    cluster fewer replicas than either division would (karmada-io/karmada#6735).
    """
    await eventually(
        f"ResourceBinding divided as {dict(expected)}",
        lambda: _scheduled(karmada_api, namespace),
        lambda scheduled: scheduled == expected,
        timeout=SETTLE_SECONDS,
    )
    running = await eventually(
        f"member Deployments running {dict(expected)}",
        lambda: _running_in_members(members, namespace),
        lambda found: found == {name: (n, n) for name, n in expected.items()},
        timeout=SETTLE_SECONDS,
    )
    for name, (replicas, _) in running.items():
        print(f"{name}: {replicas} replicas")


def test_karmada_binaries_report_the_pinned_version(karmada: Karmada) -> None:
    for binary in KARMADA_BINARIES:
        done = subprocess.run(
            [str(karmada.binaries.path(binary)), "version"],
            capture_output=True,
            text=True,
            check=True,
        )

        assert f'GitVersion:"{KARMADA_VERSION}"' in done.stdout, binary


async def test_members_are_ready_push_clusters_named_by_provider_and_region(
    karmada: Karmada, karmada_api: k8s.ApiClient
) -> None:
    listed = await k8s.CustomObjectsApi(karmada_api).list_cluster_custom_object(
        "cluster.karmada.io", "v1alpha1", "clusters"
    )
    clusters = {c["metadata"]["name"]: c for c in listed["items"]}

    assert set(clusters) == {m.name for m in MEMBERS}
    for member in MEMBERS:
        spec, status = clusters[member.name]["spec"], clusters[member.name]["status"]
        assert spec["syncMode"] == "Push"
        assert spec["provider"] == member.cloud.value
        assert spec["region"] == member.region
        assert spec["apiEndpoint"] == karmada.members[member.name].control_plane.server
        assert spec["secretRef"] == {"namespace": CLUSTER_NAMESPACE, "name": member.name}
        ready = [c["status"] for c in status["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], member.name


async def test_members_report_their_kwok_nodes_to_karmada(
    karmada: Karmada, karmada_api: k8s.ApiClient
) -> None:
    async def node_summaries() -> dict[str, Any]:
        listed = await k8s.CustomObjectsApi(karmada_api).list_cluster_custom_object(
            "cluster.karmada.io", "v1alpha1", "clusters"
        )
        return {c["metadata"]["name"]: c["status"].get("nodeSummary") for c in listed["items"]}

    expected = {
        name: {"totalNum": len(m.nodes), "readyNum": len(m.nodes)}
        for name, m in karmada.members.items()
    }
    await eventually("every member's nodes Ready in Karmada", node_summaries, expected.__eq__)


def test_members_sit_in_different_grid_zones() -> None:
    catalog = RegionCatalog.load()

    zones = {m.name: getattr(catalog.resolve(m.region, m.cloud), "zone", None) for m in MEMBERS}

    assert None not in zones.values(), zones
    assert len(set(zones.values())) == len(MEMBERS), zones


async def test_static_weights_divide_a_deployment_and_new_weights_divide_it_again(
    karmada_api: k8s.ApiClient, member_apis: dict[str, k8s.ApiClient]
) -> None:
    custom = k8s.CustomObjectsApi(karmada_api)
    policies = ("policy.karmada.io", "v1alpha1")
    async with fresh_namespace(karmada_api, prefix="karmada-") as namespace:
        await k8s.AppsV1Api(karmada_api).create_namespaced_deployment(
            namespace, as_body(_deployment())
        )
        policy = await custom.create_namespaced_custom_object(
            *policies, namespace, "propagationpolicies", _propagation_policy(FIRST_WEIGHTS)
        )
        # karmada-webhook's default: the label binds the policy to the objects it claims.
        assert PERMANENT_ID_LABEL in policy["metadata"]["labels"]

        await _divided_as(karmada_api, member_apis, namespace, _division(FIRST_WEIGHTS))

        policy = await custom.get_namespaced_custom_object(
            *policies, namespace, "propagationpolicies", APP
        )
        policy["spec"]["placement"]["replicaScheduling"] = _placement(SECOND_WEIGHTS)[
            "replicaScheduling"
        ]
        await custom.replace_namespaced_custom_object(
            *policies, namespace, "propagationpolicies", APP, policy
        )

        await _divided_as(karmada_api, member_apis, namespace, _division(SECOND_WEIGHTS))
        await eventually(
            "the Deployment in Karmada reporting every member's ready replicas",
            lambda: k8s.AppsV1Api(karmada_api).read_namespaced_deployment_status(APP, namespace),
            lambda d: d.status.ready_replicas == REPLICAS,
            timeout=SETTLE_SECONDS,
        )

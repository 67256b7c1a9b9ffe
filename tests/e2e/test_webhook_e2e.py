"""The admission webhook as a real process against the real control plane.

The webhook runs as ``python -m webhook`` with self-managed TLS: it creates its certificate Secret,
writes its own CA into a MutatingWebhookConfiguration registered by loopback URL, and reads nodes
through a kubeconfig. Carbon data comes from the custom HTTP provider pointed at a fake carbon API
with fixed per-region values, so the greenest region is known; static annual averages back it up.
The real kube-scheduler places the pods on kwok nodes in nine cloud regions.

The module ends with the outage and the killed webhook, in that order, since both disturb the
shared webhook (the last test restarts it).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pytest
from kubernetes_asyncio import client as k8s

from shared.regions.catalog import RegionCatalog
from tests.e2e.carbon_api import CarbonApiThread
from tests.e2e.cluster import KUBERNETES_VERSION, ControlPlane
from tests.e2e.fleet import FakeNode
from tests.e2e.kube import as_body, fresh_namespace, wait_for_admission, wait_for_pods
from tests.e2e.operator import (
    MAIN_SELECTOR,
    READ_POOL_SELECTOR,
    create_main_pod,
    create_operator_read_pool,
)
from tests.e2e.placement import REGION_LABEL, placement_rows, placement_table, preference_weights
from tests.e2e.services import MWC_PATH, LocalWebhook, ca_bundle_of, serve_namespace
from tests.e2e.workloads import READ_REPLICA, read_replica_pod, stellar_core_container
from tests.fakes.custom_api import FakeCustomApi, Region

pytestmark = pytest.mark.e2e

# gCO2eq/kWh the fake carbon API reports, flat over the forecast. europe-west1 is the greenest;
# us-west-2 is within 10 % of it (the default low-carbon band of the require policy); asia-east1
# is the dirtiest and gets no preference at all.
INTENSITIES: Final = {
    "europe-west1": 60.0,
    "us-west-2": 64.0,
    "us-west1": 250.0,
    "westeurope": 290.0,
    "eu-central-1": 340.0,
    "us-east-1": 380.0,
    "eastus": 395.0,
    "southeastasia": 470.0,
    "asia-east1": 520.0,
}
RENEWABLE_PCT: Final = {"europe-west1": 71.0, "us-west-2": 88.0, "asia-east1": 9.5}
GREENEST: Final = "europe-west1"
DIRTIEST: Final = "asia-east1"
LOW_CARBON: Final = ("europe-west1", "us-west-2")
REQUIRE_ALLOWED: Final = (*LOW_CARBON, "us-west1")
"""The low-carbon regions hold 4 of the 18 nodes, under a third: the next greenest joins."""
EXPECTED_RANKING: Final = ",".join(
    f"{region}={round(value)}"
    for region, value in sorted(INTENSITIES.items(), key=lambda kv: (kv[1], kv[0]))
)

RANKING: Final = "stellar.org/carbon-ranking"
DECIDED_AT: Final = "stellar.org/carbon-decided-at"
SOURCE: Final = "stellar.org/carbon-source"
DECISION_ANNOTATIONS: Final = (RANKING, DECIDED_AT, SOURCE)
RESTORED_WITHIN: Final = 10.0
"""Seconds a running webhook may take to put back a caBundle someone removed or replaced."""
PREFERRED: Final = "preferredDuringSchedulingIgnoredDuringExecution"
REQUIRED: Final = "requiredDuringSchedulingIgnoredDuringExecution"


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    return FakeCustomApi(
        now=datetime.now(UTC),
        regions={
            region: Region(value, RENEWABLE_PCT.get(region))
            for region, value in INTENSITIES.items()
        },
    )


def probe_pod(name: str = "probe") -> dict[str, Any]:
    """A read-replica pod for dry runs: what admission does to it shows the webhook's state."""
    return read_replica_pod(name)


def pod_annotations(pod: k8s.V1Pod) -> Mapping[str, str]:
    return pod.metadata.annotations or {}


def is_mutated(pod: k8s.V1Pod) -> bool:
    return RANKING in pod_annotations(pod)


@pytest.fixture
async def carbon_namespace(kube_api: k8s.ApiClient, webhook: LocalWebhook) -> AsyncIterator[str]:
    """A fresh namespace the webhook serves, once admission there demonstrably goes through it."""
    async with fresh_namespace(kube_api, prefix="carbon-") as name:
        await serve_namespace(kube_api, name)
        yield name


# --- workloads ----------------------------------------------------------------------------------


def deployment(
    name: str,
    replicas: int,
    *,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, str] | None = None,
    affinity: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [stellar_core_container()]}
    if affinity is not None:
        spec["affinity"] = dict(affinity)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {
                    "labels": {"app": name, **(labels or {})},
                    "annotations": dict(annotations or {}),
                },
                "spec": spec,
            },
        },
    }


async def run_deployment(
    api: k8s.ApiClient, namespace: str, manifest: Mapping[str, Any]
) -> list[k8s.V1Pod]:
    await k8s.AppsV1Api(api).create_namespaced_deployment(namespace, as_body(manifest))
    name = manifest["metadata"]["name"]
    return await wait_for_pods(
        api, namespace, f"app={name}", count=manifest["spec"]["replicas"], timeout=90
    )


# --- reading pods back --------------------------------------------------------------------------


def pod_dict(api: k8s.ApiClient, pod: k8s.V1Pod) -> dict[str, Any]:
    """The pod as the API sends it (camelCase), to compare against manifests."""
    serialized: dict[str, Any] = api.sanitize_for_serialization(pod)
    return serialized


def node_affinity(api: k8s.ApiClient, pod: k8s.V1Pod) -> dict[str, Any]:
    affinity: dict[str, Any] = pod_dict(api, pod)["spec"].get("affinity", {})
    terms: dict[str, Any] = affinity.get("nodeAffinity", {})
    return terms


def regions_of(pods: list[k8s.V1Pod], fleet: tuple[FakeNode, ...]) -> dict[str, str]:
    """Pod name → region of the node it is bound to."""
    regions = {node.name: node.region for node in fleet}
    return {pod.metadata.name: regions[pod.spec.node_name] for pod in pods}


def assert_untouched(api: k8s.ApiClient, pods: list[k8s.V1Pod]) -> None:
    for pod in pods:
        decided = [key for key in DECISION_ANNOTATIONS if key in pod_annotations(pod)]
        assert decided == [], pod.metadata.name
        assert node_affinity(api, pod) == {}, pod.metadata.name


def assert_decided_now(pod: k8s.V1Pod, since: datetime) -> None:
    decided = pod_annotations(pod)[DECIDED_AT]
    assert decided.endswith("Z"), decided
    at = datetime.fromisoformat(decided.replace("Z", "+00:00"))
    assert since - timedelta(seconds=5) <= at <= datetime.now(UTC), decided


async def create_once_decided_on(
    api: k8s.ApiClient, namespace: str, source: str, name: str, *, seconds: float
) -> k8s.V1Pod:
    """Wait until admission decides on carbon data from ``source``, then create pod ``name``
    (waiting ``seconds`` at most)."""
    await wait_for_admission(
        api,
        namespace,
        probe_pod(),
        lambda p: pod_annotations(p).get(SOURCE) == source,
        timeout=seconds,
    )
    return await k8s.CoreV1Api(api).create_namespaced_pod(namespace, as_body(probe_pod(name)))


def static_ranking() -> str:
    """The ranking annotation the static annual averages give the nine regions."""
    catalog = RegionCatalog.load()
    annual: dict[str, float] = {}
    for region in INTENSITIES:
        info = catalog.resolve(region)
        assert info is not None, region
        assert info.annual_g_per_kwh is not None, region
        annual[region] = info.annual_g_per_kwh
    ordered = sorted(annual.items(), key=lambda kv: (kv[1], kv[0]))
    return ",".join(f"{region}={round(value)}" for region, value in ordered)


# --- tests --------------------------------------------------------------------------------------


async def test_read_pool_replicas_carry_carbon_preferences_and_land_in_the_greenest_regions(
    kube_api: k8s.ApiClient,
    carbon_namespace: str,
    fake_nodes: tuple[FakeNode, ...],
    tmp_path: Path,
) -> None:
    """The operator's read pool of a StellarNode with ``podAntiAffinity: Soft``: no hard spread
    rule, so the default policy is ``prefer`` and the scheduler weighs our terms against its own
    spreading. (Hard pools: ``test_operator_read_pool_e2e.py``.)"""
    await create_main_pod(kube_api, carbon_namespace)
    await wait_for_pods(kube_api, carbon_namespace, MAIN_SELECTOR, count=1)
    started = datetime.now(UTC)
    await create_operator_read_pool(kube_api, carbon_namespace, 4, hpa=False, soft=True)
    selector = READ_POOL_SELECTOR

    pods = await wait_for_pods(kube_api, carbon_namespace, selector, count=4, timeout=90)

    placed = regions_of(pods, fake_nodes)
    weights = preference_weights(node_affinity(kube_api, pods[0])[PREFERRED], REGION_LABEL)
    table = placement_table(
        placement_rows(
            pod_nodes={p.metadata.name: p.spec.node_name for p in pods},
            node_regions={n.name: n.region for n in fake_nodes},
            region_clouds={n.region: n.cloud.value for n in fake_nodes},
            intensities=INTENSITIES,
            weights=weights,
        ),
        title=(
            f"the operator's read pool (podAntiAffinity Soft): {len(pods)} replicas placed by "
            f"kube-scheduler "
            f"{KUBERNETES_VERSION}; gCO2eq/kWh from the custom carbon API"
        ),
    )
    report = tmp_path / "read-pool-placement.txt"
    report.write_text(table + "\n")
    print(f"\n{table}\n(written to {report})")

    for pod in pods:
        affinity = node_affinity(kube_api, pod)
        pod_weights = preference_weights(affinity[PREFERRED], REGION_LABEL)
        assert pod_weights == weights, pod.metadata.name
        assert REQUIRED not in affinity, pod.metadata.name
        assert pod_annotations(pod)[RANKING] == EXPECTED_RANKING
        assert pod_annotations(pod)[SOURCE] == "http"
        assert_decided_now(pod, started)
    # Every region but the dirtiest is preferred, the greenest most, weights falling with intensity.
    assert weights[GREENEST] == 100
    assert set(weights) == set(INTENSITIES) - {DIRTIEST}
    by_intensity = sorted(weights, key=INTENSITIES.__getitem__)
    assert [weights[r] for r in by_intensity] == sorted(weights.values(), reverse=True)
    assert all(1 <= w <= 100 for w in weights.values())
    # The real scheduler followed the preferences as far as the soft anti-affinity lets it: a
    # replica only sits in a region when every node of each greener region already holds one of
    # the StellarNode's pods (read or main), which that rule asks it to avoid.
    (main,) = await wait_for_pods(kube_api, carbon_namespace, MAIN_SELECTOR, count=1)
    occupied = {main.spec.node_name, *(p.spec.node_name for p in pods)}
    for pod, region in placed.items():
        greener = [n for n in fake_nodes if INTENSITIES[n.region] < INTENSITIES[region]]
        assert all(n.name in occupied for n in greener), (pod, placed)
    assert placed["carbon-validator-read-0"] == GREENEST


async def test_plain_deployment_without_the_read_replica_label_is_left_untouched(
    kube_api: k8s.ApiClient, carbon_namespace: str, webhook: LocalWebhook
) -> None:
    before = webhook.admissions().get("skipped:not-selected", 0.0)

    pods = await run_deployment(kube_api, carbon_namespace, deployment("horizon", 2))

    assert_untouched(kube_api, pods)
    # The webhook did see them, and chose to leave them alone.
    assert webhook.admissions().get("skipped:not-selected", 0.0) - before >= 2


async def test_read_replicas_that_opt_out_by_annotation_are_left_untouched(
    kube_api: k8s.ApiClient, carbon_namespace: str, webhook: LocalWebhook
) -> None:
    before = webhook.admissions().get("skipped:opted-out", 0.0)
    manifest = deployment(
        "pinned-read",
        2,
        labels=READ_REPLICA,
        annotations={"stellar.org/carbon-aware": "disabled"},
    )

    pods = await run_deployment(kube_api, carbon_namespace, manifest)

    assert_untouched(kube_api, pods)
    assert webhook.admissions().get("skipped:opted-out", 0.0) - before >= 2


async def test_require_policy_restricts_replicas_to_the_low_carbon_regions_keeping_user_terms(
    kube_api: k8s.ApiClient, carbon_namespace: str, fake_nodes: tuple[FakeNode, ...]
) -> None:
    # The user's own preference pulls towards the dirtiest region; require must still win.
    user_term = {
        "weight": 100,
        "preference": {
            "matchExpressions": [{"key": REGION_LABEL, "operator": "In", "values": [DIRTIEST]}]
        },
    }
    manifest = deployment(
        "strict-read",
        3,
        labels=READ_REPLICA,
        annotations={"stellar.org/carbon-policy": "require"},
        affinity={"nodeAffinity": {PREFERRED: [user_term]}},
    )

    pods = await run_deployment(kube_api, carbon_namespace, manifest)

    for pod in pods:
        affinity = node_affinity(kube_api, pod)
        assert affinity[REQUIRED] == {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": REGION_LABEL, "operator": "In", "values": sorted(REQUIRE_ALLOWED)}
                    ]
                }
            ]
        }
        assert affinity[PREFERRED][0] == user_term
        assert preference_weights(affinity[PREFERRED][1:], REGION_LABEL)[GREENEST] == 100
        assert pod_annotations(pod)[RANKING] == EXPECTED_RANKING
    placed = regions_of(pods, fake_nodes)
    assert set(placed.values()) <= set(LOW_CARBON), placed


async def test_a_restricted_pod_the_scheduler_cannot_place_is_reported(
    kube_api: k8s.ApiClient, carbon_namespace: str, webhook: LocalWebhook
) -> None:
    # The webhook's required set ignores requests outside read pools; no node has 500 cores.
    container = stellar_core_container()
    container["resources"] = {"requests": {"cpu": "500"}}
    manifest = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "too-big-read",
            "labels": dict(READ_REPLICA),
            "annotations": {"stellar.org/carbon-policy": "require"},
        },
        "spec": {"containers": [container]},
    }
    before = webhook.metric("stellar_carbon_webhook_restricted_pods_stranded_total")
    created = await k8s.CoreV1Api(kube_api).create_namespaced_pod(
        carbon_namespace, as_body(manifest)
    )
    assert pod_annotations(created)["stellar.org/carbon-required-regions"] == ",".join(
        sorted(REQUIRE_ALLOWED)
    )

    deadline = asyncio.get_running_loop().time() + 60
    while webhook.metric("stellar_carbon_webhook_restricted_pods_stranded_total") <= before:
        assert asyncio.get_running_loop().time() < deadline, "never reported"
        await asyncio.sleep(0.5)
    assert webhook.metric("stellar_carbon_webhook_restricted_pods_unschedulable") >= 1


@pytest.mark.parametrize("tampered", [None, b"garbage"], ids=["removed", "garbage"])
async def test_a_ca_bundle_someone_removes_or_replaces_is_restored_without_a_restart(
    kube_api: k8s.ApiClient,
    carbon_namespace: str,
    control_plane: ControlPlane,
    webhook: LocalWebhook,
    tampered: bytes | None,
) -> None:
    published = ca_bundle_of(control_plane, webhook.config_name)
    pid = webhook.service.pid if webhook.service is not None else None
    path = f"{MWC_PATH}/{webhook.config_name}"
    live = control_plane.request("GET", path)
    for hook in live["webhooks"]:
        hook["clientConfig"].pop("caBundle", None)
        if tampered is not None:
            hook["clientConfig"]["caBundle"] = base64.b64encode(tampered).decode()
    control_plane.request("PATCH", path, {"webhooks": live["webhooks"]})

    deadline = asyncio.get_running_loop().time() + RESTORED_WITHIN
    while (bundle := ca_bundle_of(control_plane, webhook.config_name)) != published:
        assert bundle == (tampered or b""), "someone else wrote the bundle"
        assert asyncio.get_running_loop().time() < deadline, "caBundle not restored in time"
        await asyncio.sleep(0.1)

    # The API server picks the restored bundle up through its informer; then pods are mutated.
    recovered = await wait_for_admission(
        kube_api, carbon_namespace, probe_pod(), is_mutated, timeout=RESTORED_WITHIN
    )
    assert pod_annotations(recovered)[RANKING] == EXPECTED_RANKING
    created = await k8s.CoreV1Api(kube_api).create_namespaced_pod(
        carbon_namespace, as_body(probe_pod(f"after-{'garbage' if tampered else 'removed'}"))
    )
    assert is_mutated(created)
    assert webhook.service is not None
    assert webhook.service.pid == pid
    assert webhook.service.running


async def test_during_a_carbon_api_outage_pods_are_placed_on_stale_then_static_data(
    kube_api: k8s.ApiClient,
    carbon_namespace: str,
    carbon_api: CarbonApiThread,
) -> None:
    expected_static = static_ranking()
    carbon_api.outage = True
    try:
        # The provider keeps its last document for a while, then fails: values go stale.
        stale = await create_once_decided_on(
            kube_api, carbon_namespace, "http(stale)", "stale", seconds=75
        )
        # Past the maximum stale age the chain falls back to the static annual averages.
        static = await create_once_decided_on(
            kube_api, carbon_namespace, "static", "static", seconds=45
        )
        refused = carbon_api.refused
    finally:
        carbon_api.outage = False

    assert refused > 0
    assert pod_annotations(stale)[SOURCE] == "http(stale)"
    assert pod_annotations(stale)[RANKING] == EXPECTED_RANKING  # the last good values
    assert pod_annotations(static)[SOURCE] == "static"
    assert pod_annotations(static)[RANKING] == expected_static
    assert expected_static != EXPECTED_RANKING
    for name in ("stale", "static"):
        (placed,) = await wait_for_pods(kube_api, carbon_namespace, f"app={name}", count=1)
        assert is_mutated(placed)


async def test_pods_are_created_and_scheduled_while_the_webhook_process_is_killed(
    kube_api: k8s.ApiClient,
    carbon_namespace: str,
    webhook: LocalWebhook,
) -> None:
    webhook.kill()
    try:
        await create_operator_read_pool(kube_api, carbon_namespace, 3, hpa=False)
        pods = await wait_for_pods(
            kube_api, carbon_namespace, READ_POOL_SELECTOR, count=3, timeout=90
        )
    finally:
        webhook.restart()

    # failurePolicy Ignore: the API server admitted the pods unchanged and they were scheduled.
    assert_untouched(kube_api, pods)
    assert all(p.status.phase == "Running" for p in pods)
    # And placement resumes once the webhook is back, with the CA it already published.
    recovered = await wait_for_admission(kube_api, carbon_namespace, probe_pod(), is_mutated)
    assert pod_annotations(recovered)[RANKING] == EXPECTED_RANKING

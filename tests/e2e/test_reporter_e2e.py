"""The sustainability reporter as a real process watching the real control plane.

``python -m reporter`` lists and watches the cluster's nodes and pods through a kubeconfig and reads
carbon data from the custom HTTP provider (a fake carbon API with fixed per-region values). The
webhook runs next to it, so the read replicas it counts were placed by carbon-aware admission and
the real scheduler.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TypeVar

import pytest
from kubernetes_asyncio import client as k8s

from tests.e2e.fleet import FakeNode
from tests.e2e.kube import fresh_namespace, wait_for_pods
from tests.e2e.operator import READ_POOL_SELECTOR, create_main_pod, create_operator_read_pool
from tests.e2e.services import LocalReporter, LocalWebhook, serve_namespace
from tests.fakes.custom_api import FakeCustomApi, Region

pytestmark = pytest.mark.e2e

# gCO2eq/kWh from the fake carbon API: us-west-2 is the greenest region by far.
INTENSITIES: Final = {
    "us-west-2": 45.0,
    "europe-west1": 120.0,
    "westeurope": 210.0,
    "us-west1": 260.0,
    "eu-central-1": 330.0,
    "eastus": 370.0,
    "us-east-1": 390.0,
    "southeastasia": 480.0,
    "asia-east1": 540.0,
}
GREENEST: Final = "us-west-2"
REPLICAS: Final = 3

T = TypeVar("T")


def eventually(what: str, read: Callable[[], T], done: Callable[[T], bool], timeout: float) -> T:
    """Poll ``read`` until ``done`` holds for its value: the reporter follows the cluster through
    watches and a periodic refresh, so its answers settle a moment after the cluster does."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s; last: {value!r}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    return FakeCustomApi(
        now=datetime.now(UTC),
        regions={region: Region(value) for region, value in INTENSITIES.items()},
    )


def nodes_by_name(reporter: LocalReporter) -> dict[str, dict[str, Any]]:
    body = reporter.api("nodes?limit=100")
    return {node["name"]: node for node in body["nodes"]}


def replica_counts(reporter: LocalReporter) -> dict[str, float]:
    return {
        dict(labels)["state"]: value
        for (name, labels), value in reporter.metrics().items()
        if name == "stellar_carbon_read_replicas"
    }


def test_nodes_endpoint_lists_every_fake_node_with_an_estimated_footprint(
    reporter: LocalReporter, fake_nodes: tuple[FakeNode, ...]
) -> None:
    names = {fake.name for fake in fake_nodes}
    nodes = eventually(
        "every fake node listed with an intensity",
        lambda: nodes_by_name(reporter),
        lambda listed: all(listed.get(n, {}).get("carbonIntensity") is not None for n in names),
        timeout=30,
    )

    for fake in fake_nodes:
        node = nodes[fake.name]
        assert node["region"] == fake.region
        assert node["cloud"] == fake.cloud.value
        assert node["instanceType"] == fake.instance_type
        assert node["vcpus"] == 8
        assert node["memoryGiB"] == 32
        assert node["schedulable"] is True
        assert node["estimate"] is True
        assert node["powerWatts"] > 0
        assert node["carbonIntensity"] == INTENSITIES[fake.region]
        assert node["intensitySource"] == "http"
        # Operational emissions = power x PUE x grid intensity.
        expected_g_per_hour = node["powerWatts"] / 1000 * node["pue"] * node["carbonIntensity"]
        assert node["pue"] >= 1
        assert node["gCO2eqPerHour"] == pytest.approx(expected_g_per_hour, rel=1e-3)
        assert node["kgCO2eqPerDay"] == pytest.approx(node["gCO2eqPerHour"] * 24 / 1000, rel=1e-3)
    # Same machine, same power draw: the estimate depends on the instance, not on the region.
    power = {(nodes[f.name]["instanceType"], nodes[f.name]["powerWatts"]) for f in fake_nodes}
    assert len(power) == len({f.instance_type for f in fake_nodes})


async def test_prometheus_metrics_count_the_read_replicas_and_their_placement(
    kube_api: k8s.ApiClient,
    webhook: LocalWebhook,
    reporter: LocalReporter,
    fake_nodes: tuple[FakeNode, ...],
) -> None:
    regions = {node.name: node.region for node in fake_nodes}
    async with fresh_namespace(kube_api, prefix="stellar-") as namespace:
        await serve_namespace(kube_api, namespace)
        await create_main_pod(kube_api, namespace)
        await create_operator_read_pool(kube_api, namespace, REPLICAS, hpa=False)
        pods = await wait_for_pods(
            kube_api, namespace, READ_POOL_SELECTOR, count=REPLICAS, timeout=90
        )
        in_greenest = sum(regions[pod.spec.node_name] == GREENEST for pod in pods)

        counts = eventually(
            "every replica counted as placed carbon-aware",
            lambda: replica_counts(reporter),
            lambda c: c.get("total") == REPLICAS and c.get("carbon_aware") == REPLICAS,
            timeout=30,
        )
        summary = reporter.api("metrics")

    assert in_greenest > 0
    assert counts["in_greenest_region"] == in_greenest
    replicas = summary["readReplicas"]
    assert replicas["total"] == REPLICAS
    assert replicas["placed"] == REPLICAS
    assert replicas["carbonAware"] == REPLICAS
    assert replicas["inGreenestRegion"] == in_greenest
    assert replicas["greenestRegions"] == [GREENEST]
    # Replicas in the two cleanest regions emit less than the same replicas spread evenly.
    assert replicas["savingsPercent"] > 0
    samples = reporter.metrics()
    for fake in fake_nodes:
        labels = frozenset({("node", fake.name), ("region", fake.region)})
        assert samples[("stellar_carbon_node_power_watts", labels)] > 0
        assert samples[("stellar_carbon_node_emissions_gco2eq_per_hour", labels)] > 0

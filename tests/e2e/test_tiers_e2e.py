"""The carbon-tier component on the real control plane, with exactly the rights the chart grants.

The chart is installed with ``tiers.enabled``; ``python -m tiers`` then runs as a local process
under the chart's tiers ServiceAccount, with the environment its Deployment sets, in ``label``
mode on the mock carbon data. The API server applies the strategic-merge patches, records the
field manager and the Events, and enforces the chart's RBAC: a missing verb fails here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

from shared.scoring.tiers import TIER_LABEL
from tests.e2e.carbon_api import mock_carbon_env
from tests.e2e.chart import (
    Helm,
    Release,
    chart_process,
    container_env,
    install,
    service_account_of,
)
from tests.e2e.cluster import ControlPlane, free_port
from tests.e2e.fleet import FakeNode
from tests.e2e.probes import http_get, metric_samples
from tests.e2e.processes import LocalService
from tests.e2e.services import service_account_kubeconfig

pytestmark = pytest.mark.e2e

FIELD_MANAGER: Final = "stellar-carbon-tiers"
ONLY_THE_TIER_LABEL: Final = {"f:metadata": {"f:labels": {f"f:{TIER_LABEL}": {}}}}


@pytest.fixture(scope="module")
def tiers_release(
    helm: Helm, control_plane: ControlPlane, fake_nodes: tuple[FakeNode, ...]
) -> Iterator[Release]:
    """The chart with the tier component in label mode; the labels it left are removed after."""
    try:
        with install(
            helm,
            control_plane,
            "carbon-tiers",
            "--set",
            "tiers.enabled=true",
            "--set",
            "tiers.mode=label",
            "--set",
            "reporter.enabled=false",
        ) as release:
            yield release
    finally:
        for node in fake_nodes:
            with contextlib.suppress(Exception):
                control_plane.request(
                    "PATCH",
                    f"/api/v1/nodes/{node.name}",
                    {"metadata": {"labels": {TIER_LABEL: None}}},
                )


@pytest.fixture
def services() -> Iterator[list[LocalService]]:
    started: list[LocalService] = []
    try:
        yield started
    finally:
        for service in started:
            service.stop()


def node_tiers(control_plane: ControlPlane, fake_nodes: tuple[FakeNode, ...]) -> dict[str, Any]:
    names = {node.name for node in fake_nodes}
    listed = control_plane.request("GET", "/api/v1/nodes")["items"]
    return {
        n["metadata"]["name"]: n["metadata"].get("labels", {}).get(TIER_LABEL)
        for n in listed
        if n["metadata"]["name"] in names
    }


def tier_events(control_plane: ControlPlane) -> list[dict[str, Any]]:
    path = "/api/v1/namespaces/default/events?fieldSelector=reason%3DCarbonTierChanged"
    events: list[dict[str, Any]] = control_plane.request("GET", path)["items"]
    return events


def start_tiers(
    control_plane: ControlPlane,
    release: Release,
    services: list[LocalService],
    log_dir: Path,
) -> tuple[LocalService, str]:
    """``python -m tiers`` as the chart's ServiceAccount with its Deployment's environment."""
    deployment = release.one("Deployment", "tiers")
    port = free_port()
    env = {
        **container_env(deployment),
        **mock_carbon_env(),
        "STELLAR_CARBON_TIERS_INTERVAL": "1",
        "STELLAR_CARBON_TIERS_BIND_ADDRESS": "127.0.0.1",
        "STELLAR_CARBON_TIERS_HEALTH_PORT": str(port),
        "KUBECONFIG": str(
            service_account_kubeconfig(
                control_plane,
                release.namespace,
                service_account_of(deployment),
                log_dir / "tiers-sa.kubeconfig",
            )
        ),
    }
    assert env["STELLAR_CARBON_TIERS_MODE"] == "label"
    service = chart_process("chart-tiers", "tiers", env, log_dir, services)
    url = f"http://127.0.0.1:{port}"
    service.wait_until("ready", lambda: http_get(f"{url}/readyz")[0] == 200, timeout=60)
    return service, url


def test_the_tier_component_labels_every_node_under_its_own_field_manager_and_records_events(
    tiers_release: Release,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    services: list[LocalService],
    tmp_path: Path,
) -> None:
    service, url = start_tiers(control_plane, tiers_release, services, tmp_path)

    service.wait_until(
        "every node labelled",
        lambda: None not in node_tiers(control_plane, fake_nodes).values(),
        timeout=60,
    )
    tiers = node_tiers(control_plane, fake_nodes)
    by_region: dict[str, set[str]] = {}
    for node in fake_nodes:
        by_region.setdefault(node.region, set()).add(tiers[node.name])
    assert all(len(values) == 1 for values in by_region.values()), by_region
    assert "0" in {value for values in by_region.values() for value in values}
    for node in control_plane.request("GET", "/api/v1/nodes")["items"]:
        if node["metadata"]["name"] not in tiers:
            continue
        (ours,) = [m for m in node["metadata"]["managedFields"] if m["manager"] == FIELD_MANAGER]
        assert ours["operation"] == "Update"
        assert ours["fieldsV1"] == ONLY_THE_TIER_LABEL
    events = tier_events(control_plane)
    assert {e["involvedObject"]["name"] for e in events} >= set(tiers)
    assert all(e["involvedObject"]["kind"] == "Node" for e in events)
    samples = metric_samples(f"{url}/metrics")
    writes = "stellar_carbon_tiers_label_writes_total"
    assert samples[(writes, frozenset({("result", "written")}))] >= len(tiers)
    assert samples.get((writes, frozenset({("result", "failed")})), 0.0) == 0


def test_after_a_restart_the_labels_hold_and_a_node_that_drifted_is_put_back(
    tiers_release: Release,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    services: list[LocalService],
    tmp_path: Path,
) -> None:
    service, _ = start_tiers(control_plane, tiers_release, services, tmp_path)
    service.wait_until(
        "every node labelled",
        lambda: None not in node_tiers(control_plane, fake_nodes).values(),
        timeout=60,
    )
    service.stop()
    before = node_tiers(control_plane, fake_nodes)
    # One node of a region below the last tier drifts to the last tier while nothing runs.
    drifted = next(n for n in fake_nodes if before[n.name] != "9")
    control_plane.request(
        "PATCH", f"/api/v1/nodes/{drifted.name}", {"metadata": {"labels": {TIER_LABEL: "9"}}}
    )

    restarted, _ = start_tiers(control_plane, tiers_release, services, tmp_path)
    restarted.wait_until(
        "the drifted node put back",
        lambda: node_tiers(control_plane, fake_nodes) == before,
        timeout=60,
    )
    back = [
        e
        for e in tier_events(control_plane)
        if e["involvedObject"]["name"] == drifted.name and " 9 -> " in e["message"]
    ]
    assert back, "no event for the node put back"

"""The chart's Grafana dashboard asks only for series the running services export.

The webhook, the reporter and the tier component run as local processes against the real control
plane; every metric name in the dashboard's PromQL must be one that at least one of them serves on
``/metrics`` (a renamed metric would otherwise leave an empty panel nobody notices).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.carbon_api import CarbonApiThread, custom_api_carbon_env
from tests.e2e.cluster import ControlPlane, free_port
from tests.e2e.fleet import FLEET_REGIONS, FakeNode
from tests.e2e.kube import fresh_namespace
from tests.e2e.probes import http_get, http_ok
from tests.e2e.processes import LocalService, logs_on_failure
from tests.e2e.services import LocalReporter, LocalWebhook, serve_namespace
from tests.fakes.custom_api import FakeCustomApi, Region
from tests.tools import REPO

pytestmark = pytest.mark.e2e

DASHBOARD = REPO / "charts" / "stellar-carbon" / "dashboards" / "stellar-carbon.json"
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
}


@pytest.fixture(scope="module")
def fake_carbon_api() -> FakeCustomApi:
    regions = sorted(region for names in FLEET_REGIONS.values() for region in names)
    return FakeCustomApi(
        now=datetime.now(UTC),
        regions={region: Region(100.0 + 25 * i) for i, region in enumerate(regions)},
    )


@pytest.fixture(scope="module")
def tiers_metrics_url(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    fake_nodes: tuple[FakeNode, ...],
    carbon_api: CarbonApiThread,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """``python -m tiers`` in dry-run mode: it computes and exports tiers, labels nothing."""
    port = free_port()
    env = {
        **custom_api_carbon_env(carbon_api),
        "KUBECONFIG": str(control_plane.kubeconfig_path),
        "STELLAR_CARBON_TIERS_MODE": "dry-run",
        "STELLAR_CARBON_TIERS_INTERVAL": "1",
        "STELLAR_CARBON_TIERS_BIND_ADDRESS": "127.0.0.1",
        "STELLAR_CARBON_TIERS_HEALTH_PORT": str(port),
    }
    service = LocalService("tiers", "tiers", env, tmp_path_factory.mktemp("tiers-logs"))
    service.start()
    try:
        url = f"http://127.0.0.1:{port}"
        service.wait_until("ready", lambda: http_get(f"{url}/readyz")[0] == 200)
        with logs_on_failure(request.config, service):
            yield f"{url}/metrics"
    finally:
        service.stop()


def exported_names(metrics_url: str) -> set[str]:
    """Every series name ``metrics_url`` can serve, including the suffixed ones of counters and
    histograms whose labelled children have not been created yet."""
    names: set[str] = set()
    for family in text_string_to_metric_families(http_ok(metrics_url).decode()):
        names.add(family.name)
        names.update(family.name + suffix for suffix in _SUFFIXES.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_metric_names(path: Path) -> set[str]:
    board = json.loads(path.read_text())
    expressions = [
        target["expr"] for panel in board["panels"] for target in panel.get("targets", [])
    ]
    return {name for expr in expressions for name in re.findall(r"stellar_carbon_\w+", expr)}


async def test_every_metric_the_grafana_dashboard_queries_is_exported_by_a_running_service(
    kube_api: k8s.ApiClient,
    webhook: LocalWebhook,
    reporter: LocalReporter,
    tiers_metrics_url: str,
) -> None:
    async with fresh_namespace(kube_api, "grafana-") as namespace:
        await serve_namespace(kube_api, namespace)  # at least one admission went through
    exported = (
        exported_names(f"{webhook.health_url}/metrics")
        | exported_names(f"{reporter.url}/metrics")
        | exported_names(tiers_metrics_url)
    )

    queried = dashboard_metric_names(DASHBOARD)
    assert len(queried) >= 15
    assert queried - exported == set()

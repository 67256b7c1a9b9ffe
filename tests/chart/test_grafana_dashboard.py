"""The Grafana dashboard: off by default, one ConfigMap the Grafana sidecar picks up when asked."""

from __future__ import annotations

import json

import pytest

from tests.chart.conftest import CHART, RELEASE_NAMESPACE, Render, by_kind

pytestmark = pytest.mark.chart

DASHBOARD = CHART / "dashboards" / "stellar-carbon.json"


def dashboard_maps(objects: list[dict[str, object]]) -> list[dict[str, object]]:
    return [o for o in by_kind(objects, "ConfigMap") if "grafana" in str(o["metadata"])]


def test_no_dashboard_is_shipped_unless_asked(render: Render) -> None:
    assert dashboard_maps(render()) == []


def test_the_dashboard_configmap_carries_the_sidecar_label_and_the_whole_board(
    render: Render,
) -> None:
    (config_map,) = dashboard_maps(render(None, "grafanaDashboard.enabled=true"))

    metadata = config_map["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["labels"]["grafana_dashboard"] == "1"
    assert metadata["namespace"] == RELEASE_NAMESPACE
    data = config_map["data"]
    assert isinstance(data, dict)
    assert json.loads(data["stellar-carbon.json"]) == json.loads(DASHBOARD.read_text())


def test_the_dashboard_can_go_to_grafana_s_namespace_with_its_folder(render: Render) -> None:
    (config_map,) = dashboard_maps(
        render(
            None,
            "grafanaDashboard.enabled=true",
            "grafanaDashboard.namespace=monitoring",
            "grafanaDashboard.annotations.grafana_folder=Sustainability",
        )
    )

    metadata = config_map["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["namespace"] == "monitoring"
    assert metadata["annotations"] == {"grafana_folder": "Sustainability"}


def test_every_panel_queries_prometheus_through_the_datasource_variable() -> None:
    board = json.loads(DASHBOARD.read_text())
    panels = [p for p in board["panels"] if p["type"] != "row"]

    assert panels
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert "stellar_carbon_" in target["expr"], panel["title"]

"""Every endpoint of the reporter API on loopback, each answer checked against the document."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from reporter.health import RefresherHealth
from reporter.settings import ReporterSettings
from shared.cluster.inventory import NodeInfo
from shared.core.models import TIER_LABEL, Cloud, Freshness
from shared.settings import CarbonSettings
from tests.unit.reporter.cluster import NOW, Cluster, carbon, node, pod, region_info, snapshot
from tests.unit.reporter.conftest import (
    EU_WEST_1,
    EUROPE_WEST1,
    US_WEST_2,
    ClientFactory,
    demo_snapshot,
)
from tests.unit.reporter.contract import call

API = "/api/v1/sustainability"


# --- metrics ----------------------------------------------------------------------------------


async def test_metrics_add_up_every_node_and_report_read_replica_savings(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/metrics")
    assert status == 200
    assert body["nodes"] == 4
    assert body["regions"] == 3
    assert body["nodesWithoutIntensity"] == 0
    _, nodes = await call(client, f"{API}/nodes")
    assert body["powerWatts"] == pytest.approx(
        sum(n["powerWatts"] for n in nodes["nodes"]), abs=1e-2
    )
    assert body["gCO2eqPerHour"] == pytest.approx(
        sum(n["gCO2eqPerHour"] for n in nodes["nodes"]), abs=1e-3
    )
    assert body["kgCO2eqPerDay"] == pytest.approx(body["gCO2eqPerHour"] * 24 / 1000, abs=1e-5)
    assert body["nodeWeightedCarbonIntensity"] == pytest.approx((120 + 120 + 300 + 180) / 4)
    replicas = body["readReplicas"]
    assert replicas["total"] == 3
    assert replicas["carbonAware"] == 2
    assert replicas["constrained"] == 1
    assert replicas["constraints"] == {"topologySpread:topology.kubernetes.io/zone": 1}
    # us-west-2 has the lowest expected intensity over 24 h (current 120, forecast down to 90).
    assert replicas["greenestRegions"] == ["us-west-2"]
    assert replicas["inGreenestRegion"] == 2
    assert replicas["savingsPercent"] is not None
    assert body["dataFreshness"]["stale"] is False
    assert body["dataFreshness"]["oldestValueAgeSeconds"] == 1800


async def test_metrics_flag_stale_and_static_values_and_unknown_regions(
    reporter_client: ClientFactory,
) -> None:
    data = snapshot(
        carbon(US_WEST_2, 120, freshness=Freshness.STALE, observed_at=NOW - timedelta(hours=3)),
        carbon(EU_WEST_1, 300, freshness=Freshness.STATIC, provider="static"),
        carbon(EUROPE_WEST1, None),
    )
    client = await reporter_client(carbon_snapshot=data)
    _, body = await call(client, f"{API}/metrics")
    freshness = body["dataFreshness"]
    assert freshness["stale"] is True
    assert freshness["static"] is True
    assert freshness["staleRegions"] == ["us-west-2"]
    assert freshness["staticRegions"] == ["eu-west-1"]
    assert "europe-west1" in freshness["unknownRegions"]
    assert freshness["oldestValueAgeSeconds"] == 3 * 3600
    assert body["nodesWithoutIntensity"] == 1


async def test_an_empty_cluster_reports_zero_power_and_unknown_emissions(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client(cluster=Cluster())
    _, body = await call(client, f"{API}/metrics")
    assert body["nodes"] == 0
    assert body["powerWatts"] == 0
    assert body["gCO2eqPerHour"] is None
    assert body["readReplicas"]["savingsPercent"] is None


# --- regions ----------------------------------------------------------------------------------


async def test_regions_list_cluster_regions_and_configured_extras_ranked_greenest_first(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/regions")
    assert status == 200
    by_name = {r["region"]: r for r in body["regions"]}
    assert list(by_name) == ["eu-north-1", "eu-west-1", "europe-west1", "us-west-2"]
    assert body["count"] == 4
    west = by_name["us-west-2"]
    assert west["rank"] == 1
    assert west["carbonIntensity"] == 120
    assert west["renewablePercentage"] == 80
    assert west["hasForecast"] is True
    # Current 120 until the next point (13:00), then 90, 95, and the last point (130) holds.
    assert west["expectedCarbonIntensity"] == pytest.approx(
        (120 + 90 + 95 + 130 * 21) / 24, abs=1e-3
    )
    assert west["horizonHours"] == 24
    assert west["nodes"] == 2
    assert west["zone"] == "US-NW-BPAT"
    assert west["source"] == "mock"
    assert west["observedAt"] == "2026-11-26T11:30:00Z"
    assert by_name["europe-west1"]["rank"] == 2
    assert by_name["eu-west-1"]["rank"] == 3
    # Configured but without data: listed, never ranked, never 0.
    north = by_name["eu-north-1"]
    assert north["configured"] is True
    assert north["nodes"] == 0
    assert north["rank"] is None
    assert north["carbonIntensity"] is None
    assert north["cloud"] == "aws"


async def test_regions_filter_by_cloud(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    _, body = await call(client, f"{API}/regions?cloud=gcp")
    assert [r["region"] for r in body["regions"]] == ["europe-west1"]


@pytest.mark.parametrize("query", ["cloud=ibm", "cloud=", "cloud=aws&cloud=gcp"])
async def test_a_bad_cloud_filter_is_a_400_naming_the_parameter(
    reporter_client: ClientFactory, query: str
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/regions?{query}")
    assert status == 400
    assert body["error"]["code"] == "invalid_parameter"
    assert body["error"]["parameter"] == "cloud"
    assert "cloud" in body["error"]["message"]


async def test_one_region_is_served_by_name(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/regions/europe-west1")
    assert status == 200
    assert body["region"] == "europe-west1"
    assert body["cloud"] == "gcp"
    assert body["pue"] == 1.09


async def test_an_unknown_region_is_a_404_suggesting_close_matches(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/regions/us-west-3")
    assert status == 404
    assert body["error"]["code"] == "region_not_found"
    assert "us-west-2" in body["error"]["suggestions"]
    assert "us-west-2" in body["error"]["message"]


def tiered(info: NodeInfo, tier: str, minutes_ago: int | None) -> NodeInfo:
    """``info`` labelled with ``tier``, the label written ``minutes_ago`` (None: no record)."""
    return dataclasses.replace(
        info,
        labels={**info.labels, TIER_LABEL: tier},
        tier_set_at=NOW - timedelta(minutes=minutes_ago) if minutes_ago is not None else None,
    )


async def test_each_region_shows_its_nodes_tier_and_when_it_last_changed(
    reporter_client: ClientFactory,
) -> None:
    cluster = Cluster(
        [
            tiered(node("aws-usw2-a", "us-west-2"), "0", minutes_ago=50),
            tiered(node("aws-usw2-b", "us-west-2"), "0", minutes_ago=45),
            tiered(node("aws-euw1-a", "eu-west-1"), "4", minutes_ago=None),
            node("gcp-euw1-a", "europe-west1", cloud=Cloud.GCP),
        ]
    )
    client = await reporter_client(cluster=cluster)

    _, body = await call(client, f"{API}/regions")
    by_name = {r["region"]: r for r in body["regions"]}
    # The newest label write of the region dates its tier.
    assert by_name["us-west-2"]["tier"] == 0
    assert by_name["us-west-2"]["tierChangedAt"] == "2026-11-26T11:15:00Z"
    assert (by_name["eu-west-1"]["tier"], by_name["eu-west-1"]["tierChangedAt"]) == (4, None)
    # No label on any node (the tier component is off or in dry-run): no tier.
    assert (by_name["europe-west1"]["tier"], by_name["europe-west1"]["tierChangedAt"]) == (
        None,
        None,
    )
    assert (by_name["eu-north-1"]["tier"], by_name["eu-north-1"]["tierChangedAt"]) == (None, None)
    _, one = await call(client, f"{API}/regions/us-west-2")
    assert one == by_name["us-west-2"]


async def test_a_region_whose_nodes_disagree_shows_the_tier_most_carry_dated_by_those(
    reporter_client: ClientFactory,
) -> None:
    cluster = Cluster(
        [
            tiered(node("a", "us-west-2"), "1", minutes_ago=90),
            tiered(node("b", "us-west-2"), "1", minutes_ago=80),
            # Written last, but a minority: the move is half done.
            tiered(node("c", "us-west-2"), "0", minutes_ago=5),
            tiered(node("d", "eu-west-1"), "03", minutes_ago=5),
        ]
    )
    client = await reporter_client(cluster=cluster)

    _, west = await call(client, f"{API}/regions/us-west-2")
    _, ireland = await call(client, f"{API}/regions/eu-west-1")

    assert (west["tier"], west["tierChangedAt"]) == (1, "2026-11-26T10:40:00Z")
    # A value the tier component never writes names no tier.
    assert (ireland["tier"], ireland["tierChangedAt"]) == (None, None)


# --- forecast ---------------------------------------------------------------------------------


async def test_a_forecast_lists_points_and_the_lowest_window(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/forecast/us-west-2?hours=4&window=120")
    assert status == 200
    assert [p["carbonIntensity"] for p in body["points"]] == [110, 90, 95, 130]
    assert body["points"][0]["timestamp"] == "2026-11-26T12:00:00Z"
    assert body["points"][0]["durationMinutes"] == 60
    assert body["forecastAvailable"] is True
    assert body["windowMinutes"] == 120
    assert body["dataStartAt"] == "2026-11-26T12:00:00Z"
    assert body["dataEndAt"] == "2026-11-26T16:00:00Z"
    # Two-hour windows: 100, 92.5, 112.5 → the one starting at 13:00.
    assert body["optimalDataPoints"] == [
        {"timestamp": "2026-11-26T13:00:00Z", "durationMinutes": 120, "carbonIntensity": 92.5}
    ]


async def test_the_horizon_limits_the_points(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    _, body = await call(client, f"{API}/forecast/us-west-2?hours=2")
    assert [p["carbonIntensity"] for p in body["points"]] == [110, 90]
    assert body["hours"] == 2
    assert body["windowMinutes"] is None
    assert [p["carbonIntensity"] for p in body["optimalDataPoints"]] == [90]


async def test_a_region_without_a_forecast_says_so_with_no_points(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/forecast/eu-west-1")
    assert status == 200
    assert body["forecastAvailable"] is False
    assert body["points"] == []
    assert body["optimalDataPoints"] == []


async def test_a_forecast_for_an_unknown_region_is_a_404(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/forecast/mars-north-1")
    assert status == 404
    assert body["error"]["code"] == "region_not_found"


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("hours=0", "hours"),
        ("hours=73", "hours"),
        ("hours=1.5", "hours"),
        ("hours=abc", "hours"),
        ("hours=", "hours"),
        ("hours=-3", "hours"),
        ("hours=99999999999999999999", "hours"),
        ("hours=2&hours=3", "hours"),
        ("window=0", "window"),
        ("window=ten", "window"),
        ("hours=1&window=61", "window"),
    ],
)
async def test_bad_forecast_parameters_are_a_400_naming_the_parameter(
    reporter_client: ClientFactory, query: str, parameter: str
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/forecast/us-west-2?{query}")
    assert status == 400
    assert body["error"]["parameter"] == parameter
    assert body["error"]["message"].startswith(parameter)


# --- nodes ------------------------------------------------------------------------------------


async def test_nodes_carry_their_footprint_and_stellar_pods(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/nodes")
    assert status == 200
    assert body["total"] == 4
    assert body["continue"] is None
    by_name = {n["name"]: n for n in body["nodes"]}
    assert list(by_name) == sorted(by_name)
    aws = by_name["aws-usw2-a"]
    # 8 vCPU AWS at 50 %: 16.96 W; us-west-2 PUE 1.15 (hand-built) at 120 g/kWh.
    assert aws["powerWatts"] == pytest.approx(16.96)
    assert aws["vcpus"] == 8
    assert aws["memoryGiB"] == 16
    assert aws["instanceType"] == "m5.2xlarge"
    assert aws["pue"] == 1.15
    assert aws["carbonIntensity"] == 120
    assert aws["gCO2eqPerHour"] == pytest.approx(16.96 / 1000 * 1.15 * 120, abs=1e-4)
    assert aws["kgCO2eqPerDay"] == pytest.approx(16.96 / 1000 * 1.15 * 120 * 24 / 1000, abs=1e-6)
    assert aws["cpuUtilisation"] == 0.5
    assert aws["utilisationMeasured"] is False
    assert aws["estimate"] is True
    assert aws["pods"] == [
        {"namespace": "stellar", "name": "read-0", "role": "read-replica", "phase": "Running"}
    ]
    assert [p["role"] for p in by_name["aws-euw1-a"]["pods"]] == ["read-replica", "validator"]


async def test_measured_cpu_usage_feeds_the_power_model(reporter_client: ClientFactory) -> None:
    class Usage:
        usage_millis = {"aws-usw2-a": 8000}

    client = await reporter_client(usage=Usage())
    _, body = await call(client, f"{API}/nodes?region=us-west-2&limit=1")
    (item,) = body["nodes"]
    assert item["cpuUtilisation"] == 1
    assert item["utilisationMeasured"] is True
    assert item["powerWatts"] == pytest.approx(8 * 3.5)


async def test_nodes_filter_by_region(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    _, body = await call(client, f"{API}/nodes?region=us-west-2")
    assert [n["name"] for n in body["nodes"]] == ["aws-usw2-a", "aws-usw2-b"]
    _, body = await call(client, f"{API}/nodes?region=nowhere")
    assert body == {**body, "nodes": [], "total": 0, "continue": None}


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=5001", "limit"),
        ("limit=x", "limit"),
        ("continue=garbage", "continue"),
        ("continue=n1.!!!", "continue"),
        ("continue=n1.e30", "continue"),
        ("region=", "region"),
    ],
)
async def test_bad_node_parameters_are_a_400_naming_the_parameter(
    reporter_client: ClientFactory, query: str, parameter: str
) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/nodes?{query}")
    assert status == 400
    assert body["error"]["parameter"] == parameter


# --- health -----------------------------------------------------------------------------------


async def test_health_is_ok_with_live_data_and_a_synced_inventory(
    reporter_client: ClientFactory,
) -> None:
    north = carbon(region_info("eu-north-1", zone="SE-SE1"), 20)
    data = snapshot(*demo_snapshot().regions.values(), north)
    client = await reporter_client(carbon_snapshot=data)
    status, body = await call(client, f"{API}/health")
    assert status == 200
    assert body["status"] == "ok"
    assert {c["name"]: c["status"] for c in body["checks"]} == {
        "carbonData": "ok",
        "kubernetes": "ok",
    }


async def test_health_is_degraded_but_200_while_serving_stale_or_missing_values(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()  # eu-north-1 is configured but has no data
    status, body = await call(client, f"{API}/health")
    assert status == 200
    assert body["status"] == "degraded"
    carbon_check = next(c for c in body["checks"] if c["name"] == "carbonData")
    assert carbon_check["details"]["unknownRegions"] == ["eu-north-1"]


async def test_health_is_503_without_any_carbon_data(reporter_client: ClientFactory) -> None:
    client = await reporter_client(carbon_snapshot=snapshot())
    status, body = await call(client, f"{API}/health")
    assert status == 503
    assert body["status"] == "unavailable"


async def test_health_is_503_before_the_inventory_is_listed(reporter_client: ClientFactory) -> None:
    client = await reporter_client(cluster=Cluster(synced=False))
    status, body = await call(client, f"{API}/health")
    assert status == 503
    kube = next(c for c in body["checks"] if c["name"] == "kubernetes")
    assert kube["status"] == "down"


async def test_health_includes_provider_and_cache_checks(reporter_client: ClientFactory) -> None:
    state = {
        "running": True,
        "ageSeconds": 30.0,
        "lastError": None,
        "providers": {
            "providers": [
                {"name": "electricitymaps", "backingOff": 2, "lastError": "RateLimited"},
                {"name": "static", "backingOff": 0},
            ],
            "cache": {"backend": "redis", "available": False, "lastError": "get: ConnectionError"},
        },
    }
    client = await reporter_client(
        health_source=RefresherHealth(lambda: state, max_age_seconds=180)
    )
    status, body = await call(client, f"{API}/health")
    assert status == 200
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["providers"]["status"] == "degraded"
    assert "electricitymaps" in checks["providers"]["message"]
    assert checks["cache"]["status"] == "degraded"
    assert checks["refresh"]["status"] == "ok"
    assert body["status"] == "degraded"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"running": False}, "not running"),
        ({"running": True, "lastError": "TimeoutError: slow"}, "failed"),
        ({"running": True, "ageSeconds": None}, "no refresh"),
        ({"running": True, "ageSeconds": 900.0}, "900 s ago"),
    ],
)
async def test_a_refresh_that_stalls_degrades_health_without_making_it_unavailable(
    reporter_client: ClientFactory, state: dict[str, object], message: str
) -> None:
    source = RefresherHealth(lambda: state, max_age_seconds=180)
    client = await reporter_client(health_source=source)
    status, body = await call(client, f"{API}/health")
    assert status == 200
    refresh = next(c for c in body["checks"] if c["name"] == "refresh")
    assert refresh["status"] == "degraded"
    assert message in refresh["message"]


async def test_every_provider_failing_is_down_but_static_data_keeps_serving(
    reporter_client: ClientFactory,
) -> None:
    state = {
        "running": True,
        "ageSeconds": 1.0,
        "providers": {"providers": [{"name": "electricitymaps", "backingOff": 1}], "cache": {}},
    }
    client = await reporter_client(
        health_source=RefresherHealth(lambda: state, max_age_seconds=180)
    )
    status, body = await call(client, f"{API}/health")
    assert status == 200
    assert body["status"] == "degraded"
    providers = next(c for c in body["checks"] if c["name"] == "providers")
    assert providers["status"] == "down"


# --- documents, errors ------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{API}/openapi.json", "/openapi.json"])
async def test_the_openapi_document_is_served(reporter_client: ClientFactory, path: str) -> None:
    client = await reporter_client()
    status, body = await call(client, path)
    assert status == 200
    assert body["openapi"] == "3.1.0"
    assert f"{API}/nodes" in body["paths"]


async def test_an_unknown_path_is_a_json_404(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    status, body = await call(client, f"{API}/nothing-here")
    assert status == 404
    assert body["error"]["code"] == "not_found"


async def test_a_wrong_method_is_a_json_405_with_allow(reporter_client: ClientFactory) -> None:
    client = await reporter_client()
    response = await client.post(f"{API}/metrics", data=b"{}")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]
    body = await response.json()
    assert body["error"]["code"] == "method_not_allowed"
    status, _ = await call(client, f"{API}/regions/us-west-2", method="DELETE")
    assert status == 405


async def test_an_unexpected_failure_is_a_json_500_without_a_stack_trace(
    reporter_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @property
        def snapshot(self) -> None:
            raise RuntimeError("secret internal detail")

    client = await reporter_client(snapshot_source=Broken())
    status, body = await call(client, f"{API}/metrics")
    assert status == 500
    assert body == {
        "error": {
            "code": "internal_error",
            "message": "the reporter failed to answer this request",
        }
    }
    assert "RuntimeError" in caplog.text  # logged for operators, not shown to the client
    # The process is fine: the next request to an unaffected route still answers.
    status, _ = await call(client, f"{API}/openapi.json")
    assert status == 200


async def test_settings_choose_the_default_page_size(reporter_client: ClientFactory) -> None:
    nodes = [node(f"n{i:02}", "us-west-2") for i in range(5)]
    client = await reporter_client(
        cluster=Cluster(nodes),
        settings=ReporterSettings(default_page_size=2, carbon=CarbonSettings()),
    )
    _, body = await call(client, f"{API}/nodes")
    assert [n["name"] for n in body["nodes"]] == ["n00", "n01"]
    assert body["remainingItemCount"] == 3
    assert body["continue"]


async def test_pods_without_nodes_do_not_break_anything(reporter_client: ClientFactory) -> None:
    client = await reporter_client(cluster=Cluster([], [pod("read-9", "gone")]))
    status, body = await call(client, f"{API}/metrics")
    assert status == 200
    assert body["readReplicas"]["total"] == 1
    assert body["readReplicas"]["placed"] == 0


async def test_liveness_answers_even_without_carbon_data(reporter_client: ClientFactory) -> None:
    client = await reporter_client(carbon_snapshot=snapshot(), cluster=Cluster(synced=False))
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.text() == "ok\n"

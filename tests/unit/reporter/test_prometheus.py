"""Prometheus exposition: gauges from the current view, no sample for unknown intensity."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families

from reporter.health import RefresherHealth
from reporter.routes import REPORTER
from tests.unit.reporter.cluster import NOW, FixedSnapshot, carbon, snapshot
from tests.unit.reporter.conftest import EU_WEST_1, EUROPE_WEST1, US_WEST_2, ClientFactory


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def scrape(client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:  # type: ignore[no-untyped-def]
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return samples(await response.text())


async def test_region_intensity_has_a_sample_only_when_known(
    reporter_client: ClientFactory,
) -> None:
    data = snapshot(carbon(US_WEST_2, 120), carbon(EU_WEST_1, None), carbon(EUROPE_WEST1, 180))
    client = await reporter_client(carbon_snapshot=data)
    found = await scrape(client)
    intensity = {
        dict(labels)["region"]: value
        for (name, labels), value in found.items()
        if name == "stellar_carbon_region_intensity_gco2eq_per_kwh"
    }
    assert intensity == {"us-west-2": 120, "europe-west1": 180}
    emissions = {
        dict(labels)["node"]
        for (name, labels), value in found.items()
        if name == "stellar_carbon_node_emissions_gco2eq_per_hour"
    }
    assert "aws-euw1-a" not in emissions
    assert "aws-usw2-a" in emissions
    power = {
        dict(labels)["node"]
        for (name, labels), _ in found.items()
        if name == "stellar_carbon_node_power_watts"
    }
    assert "aws-euw1-a" in power


async def test_savings_data_age_and_provider_errors_are_exported(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client(
        provider_errors=lambda: {("electricitymaps", "RateLimited"): 3},
        health_source=RefresherHealth(lambda: {"running": True}, max_age_seconds=60),
    )
    found = await scrape(client)
    assert found[("stellar_carbon_read_replicas", (("state", "total"),))] == 3
    assert found[("stellar_carbon_read_replicas", (("state", "carbon_aware"),))] == 2
    assert found[("stellar_carbon_read_replicas", (("state", "constrained"),))] == 1
    rule = (("constraint", "topologySpread:topology.kubernetes.io/zone"),)
    assert found[("stellar_carbon_read_replicas_constrained", rule)] == 1
    assert ("stellar_carbon_read_replica_savings_ratio", ()) in found
    assert found[("stellar_carbon_region_data_age_seconds", (("region", "us-west-2"),))] == 1800
    key = (
        "stellar_carbon_provider_errors_total",
        (("kind", "RateLimited"), ("provider", "electricitymaps")),
    )
    assert found[key] == 3
    assert found[("stellar_carbon_snapshot_age_seconds", ())] == 0


async def test_requests_are_counted_by_route_not_by_raw_path(
    reporter_client: ClientFactory,
) -> None:
    client = await reporter_client()
    await client.get("/api/v1/sustainability/regions/us-west-2")
    await client.get("/api/v1/sustainability/regions/nowhere")
    await client.get("/no/such/path/12345")
    await client.request("PROPFIND", "/api/v1/sustainability/metrics")
    found = await scrape(client)
    counted = {
        dict(labels)["route"] + " " + dict(labels)["status"]: value
        for (name, labels), value in found.items()
        if name == "stellar_carbon_reporter_requests_total"
    }
    assert counted["region 200"] == 1
    assert counted["region 404"] == 1
    assert counted["unmatched 404"] == 1
    methods = {
        dict(labels)["method"]
        for (name, labels), _ in found.items()
        if name == "stellar_carbon_reporter_requests_total"
    }
    assert methods == {"GET", "other"}


async def test_view_gauges_are_formatted_once_per_view_and_ages_on_every_scrape(
    reporter_client: ClientFactory,
) -> None:
    now = [NOW]
    source = FixedSnapshot(snapshot(carbon(US_WEST_2, 120), carbon(EUROPE_WEST1, 180)))
    client = await reporter_client(snapshot_source=source, clock=lambda: now[0])
    exposition = client.app[REPORTER].exposition
    age = ("stellar_carbon_region_data_age_seconds", (("region", "us-west-2"),))

    first = await scrape(client)
    now[0] += timedelta(seconds=60)
    second = await scrape(client)
    assert exposition.renders == 1
    assert second[age] == first[age] + 60

    source.snapshot = snapshot(carbon(US_WEST_2, 95), carbon(EUROPE_WEST1, 180))
    third = await scrape(client)
    assert exposition.renders == 2
    assert (intensity_of(first, "us-west-2"), intensity_of(third, "us-west-2")) == (120, 95)


def intensity_of(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], region: str) -> float:
    (value,) = (
        value
        for (name, labels), value in found.items()
        if name == "stellar_carbon_region_intensity_gco2eq_per_kwh"
        and dict(labels)["region"] == region
    )
    return value

"""Per-node footprints: CCF power, PUE and grid intensity, checked by hand from the coefficients."""

from __future__ import annotations

import pytest

from reporter.footprints import node_footprint, node_footprints, node_json
from shared.core.models import Cloud
from tests.unit.reporter.cluster import Catalog, carbon, node, pod, region_info, snapshot

US_EAST_1 = region_info("us-east-1", pue=1.135)


def test_an_8_vcpu_aws_node_at_half_load_on_a_379_g_grid_emits_7_30_g_per_hour() -> None:
    # CCF, AWS: 0.74 W idle and 3.5 W at full load per vCPU; unmeasured utilisation 50 %.
    # 8 x (0.74 + 0.5 x (3.5 - 0.74)) = 16.96 W; 16 GiB is within the 2 GiB/vCPU allowance.
    # 16.96 W / 1000 x 1.135 x 379.069 g/kWh = 7.2969 g/h; x 24 / 1000 = 0.17513 kg/day.
    fp = node_footprint(
        node("n1", "us-east-1", vcpus=8, memory_gib=16),
        snapshot=snapshot(carbon(US_EAST_1, 379.069)),
        catalog=Catalog(),
    )
    assert fp.power.watts == pytest.approx(16.96)
    assert fp.pue == 1.135
    assert fp.emissions is not None
    assert fp.emissions.g_per_hour == pytest.approx(16.96 / 1000 * 1.135 * 379.069)
    assert round(fp.emissions.g_per_hour, 2) == 7.30
    assert fp.emissions.kg_per_day == pytest.approx(7.2969 * 24 / 1000, rel=1e-4)


def test_memory_beyond_two_gib_per_vcpu_adds_0_392_w_per_gib() -> None:
    fp = node_footprint(
        node("n1", "us-east-1", vcpus=4, memory_gib=32),
        snapshot=snapshot(carbon(US_EAST_1, 100)),
        catalog=Catalog(),
    )
    assert fp.power.memory_watts == pytest.approx((32 - 8) * 0.392)
    assert fp.power.watts == pytest.approx(4 * 2.12 + 24 * 0.392)


def test_measured_cpu_usage_replaces_the_fifty_percent_default() -> None:
    fp = node_footprint(
        node("n1", "us-east-1", vcpus=8),
        snapshot=snapshot(carbon(US_EAST_1, 100)),
        catalog=Catalog(),
        usage_millis={"n1": 2000},
    )
    assert fp.power.utilisation == pytest.approx(0.25)
    assert fp.power.utilisation_measured is True
    assert fp.power.watts == pytest.approx(8 * (0.74 + 0.25 * 2.76))


def test_a_region_without_any_intensity_has_power_but_unknown_emissions() -> None:
    fp = node_footprint(
        node("n1", "us-east-1"), snapshot=snapshot(carbon(US_EAST_1, None)), catalog=Catalog()
    )
    assert fp.power.watts > 0
    assert fp.emissions is None
    item = node_json(fp)
    assert item["carbonIntensity"] is None
    assert item["gCO2eqPerHour"] is None
    assert item["kgCO2eqPerDay"] is None


def test_pue_comes_from_the_catalog_when_the_snapshot_does_not_track_the_region() -> None:
    catalog = Catalog(region_info("europe-west1", cloud=Cloud.GCP, pue=1.09))
    fp = node_footprint(
        node("n1", "europe-west1", cloud=Cloud.GCP), snapshot=snapshot(), catalog=catalog
    )
    assert fp.pue == 1.09
    assert fp.emissions is None


def test_an_unknown_cloud_and_region_fall_back_to_on_prem_coefficients_and_pue() -> None:
    fp = node_footprint(node("n1", None, cloud=None), snapshot=snapshot(), catalog=Catalog())
    assert fp.power.method == "ccf-onprem"
    assert fp.pue == 1.5


def test_stellar_pods_are_listed_on_their_node_with_their_role() -> None:
    pods = [
        pod("core-0", "n1", role="validator"),
        pod("read-0", "n1"),
        pod("read-1", None),
        pod("other", "n1", role="nginx"),
    ]
    (fp,) = node_footprints([node("n1", "us-east-1")], pods, snapshot=snapshot(), catalog=Catalog())
    assert [(p.pod.name, p.role) for p in fp.pods] == [
        ("core-0", "validator"),
        ("read-0", "read-replica"),
    ]

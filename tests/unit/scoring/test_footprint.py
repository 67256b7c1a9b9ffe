"""The footprint model: CCF node power, PUE and grid intensity to gCO2eq/h and kgCO2eq/day."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.models import Cloud, RegionInfo
from shared.scoring.footprint import (
    MEMORY_WATTS_PER_GIB,
    ONPREM_DEFAULT_PUE,
    Footprint,
    default_pue,
    estimate_node_power,
    footprint,
    region_pue,
)


def test_the_worked_example_an_8_vcpu_aws_node_at_us_east_1_emits_7_30_g_per_hour() -> None:
    power = estimate_node_power(vcpus=8, memory_gib=16, cloud=Cloud.AWS)
    assert power.watts == pytest.approx(16.96)
    result = footprint(power.watts, default_pue(Cloud.AWS), 379.069)
    assert result.pue == 1.135
    assert result.power_watts * result.pue / 1000 == pytest.approx(0.01925, abs=5e-6)
    assert round(result.g_per_hour, 2) == 7.30
    assert result.kg_per_day * 30 == pytest.approx(5.25, abs=0.005)


def test_unmeasured_utilisation_is_assumed_to_be_half_and_says_so() -> None:
    power = estimate_node_power(vcpus=4, memory_gib=8, cloud=Cloud.AWS)
    assert power.utilisation == 0.5
    assert power.utilisation_measured is False
    assert power.method == "ccf-aws"


def test_measured_utilisation_moves_cpu_power_between_min_and_max_watts() -> None:
    idle = estimate_node_power(vcpus=2, memory_gib=4, cloud=Cloud.AWS, utilisation=0.0)
    busy = estimate_node_power(vcpus=2, memory_gib=4, cloud=Cloud.AWS, utilisation=1.0)
    assert idle.cpu_watts == pytest.approx(2 * 0.74)
    assert busy.cpu_watts == pytest.approx(2 * 3.5)
    assert idle.utilisation_measured
    assert busy.utilisation == 1.0


@pytest.mark.parametrize(
    ("cloud", "per_vcpu", "method"),
    [
        (Cloud.AWS, 0.74 + 0.5 * (3.5 - 0.74), "ccf-aws"),
        (Cloud.GCP, 0.71 + 0.5 * (4.26 - 0.71), "ccf-gcp"),
        (Cloud.AZURE, 0.78 + 0.5 * (3.76 - 0.78), "ccf-azure"),
        (Cloud.ONPREM, (0.7433333 + 3.84) / 2, "ccf-onprem"),
        (None, (0.7433333 + 3.84) / 2, "ccf-onprem"),
    ],
)
def test_each_cloud_uses_its_documented_ccf_coefficients(
    cloud: Cloud | None, per_vcpu: float, method: str
) -> None:
    power = estimate_node_power(vcpus=10, memory_gib=0, cloud=cloud)
    assert power.cpu_watts == pytest.approx(10 * per_vcpu, rel=1e-6)
    assert power.method == method


def test_memory_within_two_gib_per_vcpu_adds_no_power() -> None:
    power = estimate_node_power(vcpus=8, memory_gib=16, cloud=Cloud.GCP)
    assert power.memory_watts == 0
    assert power.watts == power.cpu_watts


def test_memory_above_two_gib_per_vcpu_adds_0_392_watts_per_gib() -> None:
    power = estimate_node_power(vcpus=8, memory_gib=32, cloud=Cloud.AWS)
    assert power.memory_watts == pytest.approx(16 * MEMORY_WATTS_PER_GIB)
    assert power.watts == pytest.approx(16.96 + 6.272)


def test_provider_default_pues_are_the_ccf_ones() -> None:
    assert default_pue(Cloud.AWS) == 1.135
    assert default_pue(Cloud.GCP) == 1.1
    assert default_pue(Cloud.AZURE) == 1.185


def test_on_prem_and_unknown_clouds_use_the_configurable_on_prem_pue() -> None:
    assert default_pue(Cloud.ONPREM) == ONPREM_DEFAULT_PUE == 1.5
    assert default_pue(None) == 1.5
    assert default_pue(Cloud.ONPREM, onprem=1.3) == 1.3
    assert default_pue(Cloud.AWS, onprem=1.3) == 1.135
    with pytest.raises(ValueError, match="onprem"):
        default_pue(None, onprem=0.8)


def test_a_region_published_pue_wins_over_the_provider_default() -> None:
    published = RegionInfo(cloud=Cloud.GCP, region="europe-west1", zone="BE", pue=1.09)
    unpublished = RegionInfo(cloud=Cloud.AZURE, region="westus", zone="US-CAL-CISO")
    assert region_pue(published) == 1.09
    assert region_pue(unpublished) == 1.185
    assert region_pue(RegionInfo(cloud=Cloud.ONPREM, region="dc1", zone="FR"), onprem=1.6) == 1.6


def test_kilograms_per_day_are_grams_per_hour_over_a_day() -> None:
    result = footprint(1000, 1.2, 250)
    assert result == Footprint(
        power_watts=1000, pue=1.2, g_per_kwh=250, g_per_hour=300.0, kg_per_day=7.2
    )


def test_no_power_or_a_carbon_free_grid_emits_nothing() -> None:
    assert footprint(0, 1.1, 400).g_per_hour == 0
    assert footprint(50, 1.1, 0).kg_per_day == 0


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"power_watts": -1.0, "pue": 1.1, "g_per_kwh": 100.0}, "power_watts"),
        ({"power_watts": math.nan, "pue": 1.1, "g_per_kwh": 100.0}, "power_watts"),
        ({"power_watts": 10.0, "pue": 0.9, "g_per_kwh": 100.0}, "pue"),
        ({"power_watts": 10.0, "pue": math.inf, "g_per_kwh": 100.0}, "pue"),
        ({"power_watts": 10.0, "pue": 1.1, "g_per_kwh": -3.0}, "g_per_kwh"),
        ({"power_watts": 10.0, "pue": 1.1, "g_per_kwh": math.nan}, "g_per_kwh"),
    ],
)
def test_footprint_rejects_negative_and_non_finite_inputs(
    arguments: dict[str, float], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        footprint(**arguments)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [
        ({"vcpus": -2.0, "memory_gib": 8.0}, "vcpus"),
        ({"vcpus": math.nan, "memory_gib": 8.0}, "vcpus"),
        ({"vcpus": 2.0, "memory_gib": -1.0}, "memory_gib"),
        ({"vcpus": 2.0, "memory_gib": math.inf}, "memory_gib"),
        ({"vcpus": 2.0, "memory_gib": 8.0, "utilisation": 1.5}, "utilisation"),
        ({"vcpus": 2.0, "memory_gib": 8.0, "utilisation": -0.1}, "utilisation"),
        ({"vcpus": 2.0, "memory_gib": 8.0, "utilisation": math.nan}, "utilisation"),
    ],
)
def test_node_power_rejects_negative_and_non_finite_inputs(
    arguments: dict[str, float], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        estimate_node_power(cloud=Cloud.AWS, **arguments)


def test_estimates_are_immutable_values() -> None:
    power = estimate_node_power(vcpus=1, memory_gib=1, cloud=Cloud.AWS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        power.watts = 0.0  # type: ignore[misc]


@given(
    vcpus=st.floats(min_value=0, max_value=512),
    memory=st.floats(min_value=0, max_value=4096),
    low=st.floats(min_value=0, max_value=1),
    high=st.floats(min_value=0, max_value=1),
    cloud=st.sampled_from([*Cloud, None]),
)
def test_more_utilisation_never_means_less_power(
    vcpus: float, memory: float, low: float, high: float, cloud: Cloud | None
) -> None:
    low, high = min(low, high), max(low, high)
    less = estimate_node_power(vcpus=vcpus, memory_gib=memory, cloud=cloud, utilisation=low)
    more = estimate_node_power(vcpus=vcpus, memory_gib=memory, cloud=cloud, utilisation=high)
    assert 0 <= less.watts <= more.watts + 1e-9


@given(
    power=st.floats(min_value=0, max_value=1e6),
    pue=st.floats(min_value=1, max_value=3),
    intensity=st.floats(min_value=0, max_value=2000),
)
def test_emissions_scale_with_power_pue_and_intensity(
    power: float, pue: float, intensity: float
) -> None:
    result = footprint(power, pue, intensity)
    assert result.g_per_hour == pytest.approx(power * pue * intensity / 1000)
    assert result.kg_per_day == pytest.approx(result.g_per_hour * 0.024)

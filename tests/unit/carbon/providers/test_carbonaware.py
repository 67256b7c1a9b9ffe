"""The Carbon Aware SDK provider against a fake Carbon Aware SDK WebAPI on loopback."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.carbonaware import CarbonAwareSdkProvider, LocationNaming
from shared.core.clock import fixed
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderUnavailable,
    UnknownZone,
)
from shared.core.models import Cloud, RegionInfo
from tests.fakes.carbonaware import NOW, FakeCarbonAwareSdk, Location, Mode
from tests.unit.carbon.providers.closing import Closing

EASTUS = RegionInfo(
    cloud=Cloud.AZURE, region="eastus", zone="US-MIDA-PJM", watttime_region="PJM_DC"
)
WESTUS = RegionInfo(
    cloud=Cloud.AZURE, region="westus", zone="US-CAL-CISO", watttime_region="CAISO_NORTH"
)
HOUR = NOW.replace(minute=0)


@pytest.fixture
def provider(fake_carbon_aware_sdk: FakeCarbonAwareSdk, closing: Closing) -> CarbonAwareSdkProvider:
    return closing(CarbonAwareSdkProvider(fake_carbon_aware_sdk.base_url, clock=fixed(NOW)))


def test_provider_implements_the_carbon_provider_protocol() -> None:
    sdk = CarbonAwareSdkProvider("http://127.0.0.1:1")
    assert isinstance(sdk, CarbonProvider)
    assert sdk.name == "carbon-aware-sdk"


@pytest.mark.parametrize(
    ("naming", "key"),
    [("region", "eastus"), ("zone", "US-MIDA-PJM"), ("watttime", "PJM_DC")],
)
def test_location_key_follows_the_configured_naming(naming: LocationNaming, key: str) -> None:
    sdk = CarbonAwareSdkProvider("http://127.0.0.1:1", location_naming=naming)
    assert sdk.location_key(EASTUS) == key


def test_an_unknown_naming_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="location_naming"):
        CarbonAwareSdkProvider("http://127.0.0.1:1", location_naming="city")  # type: ignore[arg-type]


async def test_current_intensity_is_the_newest_observation_with_provenance(
    provider: CarbonAwareSdkProvider,
) -> None:
    intensity = await provider.current(EASTUS)

    assert intensity.zone == "eastus"
    assert intensity.g_per_kwh == pytest.approx(392.4 * 0.99, abs=0.01)
    assert intensity.observed_at == HOUR
    assert intensity.estimated is False
    assert intensity.renewable_pct is None
    assert intensity.provenance.provider == "carbon-aware-sdk"
    assert intensity.provenance.fetched_at == NOW


async def test_current_asks_for_the_recent_window_of_one_location(
    provider: CarbonAwareSdkProvider, fake_carbon_aware_sdk: FakeCarbonAwareSdk
) -> None:
    await provider.current(WESTUS)

    assert fake_carbon_aware_sdk.queries == [
        {
            "location": ["westus"],
            "time": ["2026-11-26T10:20:00Z"],
            "toTime": ["2026-11-26T12:20:00Z"],
        }
    ]


async def test_a_location_named_by_zone_is_asked_for_by_its_zone(
    fake_carbon_aware_sdk: FakeCarbonAwareSdk,
    closing: Closing,
) -> None:
    fake_carbon_aware_sdk.locations["US-MIDA-PJM"] = Location("US-MIDA-PJM", 321.0)
    sdk = closing(
        CarbonAwareSdkProvider(
            fake_carbon_aware_sdk.base_url, location_naming="zone", clock=fixed(NOW)
        )
    )
    intensity = await sdk.current(EASTUS)

    assert intensity.zone == "US-MIDA-PJM"
    assert intensity.g_per_kwh == 321.0


async def test_a_region_without_a_name_in_the_naming_is_unknown_without_a_request(
    fake_carbon_aware_sdk: FakeCarbonAwareSdk,
    closing: Closing,
) -> None:
    sdk = closing(
        CarbonAwareSdkProvider(fake_carbon_aware_sdk.base_url, location_naming="watttime")
    )
    onprem = RegionInfo(cloud=Cloud.ONPREM, region="basement", zone="DE")
    assert sdk.location_key(onprem) is None
    with pytest.raises(UnknownZone):
        await sdk.current(onprem)

    assert fake_carbon_aware_sdk.total_requests == 0


async def test_a_location_the_sdk_does_not_know_is_an_unknown_zone(
    provider: CarbonAwareSdkProvider,
) -> None:
    nowhere = RegionInfo(cloud=Cloud.AZURE, region="atlantis", zone=None)

    with pytest.raises(UnknownZone, match="Unknown Location"):
        await provider.current(nowhere)
    with pytest.raises(UnknownZone, match="Unknown Location"):
        await provider.forecast(nowhere, hours=24)


async def test_an_empty_window_is_a_bad_response(
    provider: CarbonAwareSdkProvider, fake_carbon_aware_sdk: FakeCarbonAwareSdk
) -> None:
    fake_carbon_aware_sdk.set_mode(Mode.EMPTY, "emissions")

    with pytest.raises(BadResponse, match="no emissions data"):
        await provider.current(EASTUS)


async def test_an_unknown_newest_rating_falls_back_to_the_newest_known_one(
    provider: CarbonAwareSdkProvider, fake_carbon_aware_sdk: FakeCarbonAwareSdk
) -> None:
    fake_carbon_aware_sdk.set_mode(Mode.NEWEST_UNKNOWN, "emissions")

    intensity = await provider.current(EASTUS)

    assert intensity.observed_at == HOUR - timedelta(hours=1)
    assert intensity.g_per_kwh == pytest.approx(392.4 * 0.98, abs=0.01)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [(Mode.ALL_UNKNOWN, "no observation with a known rating"), (Mode.TEXT_RATING, "number")],
)
async def test_unusable_ratings_are_a_bad_response_never_zero(
    provider: CarbonAwareSdkProvider,
    fake_carbon_aware_sdk: FakeCarbonAwareSdk,
    mode: Mode,
    reason: str,
) -> None:
    fake_carbon_aware_sdk.set_mode(mode, "emissions")

    with pytest.raises(BadResponse, match=reason):
        await provider.current(EASTUS)


async def test_forecast_points_carry_the_duration_the_sdk_gives_in_minutes(
    provider: CarbonAwareSdkProvider, fake_carbon_aware_sdk: FakeCarbonAwareSdk
) -> None:
    forecast = await provider.forecast(WESTUS, hours=6)

    assert fake_carbon_aware_sdk.queries == [{"location": ["westus"]}]
    assert forecast.zone == "westus"
    assert forecast.generated_at == NOW - timedelta(minutes=3)
    assert forecast.provenance.provider == "carbon-aware-sdk"
    assert len(forecast.points) == 6 * 12
    assert {p.duration for p in forecast.points} == {timedelta(minutes=5)}
    assert forecast.points[0].starts_at == NOW + timedelta(minutes=5)
    assert forecast.points[0].g_per_kwh == pytest.approx(226.0 * 1.28)


async def test_hourly_forecast_points_keep_their_hour(
    provider: CarbonAwareSdkProvider, fake_carbon_aware_sdk: FakeCarbonAwareSdk
) -> None:
    fake_carbon_aware_sdk.forecast_step = timedelta(hours=1)

    forecast = await provider.forecast(EASTUS, hours=24)

    assert len(forecast.points) == 24
    assert {p.duration for p in forecast.points} == {timedelta(hours=1)}


async def test_a_data_source_that_cannot_forecast_gives_no_forecast(
    provider: CarbonAwareSdkProvider, fake_carbon_aware_sdk: FakeCarbonAwareSdk
) -> None:
    fake_carbon_aware_sdk.set_mode(Mode.NOT_IMPLEMENTED, "forecast")

    with pytest.raises(NoForecast):
        await provider.forecast(EASTUS, hours=24)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (Mode.EMPTY, "no forecast point"),
        (Mode.ALL_UNKNOWN, "no forecast point"),
        (Mode.TEXT_RATING, "number"),
        (Mode.MALFORMED, "not JSON"),
    ],
)
async def test_an_unusable_forecast_is_a_bad_response(
    provider: CarbonAwareSdkProvider,
    fake_carbon_aware_sdk: FakeCarbonAwareSdk,
    mode: Mode,
    reason: str,
) -> None:
    fake_carbon_aware_sdk.set_mode(mode, "forecast")

    with pytest.raises(BadResponse, match=reason):
        await provider.forecast(EASTUS, hours=24)


async def test_a_base_url_without_the_sdk_routes_is_an_outage_not_an_unknown_zone(
    fake_carbon_aware_sdk: FakeCarbonAwareSdk,
    closing: Closing,
) -> None:
    sdk = closing(CarbonAwareSdkProvider(f"{fake_carbon_aware_sdk.base_url}/api/v1"))
    with pytest.raises(ProviderUnavailable, match="HTTP 404"):
        await sdk.current(EASTUS)

"""The static provider: annual averages from the region catalog, clearly marked as such."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.static import StaticProvider
from shared.core.clock import fixed
from shared.core.errors import NoForecast, UnknownZone
from shared.core.models import Cloud, Freshness, RegionInfo
from shared.regions.catalog import RegionCatalog

NOW = datetime(2026, 7, 4, 15, 30, tzinfo=UTC)


@pytest.fixture
def provider() -> StaticProvider:
    return StaticProvider(clock=fixed(NOW))


def region(name: str, cloud: Cloud) -> RegionInfo:
    info = RegionCatalog.load().resolve(name, cloud)
    assert info is not None
    return info


def test_the_static_provider_is_a_carbon_provider(provider: StaticProvider) -> None:
    assert isinstance(provider, CarbonProvider)
    assert provider.name == "static"


async def test_current_is_the_catalog_annual_average_marked_static(
    provider: StaticProvider,
) -> None:
    reading = await provider.current(region("us-east-1", Cloud.AWS))
    assert reading.zone == "US-MIDA-PJM"
    assert reading.g_per_kwh == pytest.approx(396.25)
    assert reading.provenance.provider == "static"
    assert reading.provenance.freshness is Freshness.STATIC
    assert reading.provenance.fetched_at == NOW
    assert reading.provenance.label == "static"
    assert reading.stale
    assert reading.estimated
    assert reading.renewable_pct is None


async def test_a_catalog_value_is_observed_at_the_start_of_the_year_it_averages(
    provider: StaticProvider,
) -> None:
    reading = await provider.current(region("europe-west1", Cloud.GCP))
    assert reading.observed_at == datetime(2023, 1, 1, tzinfo=UTC)


async def test_a_value_without_a_year_is_observed_at_the_start_of_the_current_year(
    provider: StaticProvider,
) -> None:
    custom = RegionInfo(cloud=Cloud.ONPREM, region="dc1", zone="FR", annual_g_per_kwh=52.9)
    reading = await provider.current(custom)
    assert reading.observed_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert reading.g_per_kwh == pytest.approx(52.9)


async def test_a_region_without_a_zone_is_served_under_its_own_key(
    provider: StaticProvider,
) -> None:
    berlin = region("europe-west10", Cloud.GCP)
    reading = await provider.current(berlin)
    assert reading.zone == "gcp/europe-west10"
    assert provider.location_key(berlin) == "gcp/europe-west10"


async def test_a_region_without_an_annual_value_is_an_unknown_zone(
    provider: StaticProvider,
) -> None:
    mexico = region("mexicocentral", Cloud.AZURE)
    with pytest.raises(UnknownZone, match="azure/mexicocentral") as caught:
        await provider.current(mexico)
    assert caught.value.provider == "static"
    assert provider.location_key(mexico) is None


def test_regions_are_keyed_by_region_not_zone(provider: StaticProvider) -> None:
    east, east2 = region("eastus", Cloud.AZURE), region("eastus2", Cloud.AZURE)
    assert provider.location_key(east) == "azure/eastus"
    assert provider.location_key(east2) == "azure/eastus2"


async def test_the_static_provider_has_no_forecast(provider: StaticProvider) -> None:
    with pytest.raises(NoForecast):
        await provider.forecast(region("us-west-2", Cloud.AWS), 24)


async def test_closing_the_static_provider_is_harmless(provider: StaticProvider) -> None:
    await provider.close()
    reading = await provider.current(region("us-west-2", Cloud.AWS))
    assert reading.g_per_kwh == pytest.approx(119.76)

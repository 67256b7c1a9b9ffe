"""The mock provider: reproducible, and shaped like the real grids it stands in for."""

from __future__ import annotations

import csv
import gzip
import json
import math
import statistics
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from shared.carbon.profiles import SYNTHETIC_PROFILES, measured_profiles, shape_for_zone
from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.mock import FLOOR_G_PER_KWH, MAX_FORECAST_HOURS, MockProvider
from shared.core.clock import fixed
from shared.core.errors import UnknownZone
from shared.core.models import Cloud, Freshness, RegionInfo
from tools import derive_profiles

# Catalog-like regions built by hand: annual values are the 2023 grid averages the catalog carries.
CALIFORNIA = RegionInfo(
    Cloud.AZURE, "westus", "US-CAL-CISO", latitude=37.78, longitude=-122.42, annual_g_per_kwh=261.28
)
VIRGINIA = RegionInfo(
    Cloud.AWS, "us-east-1", "US-MIDA-PJM", latitude=39.1, longitude=-77.55, annual_g_per_kwh=396.25
)
SINGAPORE = RegionInfo(
    Cloud.AWS, "ap-southeast-1", "SG", latitude=1.3, longitude=103.8, annual_g_per_kwh=487.52
)
LONDON = RegionInfo(Cloud.AWS, "eu-west-2", "GB", latitude=51.5, longitude=-0.13)
FRANKFURT = RegionInfo(
    Cloud.AWS, "eu-central-1", "DE", latitude=50.11, longitude=8.68, annual_g_per_kwh=370.93
)
OREGON = RegionInfo(
    Cloud.AWS, "us-west-2", "US-NW-BPAT", latitude=45.5, longitude=-122.65, annual_g_per_kwh=119.76
)
IRELAND = RegionInfo(
    Cloud.AWS, "eu-west-1", "IE", latitude=53.35, longitude=-6.26, annual_g_per_kwh=403.4
)

MEASURED_ZONES = {
    "AU-NSW", "AU-VIC", "BR-SP", "CA-ON", "CL-SIC", "DE-LU", "GB", "IN-WE",
    "JP-TK", "KR", "SG", "US-CAL-CISO", "US-MIDA-PJM", "US-NY-NYIS", "US-TEX-ERCO", "ZA",
}  # fmt: skip

SPRING = datetime(2026, 4, 1, tzinfo=UTC)


async def value_at(region: RegionInfo, at: datetime, seed: int = 0) -> float:
    reading = await MockProvider(clock=fixed(at), seed=seed).current(region)
    return reading.g_per_kwh


async def local_day(region: RegionInfo, local_midnight_utc: datetime) -> list[float]:
    """The 24 hourly values of one local day, given that day's midnight expressed in UTC."""
    return [await value_at(region, local_midnight_utc + timedelta(hours=h)) for h in range(24)]


async def test_the_same_time_and_seed_give_the_same_answers_twice_and_across_instances() -> None:
    clock = fixed(datetime(2026, 6, 3, 14, 25, tzinfo=UTC))
    first, second = MockProvider(clock=clock, seed=7), MockProvider(clock=clock, seed=7)

    assert await first.current(CALIFORNIA) == await first.current(CALIFORNIA)
    assert await first.current(CALIFORNIA) == await second.current(CALIFORNIA)
    assert await first.forecast(LONDON, 24) == await second.forecast(LONDON, 24)


async def test_different_seeds_give_different_noise() -> None:
    hours = [SPRING + timedelta(hours=h) for h in range(24)]
    seed_0 = [await value_at(FRANKFURT, at, seed=0) for at in hours]
    seed_1 = [await value_at(FRANKFURT, at, seed=1) for at in hours]

    assert sum(a != b for a, b in zip(seed_0, seed_1, strict=True)) >= 20


async def test_adjacent_hours_are_correlated_rather_than_independent_noise() -> None:
    # Two seeds share the daily shape, so their difference is noise alone.
    hours = [SPRING + timedelta(hours=h) for h in range(24 * 20)]
    noise = [await value_at(FRANKFURT, at, 0) - await value_at(FRANKFURT, at, 1) for at in hours]

    assert statistics.correlation(noise[:-1], noise[1:]) > 0.8


async def test_the_provider_satisfies_the_provider_protocol_and_names_itself() -> None:
    provider = MockProvider()

    assert isinstance(provider, CarbonProvider)
    assert provider.name == "mock"
    assert provider.location_key(CALIFORNIA) == "US-CAL-CISO"
    await provider.close()


async def test_a_reading_is_a_live_estimated_mock_value_for_the_current_hour() -> None:
    now = datetime(2026, 6, 3, 14, 25, 9, tzinfo=UTC)

    reading = await MockProvider(clock=fixed(now)).current(FRANKFURT)

    assert reading.zone == "DE"
    assert reading.observed_at == datetime(2026, 6, 3, 14, tzinfo=UTC)
    assert reading.provenance.provider == "mock"
    assert reading.provenance.fetched_at == now
    assert reading.provenance.freshness is Freshness.LIVE
    assert reading.estimated
    assert reading.renewable_pct is not None
    assert 0 <= reading.renewable_pct <= 100


async def test_california_midday_is_cleaner_than_its_evening_on_spring_and_summer_days() -> None:
    for day in range(0, 150, 3):
        # 12:00 local is 20:00 UTC; 19:00 and 20:00 local are 03:00 and 04:00 UTC the next day.
        local_noon = SPRING + timedelta(days=day, hours=20)
        midday = await value_at(CALIFORNIA, local_noon)
        evening = [await value_at(CALIFORNIA, local_noon + timedelta(hours=h)) for h in (7, 8)]

        assert midday < 0.75 * min(evening), local_noon


async def test_california_is_greener_at_midday_than_at_night() -> None:
    noon = await MockProvider(clock=fixed(SPRING + timedelta(hours=20))).current(CALIFORNIA)
    night = await MockProvider(clock=fixed(SPRING + timedelta(hours=11))).current(CALIFORNIA)

    assert noon.renewable_pct is not None
    assert night.renewable_pct is not None
    assert noon.renewable_pct > night.renewable_pct + 15


async def test_pjm_stays_nearly_flat_through_the_day() -> None:
    ratios = []
    for day in range(0, 60, 2):
        values = await local_day(VIRGINIA, SPRING + timedelta(days=day, hours=5))
        ratios.append(max(values) / min(values))

    assert statistics.median(ratios) < 1.25
    assert max(ratios) < 1.5


async def test_singapore_stays_flat_through_the_day() -> None:
    ratios = []
    for day in range(0, 60, 2):
        values = await local_day(SINGAPORE, SPRING + timedelta(days=day, hours=-8))
        ratios.append(max(values) / min(values))

    assert statistics.median(ratios) < 1.12


async def test_britain_peaks_in_the_evening_above_its_early_afternoon() -> None:
    afternoon, evening = [], []
    for day in range(0, 120, 2):
        midnight = SPRING + timedelta(days=day)
        afternoon += [await value_at(LONDON, midnight + timedelta(hours=h)) for h in (13, 14)]
        evening += [await value_at(LONDON, midnight + timedelta(hours=h)) for h in (18, 19)]

    assert statistics.fmean(evening) > 1.15 * statistics.fmean(afternoon)


async def test_a_zone_without_data_borrows_a_similar_grid_and_claims_no_renewable_share() -> None:
    # Ireland is modelled like Germany: wind and solar, so a midday dip (lon -6 → UTC+0).
    midday, night = [], []
    for day in range(0, 90, 3):
        midnight = SPRING + timedelta(days=day)
        midday.append(await value_at(IRELAND, midnight + timedelta(hours=12)))
        night.append(await value_at(IRELAND, midnight + timedelta(hours=3)))
    reading = await MockProvider(clock=fixed(SPRING)).current(IRELAND)

    assert statistics.fmean(midday) < 0.85 * statistics.fmean(night)
    assert reading.renewable_pct is None
    assert shape_for_zone("IE").profile.name == "DE-LU"
    assert not shape_for_zone("IE").own_data


async def test_hydro_zones_stay_within_a_narrow_band() -> None:
    values = await local_day(OREGON, SPRING + timedelta(hours=8))

    assert max(values) / min(values) < 1.3
    assert shape_for_zone("US-NW-BPAT").profile.name == "hydro"


def test_zones_are_matched_to_their_own_data_then_the_longest_borrowed_prefix() -> None:
    assert shape_for_zone("DE").own_data
    assert shape_for_zone("DE").profile.name == "DE-LU"
    assert shape_for_zone("US-NW-NEVP").profile.name == "US-CAL-CISO"
    assert shape_for_zone("US-MIDW-MISO").profile.name == "US-MIDA-PJM"
    assert shape_for_zone("TW").profile.name == "US-MIDA-PJM"
    assert shape_for_zone("IT-NO").profile.name == "DE-LU"
    assert shape_for_zone("AU-QLD").profile.name == "AU-NSW"
    assert shape_for_zone("XX-NOWHERE").profile.name == "generic"


async def test_an_unknown_zone_peaks_in_the_evening_of_its_longitude() -> None:
    east = RegionInfo(Cloud.ONPREM, "dc-east", None, longitude=120.0, annual_g_per_kwh=300.0)
    totals = [0.0] * 24
    for day in range(60):
        for hour in range(24):
            totals[hour] += await value_at(east, SPRING + timedelta(days=day, hours=hour))
    peak_utc_hour = max(range(24), key=totals.__getitem__)

    # The generic shape peaks around 19:00 local; at UTC+8 that is around 11:00 UTC.
    assert 9 <= peak_utc_hour <= 13


async def test_a_region_without_an_annual_value_uses_its_zones_measured_mean() -> None:
    values = [await value_at(LONDON, SPRING + timedelta(hours=h)) for h in range(0, 8760, 7)]

    assert statistics.fmean(values) == pytest.approx(162.7, rel=0.10)


@pytest.mark.parametrize("region", [CALIFORNIA, VIRGINIA, FRANKFURT, OREGON, IRELAND])
async def test_a_years_mean_is_close_to_the_regions_annual_value(region: RegionInfo) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    values = [await value_at(region, start + timedelta(hours=h)) for h in range(0, 8760, 7)]

    assert statistics.fmean(values) == pytest.approx(region.annual_g_per_kwh, rel=0.10)


async def test_values_are_never_zero_or_negative() -> None:
    almost_clean = RegionInfo(Cloud.ONPREM, "hydro-dam", "NO", annual_g_per_kwh=0.4)
    regions = [CALIFORNIA, FRANKFURT, LONDON, almost_clean]
    for hour in range(0, 8760, 11):
        at = SPRING + timedelta(hours=hour)
        for region in regions:
            assert await value_at(region, at) >= FLOOR_G_PER_KWH
    forecast = await MockProvider(clock=fixed(SPRING)).forecast(almost_clean, MAX_FORECAST_HOURS)
    assert min(point.g_per_kwh for point in forecast.points) >= FLOOR_G_PER_KWH


async def test_a_region_with_no_annual_value_and_no_data_cannot_be_served() -> None:
    unknown = RegionInfo(Cloud.ONPREM, "basement", None)
    provider = MockProvider(clock=fixed(SPRING))

    assert provider.location_key(unknown) is None
    with pytest.raises(UnknownZone, match="onprem/basement"):
        await provider.current(unknown)
    with pytest.raises(UnknownZone):
        await provider.forecast(unknown, 24)


async def test_regions_sharing_a_zone_share_its_location_key_and_values() -> None:
    eastus = RegionInfo(Cloud.AZURE, "eastus", "US-MIDA-PJM", annual_g_per_kwh=396.25)
    provider = MockProvider(clock=fixed(SPRING))

    assert provider.location_key(eastus) == provider.location_key(VIRGINIA)
    assert (await provider.current(eastus)).g_per_kwh == (
        await provider.current(VIRGINIA)
    ).g_per_kwh


async def test_forecast_points_are_hourly_from_the_next_full_hour() -> None:
    now = datetime(2026, 6, 3, 14, 25, tzinfo=UTC)

    forecast = await MockProvider(clock=fixed(now)).forecast(CALIFORNIA, 24)

    assert forecast.zone == "US-CAL-CISO"
    assert forecast.generated_at == datetime(2026, 6, 3, 14, tzinfo=UTC)
    assert [p.starts_at for p in forecast.points] == [
        datetime(2026, 6, 3, 15, tzinfo=UTC) + timedelta(hours=h) for h in range(24)
    ]
    assert all(p.duration == timedelta(hours=1) for p in forecast.points)
    assert forecast.provenance.provider == "mock"
    assert forecast.provenance.fetched_at == now


async def test_forecast_length_is_clamped_to_what_the_mock_offers() -> None:
    provider = MockProvider(clock=fixed(SPRING))

    assert (await provider.forecast(LONDON, 0)).points == ()
    assert len((await provider.forecast(LONDON, 10_000)).points) == MAX_FORECAST_HOURS


async def forecast_errors(region: RegionInfo, leads: tuple[int, ...]) -> dict[int, list[float]]:
    """Relative errors (forecast / later actual - 1) by lead, over many issue times."""
    errors: dict[int, list[float]] = {lead: [] for lead in leads}
    for issue in range(120):
        issued_at = SPRING + timedelta(hours=issue * 37)
        forecast = await MockProvider(clock=fixed(issued_at)).forecast(region, max(leads))
        for lead in leads:
            point = forecast.points[lead - 1]
            actual = await value_at(region, point.starts_at)
            errors[lead].append(point.g_per_kwh / actual - 1)
    return errors


async def test_forecast_error_grows_with_lead_time() -> None:
    errors = await forecast_errors(CALIFORNIA, (1, 6, 24))
    mean_abs = {lead: statistics.fmean(abs(e) for e in values) for lead, values in errors.items()}

    assert mean_abs[1] < mean_abs[6] < mean_abs[24]
    assert mean_abs[24] > 2 * mean_abs[1]
    assert mean_abs[1] < 0.05


async def test_forecast_tracks_the_later_actuals() -> None:
    issued_at = datetime(2026, 5, 10, 6, tzinfo=UTC)
    forecasted, actual = [], []
    for issue in range(0, 30 * 24, 24):
        forecast = await MockProvider(clock=fixed(issued_at + timedelta(hours=issue))).forecast(
            CALIFORNIA, 24
        )
        for point in forecast.points:
            forecasted.append(point.g_per_kwh)
            actual.append(await value_at(CALIFORNIA, point.starts_at))

    assert statistics.correlation(forecasted, actual) > 0.9


def test_the_derived_profiles_load_and_cover_all_sixteen_measured_zones() -> None:
    profiles = measured_profiles()

    assert set(profiles) == MEASURED_ZONES
    for profile in profiles.values():
        assert profile.measured
        assert profile.annual_mean_g is not None
        assert profile.annual_mean_g > 0
        assert statistics.fmean(profile.monthly_level) == pytest.approx(1.0, abs=0.03)
        for month in profile.hourly_multipliers:
            assert statistics.fmean(month) == pytest.approx(1.0, abs=0.001)
    assert profiles["US-CAL-CISO"].utc_offset_hours == -8
    assert profiles["IN-WE"].utc_offset_hours == 5.5


def test_the_derived_profiles_carry_the_odbl_attribution() -> None:
    raw = (resources.files("shared") / "data" / "grid-profiles-2024.json").read_text("utf-8")

    assert "Open Database License (ODbL 1.0)" in json.loads(raw)["attribution"]


def test_synthetic_shapes_average_to_one() -> None:
    for profile in SYNTHETIC_PROFILES.values():
        assert statistics.fmean(profile.hourly_multipliers[0]) == pytest.approx(1.0)
        assert not profile.measured


def write_zone_file(folder: Path, zone: str, base: float) -> None:
    """A year of synthetic hourly data in the Electricity Maps dataset layout."""
    header = [
        "Datetime (UTC)", "Country", "Zone Name", "Zone Id",
        "Carbon Intensity gCO₂eq/kWh (direct)", "Carbon Intensity gCO₂eq/kWh (LCA)",
        "Low Carbon Percentage", "Renewable Percentage", "Data Source", "Data Estimated",
        "Data Estimation Method",
    ]  # fmt: skip
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with (folder / f"{zone}_2024_hourly.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for hour in range(366 * 24):
            at = start + timedelta(hours=hour)
            lca = base * (1 + 0.2 * math.sin(2 * math.pi * at.hour / 24)) * (1 + 0.01 * (hour % 7))
            row = [at.strftime("%Y-%m-%d %H:%M:%S"), "X", zone, zone, f"{0.8 * lca:.2f}"]
            writer.writerow([*row, f"{lca:.2f}", "50", "40", "test", "false", ""])


def test_the_derivation_tool_summarises_hourly_files_into_profiles_and_a_slim_copy(
    tmp_path: Path,
) -> None:
    source, output = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    write_zone_file(source, "GB", 200.0)
    write_zone_file(source, "SG", 500.0)

    assert derive_profiles.main([str(source), "--output-dir", str(output)]) == 0

    document = json.loads((output / "grid-profiles-2024.json").read_text("utf-8"))
    assert set(document["zones"]) == {"GB", "SG"}
    assert "ODbL" in document["attribution"]
    gb = document["zones"]["GB"]
    assert gb["annual_mean_g"] == pytest.approx(200 * 1.03, rel=0.01)
    assert gb["hourly_multipliers"][0][6] == pytest.approx(1.2, abs=0.01)
    assert gb["renewable_pct"][5][12] == 40
    with gzip.open(output / "electricitymaps-hourly-2024.csv.gz", "rt", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 366 * 24
    assert set(rows[0]) == {
        "zone", "datetime_utc", "lca_g_per_kwh", "direct_g_per_kwh", "renewable_pct",
    }  # fmt: skip


def test_the_derivation_tool_refuses_a_zone_it_has_no_utc_offset_for(tmp_path: Path) -> None:
    write_zone_file(tmp_path, "XX", 100.0)

    assert derive_profiles.main([str(tmp_path), "--output-dir", str(tmp_path / "out")]) == 1
    assert (
        derive_profiles.main(
            [str(tmp_path), "--output-dir", str(tmp_path / "out"), "--utc-offset", "XX=3"]
        )
        == 0
    )

"""The Electricity Maps provider against a fake Electricity Maps API on loopback."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta
from email.utils import format_datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.electricitymaps import ElectricityMapsProvider
from shared.core.clock import fixed
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderAuthError,
    ProviderUnavailable,
    RateLimited,
    UnknownZone,
)
from shared.core.models import Cloud, Freshness, RegionInfo
from shared.core.secret import Secret
from tests.fakes.electricitymaps import NOW, TOKEN, FakeElectricityMaps, Mode
from tests.unit.carbon.providers.closing import Closing

FRANKFURT = RegionInfo(cloud=Cloud.AWS, region="eu-central-1", zone="DE")
CALIFORNIA = RegionInfo(cloud=Cloud.AZURE, region="westus", zone="US-CAL-CISO")


def with_token_url(base_url: str, token: str) -> ElectricityMapsProvider:
    return ElectricityMapsProvider(Secret(token), base_url=base_url, clock=fixed(NOW))


@pytest.fixture
def provider(
    fake_electricitymaps: FakeElectricityMaps, closing: Closing
) -> ElectricityMapsProvider:
    return closing(with_token_url(fake_electricitymaps.base_url, TOKEN))


def test_provider_implements_the_carbon_provider_protocol() -> None:
    em = ElectricityMapsProvider(Secret(TOKEN))
    assert isinstance(em, CarbonProvider)
    assert em.name == "electricitymaps"
    assert em.location_key(FRANKFURT) == "DE"


async def test_latest_intensity_is_parsed_with_provenance_and_renewable_share(
    provider: ElectricityMapsProvider,
) -> None:
    intensity = await provider.current(FRANKFURT)

    assert intensity.zone == "DE"
    assert intensity.g_per_kwh == 599
    assert intensity.observed_at == NOW.replace(minute=0)
    assert intensity.estimated is True
    assert intensity.renewable_pct == 33
    assert intensity.provenance.provider == "electricitymaps"
    assert intensity.provenance.fetched_at == NOW
    assert intensity.provenance.freshness is Freshness.LIVE


async def test_every_request_names_the_zone_and_the_emission_factor(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    await provider.current(CALIFORNIA)

    latest, breakdown = fake_electricitymaps.queries
    assert latest == {"zone": "US-CAL-CISO", "emissionFactorType": "lifecycle"}
    assert breakdown == {"zone": "US-CAL-CISO"}


async def test_direct_emission_factor_is_requested_when_configured(
    fake_electricitymaps: FakeElectricityMaps,
    closing: Closing,
) -> None:
    em = closing(
        ElectricityMapsProvider(
            Secret(TOKEN), base_url=fake_electricitymaps.base_url, emission_factor_type="direct"
        )
    )
    await em.current(FRANKFURT)

    assert fake_electricitymaps.queries[0]["emissionFactorType"] == "direct"


def test_an_unknown_emission_factor_type_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="emission_factor_type"):
        ElectricityMapsProvider(Secret(TOKEN), emission_factor_type="marginal")


@pytest.mark.parametrize("mode", [Mode.SERVER_ERROR, Mode.MALFORMED, Mode.NULL_INTENSITY])
async def test_a_failed_power_breakdown_leaves_the_renewable_share_unknown(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps, mode: Mode
) -> None:
    fake_electricitymaps.set_mode(mode, "breakdown")

    intensity = await provider.current(FRANKFURT)

    assert intensity.g_per_kwh == 599
    assert intensity.renewable_pct is None


async def test_a_failed_latest_intensity_does_not_spend_a_power_breakdown_request(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    fake_electricitymaps.set_mode(Mode.SERVER_ERROR, "latest")

    with pytest.raises(ProviderUnavailable):
        await provider.current(FRANKFURT)

    assert fake_electricitymaps.requests["breakdown"] == 0


async def test_forecast_point_duration_is_the_spacing_of_the_first_two_points(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    fake_electricitymaps.forecast_step = timedelta(minutes=15)

    forecast = await provider.forecast(FRANKFURT, hours=6)

    assert {p.duration for p in forecast.points} == {timedelta(minutes=15)}
    assert len(forecast.points) == 6 * 4
    assert forecast.points[0].starts_at == NOW.replace(minute=0)
    assert forecast.points[0].g_per_kwh == 599
    assert [p.starts_at for p in forecast.points] == sorted(p.starts_at for p in forecast.points)


async def test_forecast_is_trimmed_to_the_hours_asked_for_from_the_smallest_horizon_covering_them(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    forecast = await provider.forecast(CALIFORNIA, hours=12)

    assert fake_electricitymaps.queries[-1] == {"zone": "US-CAL-CISO", "horizonHours": "24"}
    assert len(forecast.points) == 12
    assert forecast.points[-1].starts_at == NOW.replace(minute=0) + timedelta(hours=11)
    assert forecast.zone == "US-CAL-CISO"
    assert forecast.generated_at == NOW - timedelta(minutes=8)
    assert forecast.provenance.provider == "electricitymaps"
    assert forecast.provenance.fetched_at == NOW


@pytest.mark.parametrize("mode", [Mode.ROUTE_NOT_AVAILABLE, Mode.ROUTE_FORBIDDEN])
async def test_a_free_tier_token_gets_no_forecast_rather_than_an_auth_error(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps, mode: Mode
) -> None:
    fake_electricitymaps.set_mode(mode, "forecast")

    with pytest.raises(NoForecast) as caught:
        await provider.forecast(FRANKFURT, hours=24)

    assert not isinstance(caught.value, ProviderAuthError)
    assert (await provider.current(FRANKFURT)).g_per_kwh == 599


async def test_a_route_refusal_outside_the_forecast_is_an_auth_error(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    fake_electricitymaps.set_mode(Mode.ROUTE_FORBIDDEN, "latest")

    with pytest.raises(ProviderAuthError):
        await provider.current(FRANKFURT)


async def test_an_invalid_token_is_an_auth_error_that_never_shows_the_token(
    fake_electricitymaps: FakeElectricityMaps, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "em-wrong-token-71c3de0f"
    em = closing(with_token_url(fake_electricitymaps.base_url, wrong))
    with pytest.raises(ProviderAuthError) as on_current:
        await em.current(FRANKFURT)
    with pytest.raises(ProviderAuthError) as on_forecast:
        await em.forecast(FRANKFURT, hours=24)

    for error in (on_current.value, on_forecast.value):
        assert not isinstance(error, NoForecast)
        assert "Invalid auth-token" in str(error)
        assert wrong not in str(error)
        assert wrong not in repr(error)
        assert error.provider == "electricitymaps"
    assert wrong not in repr(em)
    assert wrong not in caplog.text
    assert fake_electricitymaps.requests["latest"] == 1


async def test_an_upstream_body_echoing_the_token_is_scrubbed_from_the_error(
    caplog: pytest.LogCaptureFixture,
    closing: Closing,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = "em-echoed-token-0a9b8c7d"

    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=500, text=f"crash for token {request.headers['auth-token']}")

    app = web.Application()
    app.router.add_get("/v3/carbon-intensity/latest", echo)
    async with TestServer(app) as server:
        em = closing(with_token_url(str(server.make_url("/v3")), token))
        with pytest.raises(ProviderUnavailable) as caught:
            await em.current(FRANKFURT)

    assert "crash for token ***" in str(caught.value)
    assert token not in str(caught.value)
    assert token not in caplog.text


async def test_a_zone_without_data_is_an_unknown_zone(provider: ElectricityMapsProvider) -> None:
    atlantis = RegionInfo(cloud=Cloud.ONPREM, region="atlantis-1", zone="XX-ATL")

    with pytest.raises(UnknownZone):
        await provider.current(atlantis)
    with pytest.raises(UnknownZone):
        await provider.forecast(atlantis, hours=24)


async def test_a_region_without_zone_is_unknown_without_asking_the_api(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    unmapped = RegionInfo(cloud=Cloud.ONPREM, region="basement", zone=None)

    assert provider.location_key(unmapped) is None
    with pytest.raises(UnknownZone):
        await provider.current(unmapped)
    assert fake_electricitymaps.total_requests == 0


async def test_rate_limit_carries_retry_after_given_as_an_http_date(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    fake_electricitymaps.set_mode(Mode.RATE_LIMITED)
    fake_electricitymaps.retry_after = format_datetime(NOW + timedelta(seconds=90), usegmt=True)

    with pytest.raises(RateLimited) as caught:
        await provider.forecast(FRANKFURT, hours=24)

    assert caught.value.retry_after == 90


async def test_a_refused_connection_makes_the_provider_unavailable(closing: Closing) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    em = closing(with_token_url(f"http://127.0.0.1:{port}/v3", TOKEN))
    with pytest.raises(ProviderUnavailable):
        await em.current(FRANKFURT)


@pytest.mark.parametrize(
    ("mode", "reason"),
    [
        (Mode.NULL_INTENSITY, "null"),
        (Mode.NEGATIVE_INTENSITY, "negative"),
        (Mode.TEXT_INTENSITY, "should be a number"),
    ],
)
async def test_an_unusable_latest_intensity_is_a_bad_response_never_zero(
    provider: ElectricityMapsProvider,
    fake_electricitymaps: FakeElectricityMaps,
    mode: Mode,
    reason: str,
) -> None:
    fake_electricitymaps.set_mode(mode, "latest")

    with pytest.raises(BadResponse, match=reason):
        await provider.current(FRANKFURT)


async def test_forecast_drops_null_points_and_keeps_the_spacing(
    provider: ElectricityMapsProvider, fake_electricitymaps: FakeElectricityMaps
) -> None:
    fake_electricitymaps.set_mode(Mode.FORECAST_GAPS, "forecast")

    forecast = await provider.forecast(FRANKFURT, hours=6)

    assert len(forecast.points) == 3
    assert all(p.g_per_kwh > 0 for p in forecast.points)
    assert {p.duration for p in forecast.points} == {timedelta(hours=1)}


@pytest.mark.parametrize(
    ("mode", "reason"),
    [(Mode.NULL_INTENSITY, "no forecast point"), (Mode.NEGATIVE_INTENSITY, "negative")],
)
async def test_an_unusable_forecast_is_a_bad_response(
    provider: ElectricityMapsProvider,
    fake_electricitymaps: FakeElectricityMaps,
    mode: Mode,
    reason: str,
) -> None:
    fake_electricitymaps.set_mode(mode, "forecast")

    with pytest.raises(BadResponse, match=reason):
        await provider.forecast(FRANKFURT, hours=24)


async def test_an_injected_session_is_left_open_for_its_owner(
    fake_electricitymaps: FakeElectricityMaps,
) -> None:
    async with aiohttp.ClientSession() as session:
        em = ElectricityMapsProvider(
            Secret(TOKEN), base_url=fake_electricitymaps.base_url, session=session
        )
        await em.current(FRANKFURT)
        await em.close()

        assert not session.closed
        assert fake_electricitymaps.requests["latest"] == 1


async def test_a_closed_provider_opens_a_new_session_when_used_again(
    provider: ElectricityMapsProvider,
) -> None:
    await provider.current(FRANKFURT)
    await provider.close()

    assert (await provider.current(FRANKFURT)).g_per_kwh == 599

"""The custom HTTP provider (the upstream Stellar-K8s contract) against a fake API on loopback."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.custom_http import CustomHttpProvider
from shared.core.clock import fixed
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderAuthError,
    ProviderUnavailable,
    UnknownZone,
)
from shared.core.models import Cloud, RegionInfo
from shared.core.secret import Secret
from tests.fakes.custom_api import NOW, TOKEN, FakeCustomApi, Mode
from tests.unit.carbon.providers.closing import Closing

SCHEMA = json.loads(
    (Path(__file__).parents[4] / "docs" / "custom-api.schema.json").read_text(encoding="utf-8")
)
HOUR = NOW.replace(minute=0)

OREGON = RegionInfo(cloud=Cloud.AWS, region="us-west-2", zone="US-NW-BPAT")
FRANKFURT = RegionInfo(cloud=Cloud.AWS, region="eu-central-1", zone="DE")
BELGIUM = RegionInfo(cloud=Cloud.GCP, region="europe-west1", zone="BE")
VIRGINIA = RegionInfo(cloud=Cloud.AZURE, region="eastus", zone="US-MIDA-PJM")
EVERY_REGION = (OREGON, FRANKFURT, BELGIUM, VIRGINIA)


def validator(document: str) -> jsonschema.protocols.Validator:
    """A validator for one of the two documents of the published schema."""
    schema = {
        "$schema": SCHEMA["$schema"],
        "$defs": SCHEMA["$defs"],
        "$ref": f"#/$defs/{document}",
    }
    return jsonschema.Draft202012Validator(schema)


class MovableClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def provider(fake_custom_api: FakeCustomApi, closing: Closing) -> CustomHttpProvider:
    return closing(
        CustomHttpProvider(
            fake_custom_api.url, forecast_url=fake_custom_api.forecast_url, clock=fixed(NOW)
        )
    )


def test_provider_implements_the_carbon_provider_protocol() -> None:
    custom = CustomHttpProvider("http://127.0.0.1:1/carbon")
    assert isinstance(custom, CarbonProvider)
    assert custom.name == "http"
    assert custom.location_key(FRANKFURT) == "eu-central-1"


def test_the_schema_is_valid_json_schema_2020_12() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_fake_serves_documents_that_follow_the_published_schema() -> None:
    fake = FakeCustomApi()
    validator("currentDocument").validate(fake.current_document())
    validator("forecastDocument").validate(fake.forecast_document())
    jsonschema.validate(fake.current_document(), SCHEMA)
    fake.set_mode(Mode.NULL_INTENSITY)
    validator("currentDocument").validate(fake.current_document())


async def test_current_intensity_is_read_from_the_region_entry(
    provider: CustomHttpProvider,
) -> None:
    intensity = await provider.current(FRANKFURT)

    assert intensity.zone == "eu-central-1"
    assert intensity.g_per_kwh == 371.0
    assert intensity.renewable_pct == 61.8
    assert intensity.observed_at == HOUR
    assert intensity.estimated is False
    assert intensity.provenance.provider == "http"
    assert intensity.provenance.fetched_at == NOW


async def test_a_region_without_renewable_share_has_none(provider: CustomHttpProvider) -> None:
    assert (await provider.current(BELGIUM)).renewable_pct is None


async def test_many_regions_in_one_refresh_cost_one_request(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    together = await asyncio.gather(*(provider.current(r) for r in EVERY_REGION))
    one_by_one = [await provider.current(r) for r in EVERY_REGION]

    assert [i.g_per_kwh for i in together] == [118.0, 371.0, 178.0, 396.0]
    assert one_by_one == together
    assert fake_custom_api.requests["current"] == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_fetch_for_the_others(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.set_mode(Mode.SLOW, "current")
    leaving = asyncio.create_task(provider.current(OREGON))
    staying = asyncio.create_task(provider.current(OREGON))
    await asyncio.sleep(0.05)  # both are waiting on the one fetch

    leaving.cancel()
    fake_custom_api.release()

    assert (await staying).g_per_kwh == 118.0
    assert leaving.cancelled()
    assert fake_custom_api.requests["current"] == 1


async def test_the_document_is_fetched_again_once_its_cache_time_has_passed(
    fake_custom_api: FakeCustomApi,
    closing: Closing,
) -> None:
    clock = MovableClock(NOW)
    custom = closing(
        CustomHttpProvider(fake_custom_api.url, clock=clock, cache_ttl=timedelta(seconds=30))
    )
    await custom.current(OREGON)
    clock.at = NOW + timedelta(seconds=29)
    await custom.current(OREGON)
    assert fake_custom_api.requests["current"] == 1

    fake_custom_api.regions["us-west-2"].intensity = 95.0
    clock.at = NOW + timedelta(seconds=31)
    refreshed = await custom.current(OREGON)

    assert fake_custom_api.requests["current"] == 2
    assert refreshed.g_per_kwh == 95.0
    assert refreshed.provenance.fetched_at == NOW + timedelta(seconds=31)


async def test_a_failed_fetch_is_shared_by_every_region_and_retried_soon_after(
    fake_custom_api: FakeCustomApi, closing: Closing
) -> None:
    clock = MovableClock(NOW)
    custom = closing(CustomHttpProvider(fake_custom_api.url, clock=clock))
    fake_custom_api.set_mode(Mode.SERVER_ERROR)
    for region in EVERY_REGION:
        with pytest.raises(ProviderUnavailable, match="HTTP 502"):
            await custom.current(region)
    assert fake_custom_api.requests["current"] == 1

    fake_custom_api.set_mode(Mode.OK)
    clock.at = NOW + timedelta(seconds=6)
    recovered = await custom.current(OREGON)

    assert recovered.g_per_kwh == 118.0
    assert fake_custom_api.requests["current"] == 2


async def test_a_region_missing_from_the_document_is_an_unknown_zone(
    provider: CustomHttpProvider,
) -> None:
    with pytest.raises(UnknownZone, match="ap-south-1"):
        await provider.current(RegionInfo(cloud=Cloud.AWS, region="ap-south-1", zone="IN-WE"))


async def test_a_region_is_found_under_one_of_its_aliases(provider: CustomHttpProvider) -> None:
    renamed = RegionInfo(cloud=Cloud.ONPREM, region="fra-dc1", zone="DE", aliases=("eu-central-1",))

    intensity = await provider.current(renamed)

    assert intensity.g_per_kwh == 371.0
    assert intensity.zone == "fra-dc1"


async def test_an_entry_without_timestamp_is_observed_when_fetched(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.documents["current"] = {
        "regions": [{"region": "us-west-2", "carbonIntensity": 120}]
    }

    intensity = await provider.current(OREGON)

    assert intensity.observed_at == NOW
    assert intensity.g_per_kwh == 120


async def test_a_null_intensity_is_a_bad_response_for_that_region_only(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.set_mode(Mode.NULL_INTENSITY, "current")

    with pytest.raises(BadResponse, match="null"):
        await provider.current(OREGON)
    assert (await provider.current(FRANKFURT)).g_per_kwh == 371.0


async def test_a_zero_intensity_is_a_real_value(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.documents["current"] = {
        "regions": [{"region": "us-west-2", "carbonIntensity": 0}]
    }

    assert (await provider.current(OREGON)).g_per_kwh == 0


async def test_the_bearer_token_is_sent_when_configured(
    fake_custom_api: FakeCustomApi, closing: Closing
) -> None:
    fake_custom_api.token = TOKEN
    custom = closing(CustomHttpProvider(fake_custom_api.url, token=Secret(TOKEN), clock=fixed(NOW)))
    assert (await custom.current(OREGON)).g_per_kwh == 118.0


async def test_a_refused_token_is_an_auth_error_that_never_shows_the_token(
    fake_custom_api: FakeCustomApi, caplog: pytest.LogCaptureFixture, closing: Closing
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_custom_api.token = TOKEN
    wrong = "custom-wrong-token-9e8d"
    custom = closing(CustomHttpProvider(fake_custom_api.url, token=Secret(wrong), clock=fixed(NOW)))
    with pytest.raises(ProviderAuthError) as caught:
        await custom.current(OREGON)

    assert "HTTP 401" in str(caught.value)
    assert wrong not in str(caught.value)
    assert wrong not in repr(caught.value)
    assert wrong not in repr(custom)
    assert wrong not in caplog.text


async def test_without_a_forecast_url_there_is_no_forecast_and_no_request(
    fake_custom_api: FakeCustomApi,
    closing: Closing,
) -> None:
    custom = closing(CustomHttpProvider(fake_custom_api.url))
    with pytest.raises(NoForecast):
        await custom.forecast(OREGON, hours=24)

    assert fake_custom_api.requests["forecast"] == 0


async def test_forecast_is_read_from_the_forecast_document_and_trimmed_to_the_hours(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.forecast_step = timedelta(minutes=30)

    forecast = await provider.forecast(FRANKFURT, hours=24)

    assert forecast.zone == "eu-central-1"
    assert forecast.generated_at == NOW - timedelta(minutes=5)
    assert forecast.provenance.provider == "http"
    assert len(forecast.points) == 48
    assert {p.duration for p in forecast.points} == {timedelta(minutes=30)}
    assert forecast.points[0].starts_at == HOUR
    assert forecast.points[0].g_per_kwh == pytest.approx(371.0 * 1.08, abs=0.1)


async def test_forecasts_of_many_regions_cost_one_request(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    await asyncio.gather(*(provider.forecast(r, hours=24) for r in EVERY_REGION))

    assert fake_custom_api.requests["forecast"] == 1


async def test_forecast_points_may_come_in_any_order_and_null_points_are_gaps(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.documents["forecast"] = {
        "regions": [
            {
                "region": "us-west-2",
                "forecast": [
                    {"timestamp": "2026-11-26T14:00:00Z", "carbonIntensity": 130},
                    {"timestamp": "2026-11-26T12:00:00Z", "carbonIntensity": 110},
                    {"timestamp": "2026-11-26T13:00:00+00:00", "carbonIntensity": None},
                ],
            }
        ]
    }

    forecast = await provider.forecast(OREGON, hours=24)

    assert [(p.starts_at.hour, p.g_per_kwh) for p in forecast.points] == [(12, 110), (14, 130)]
    assert {p.duration for p in forecast.points} == {timedelta(hours=1)}
    assert forecast.generated_at == NOW


async def test_a_region_missing_from_the_forecast_document_has_no_forecast(
    provider: CustomHttpProvider,
) -> None:
    with pytest.raises(NoForecast):
        await provider.forecast(RegionInfo(cloud=Cloud.AWS, region="ap-south-1", zone=None), 24)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {},
        {"regions": {}},
        {"regions": [["us-west-2", 118]]},
        {"regions": [{"carbonIntensity": 118}]},
        {"regions": [{"region": "", "carbonIntensity": 118}]},
        {"regions": [{"region": 42, "carbonIntensity": 118}]},
        {"regions": [{"region": "us-west-2"}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": -1}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": "118"}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": True}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": 118, "timestamp": None}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": 118, "timestamp": "today"}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": 1, "timestamp": "2026-11-26"}]},
        {
            "regions": [
                {"region": "us-west-2", "carbonIntensity": 1, "timestamp": "2026-11-26T12:00:00"}
            ]
        },
        {"regions": [{"region": "us-west-2", "carbonIntensity": 118, "renewablePercentage": 101}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": 118, "renewablePercentage": -3}]},
        {"regions": [{"region": "us-west-2", "carbonIntensity": 1, "renewablePercentage": "50"}]},
    ],
)
async def test_a_current_document_violating_the_schema_is_refused_as_a_whole(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi, document: Any
) -> None:
    fake_custom_api.documents["current"] = document
    assert not validator("currentDocument").is_valid(document)

    with pytest.raises(BadResponse, match="current document"):
        await provider.current(OREGON)


async def test_a_region_listed_twice_is_refused_as_ambiguous(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.documents["current"] = {
        "regions": [
            {"region": "us-west-2", "carbonIntensity": 118},
            {"region": "us-west-2", "carbonIntensity": 640},
        ]
    }

    with pytest.raises(BadResponse, match="twice"):
        await provider.current(OREGON)


@pytest.mark.parametrize(
    ("document", "observed_at"),
    [
        ({"regions": [{"region": "us-west-2", "carbonIntensity": 118}]}, NOW),
        (
            {
                "regions": [
                    {"region": "us-west-2", "carbonIntensity": 118.25, "renewablePercentage": None}
                ]
            },
            NOW,
        ),
        (
            {
                "regions": [
                    {
                        "region": "us-west-2",
                        "carbonIntensity": 118,
                        "timestamp": "2026-11-26T13:00:00.250+01:00",
                        "renewablePercentage": 100,
                        "source": "grid operator",
                    }
                ],
                "version": 2,
            },
            HOUR + timedelta(milliseconds=250),
        ),
    ],
)
async def test_a_current_document_the_schema_accepts_is_accepted(
    provider: CustomHttpProvider,
    fake_custom_api: FakeCustomApi,
    document: Any,
    observed_at: datetime,
) -> None:
    fake_custom_api.documents["current"] = document
    validator("currentDocument").validate(document)

    intensity = await provider.current(OREGON)

    assert intensity.g_per_kwh == document["regions"][0]["carbonIntensity"]
    assert intensity.observed_at == observed_at


@pytest.mark.parametrize(
    "document",
    [
        {"forecast": []},
        {"regions": [{"region": "us-west-2"}]},
        {"regions": [{"region": "us-west-2", "forecast": {}}]},
        {"regions": [{"region": "us-west-2", "forecast": [{"carbonIntensity": 100}]}]},
        {"regions": [{"region": "us-west-2", "forecast": [{"timestamp": "2026-11-26T12:00:00Z"}]}]},
        {
            "regions": [
                {
                    "region": "us-west-2",
                    "forecast": [{"timestamp": "2026-11-26T12:00:00Z", "carbonIntensity": -5}],
                }
            ]
        },
        {"generatedAt": "soon", "regions": []},
    ],
)
async def test_a_forecast_document_violating_the_schema_is_refused_as_a_whole(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi, document: Any
) -> None:
    fake_custom_api.documents["forecast"] = document
    assert not validator("forecastDocument").is_valid(document)

    with pytest.raises(BadResponse, match="forecast document"):
        await provider.forecast(OREGON, hours=24)


async def test_a_missing_document_is_an_outage_not_an_unknown_region(
    provider: CustomHttpProvider, fake_custom_api: FakeCustomApi
) -> None:
    fake_custom_api.set_mode(Mode.NOT_FOUND)

    with pytest.raises(ProviderUnavailable, match="HTTP 404"):
        await provider.current(OREGON)
    with pytest.raises(ProviderUnavailable, match="HTTP 404"):
        await provider.forecast(OREGON, hours=24)


def test_the_examples_in_the_contract_document_follow_the_schema() -> None:
    text = (Path(__file__).parents[4] / "docs" / "custom-api.md").read_text(encoding="utf-8")
    blocks = [block.split("```", 1)[0] for block in text.split("```json\n")[1:]]
    current, forecast = (json.loads(block) for block in blocks)

    validator("currentDocument").validate(current)
    validator("forecastDocument").validate(forecast)

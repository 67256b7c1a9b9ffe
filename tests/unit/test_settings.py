"""Carbon settings from ``STELLAR_CARBON_*`` variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shared.core.errors import ConfigError
from shared.core.secret import Secret
from shared.settings import CarbonAwareLocation, CarbonSettings, EmissionFactorType

TOKEN = "em-token-do-not-log"


def test_no_variables_gives_the_keyless_mock_chain() -> None:
    settings = CarbonSettings.from_env({})
    assert settings == CarbonSettings()
    assert settings.providers == ("mock", "static")
    assert settings.redis_url is None
    assert (settings.current_ttl, settings.forecast_ttl, settings.max_stale) == (300, 3600, 21600)
    assert (settings.refresh_interval, settings.horizon_hours, settings.mock_seed) == (60, 24, 0)


def test_every_variable_is_read() -> None:
    settings = CarbonSettings.from_env(
        {
            "STELLAR_CARBON_PROVIDERS": " ElectricityMaps, carbonaware ,custom,static",
            "STELLAR_CARBON_ELECTRICITYMAPS_TOKEN": TOKEN,
            "STELLAR_CARBON_ELECTRICITYMAPS_URL": "http://127.0.0.1:9000/v3/",
            "STELLAR_CARBON_EMISSION_FACTOR_TYPE": "direct",
            "STELLAR_CARBON_CARBONAWARE_URL": "http://127.0.0.1:9001",
            "STELLAR_CARBON_CARBONAWARE_LOCATION": "watttime",
            "STELLAR_CARBON_CUSTOM_URL": "https://carbon.example.org/latest",
            "STELLAR_CARBON_CUSTOM_FORECAST_URL": "https://carbon.example.org/forecast",
            "STELLAR_CARBON_CUSTOM_TOKEN": "custom-secret",
            "STELLAR_CARBON_REDIS_URL": "redis://:pw@redis.carbon.svc:6380/2",
            "STELLAR_CARBON_CURRENT_TTL": "120",
            "STELLAR_CARBON_FORECAST_TTL": "1800.5",
            "STELLAR_CARBON_MAX_STALE": "7200",
            "STELLAR_CARBON_REFRESH_INTERVAL": "30",
            "STELLAR_CARBON_HORIZON_HOURS": "12",
            "STELLAR_CARBON_FORECAST_HOURS": "72",
            "STELLAR_CARBON_REGION_OVERRIDES": "/etc/stellar-carbon/regions.yaml",
            "STELLAR_CARBON_REGION_LABEL": "example.org/site",
            "STELLAR_CARBON_MOCK_CLOCK": "2026-11-26T12:00:00Z",
            "STELLAR_CARBON_MOCK_SEED": "42",
            "STELLAR_CARBON_EXTRA_REGIONS": "us-west-2, europe-west1",
        }
    )
    assert settings.providers == ("electricitymaps", "carbon-aware-sdk", "http", "static")
    assert settings.electricitymaps_token == Secret(TOKEN)
    assert settings.electricitymaps_url == "http://127.0.0.1:9000/v3"
    assert settings.emission_factor_type is EmissionFactorType.DIRECT
    assert settings.carbonaware_location is CarbonAwareLocation.WATTTIME
    assert settings.custom_forecast_url == "https://carbon.example.org/forecast"
    assert settings.custom_token == Secret("custom-secret")
    assert settings.redis_url == Secret("redis://:pw@redis.carbon.svc:6380/2")
    assert (settings.current_ttl, settings.forecast_ttl, settings.max_stale) == (120, 1800.5, 7200)
    assert (settings.refresh_interval, settings.horizon_hours, settings.forecast_hours) == (
        30,
        12,
        72,
    )
    assert settings.region_overrides == Path("/etc/stellar-carbon/regions.yaml")
    assert settings.region_label == "example.org/site"
    assert settings.mock_clock == datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert settings.mock_seed == 42
    assert settings.extra_regions == ("us-west-2", "europe-west1")


def test_describe_shows_secrets_only_as_set_or_unset() -> None:
    settings = CarbonSettings.from_env(
        {
            "STELLAR_CARBON_PROVIDERS": "electricitymaps,static",
            "STELLAR_CARBON_ELECTRICITYMAPS_TOKEN": TOKEN,
            "STELLAR_CARBON_REDIS_URL": "redis://:hunter2@redis:6379/0",
        }
    )
    described = settings.describe()
    assert described["electricitymaps_token"] == "set"
    assert described["custom_token"] == "unset"
    assert described["redis_url"] == "redis://:***@redis:6379/0"
    text = json.dumps(described)  # the log line must be serialisable as is
    assert TOKEN not in text
    assert "hunter2" not in text
    assert TOKEN not in repr(settings)


def test_unknown_provider_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        CarbonSettings.from_env({"STELLAR_CARBON_PROVIDERS": "wattime,static"})
    assert str(caught.value) == (
        "STELLAR_CARBON_PROVIDERS: unknown provider 'wattime'; "
        "accepted: electricitymaps, carbon-aware-sdk, http, mock, static"
    )


def test_electricitymaps_without_a_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="STELLAR_CARBON_ELECTRICITYMAPS_TOKEN"):
        CarbonSettings.from_env({"STELLAR_CARBON_PROVIDERS": "electricitymaps,static"})


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("carbonaware", "STELLAR_CARBON_CARBONAWARE_URL"),
        ("carbon-aware-sdk", "STELLAR_CARBON_CARBONAWARE_URL"),
        ("custom", "STELLAR_CARBON_CUSTOM_URL"),
        ("http", "STELLAR_CARBON_CUSTOM_URL"),
    ],
)
def test_http_providers_need_their_url(provider: str, variable: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        CarbonSettings.from_env({"STELLAR_CARBON_PROVIDERS": provider})


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("STELLAR_CARBON_CURRENT_TTL", "soon"),
        ("STELLAR_CARBON_FORECAST_TTL", "-1"),
        ("STELLAR_CARBON_MAX_STALE", "nan"),
        ("STELLAR_CARBON_REFRESH_INTERVAL", "0"),
        ("STELLAR_CARBON_HORIZON_HOURS", "0"),
        ("STELLAR_CARBON_HORIZON_HOURS", "1.5"),
        ("STELLAR_CARBON_MOCK_SEED", "-3"),
        ("STELLAR_CARBON_MOCK_CLOCK", "yesterday"),
        ("STELLAR_CARBON_MOCK_CLOCK", "2026-11-26T12:00:00"),
        ("STELLAR_CARBON_EMISSION_FACTOR_TYPE", "marginal"),
        ("STELLAR_CARBON_CARBONAWARE_LOCATION", "city"),
        ("STELLAR_CARBON_ELECTRICITYMAPS_URL", "ftp://example.org"),
        ("STELLAR_CARBON_CUSTOM_FORECAST_URL", "not a url"),
        ("STELLAR_CARBON_REDIS_URL", "memcached://cache:11211"),
        ("STELLAR_CARBON_REDIS_URL", "redis://cache:port"),
        ("STELLAR_CARBON_REDIS_URL", "redis://cache:6379/zero"),
        ("STELLAR_CARBON_PROVIDERS", " , "),
        ("STELLAR_CARBON_PROVIDERS", "static,static"),
        ("STELLAR_CARBON_PROVIDERS", "custom,http"),
    ],
)
def test_invalid_values_are_config_errors_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        CarbonSettings.from_env({variable: value})


def test_a_redis_password_never_appears_in_an_error() -> None:
    with pytest.raises(ConfigError) as caught:
        CarbonSettings.from_env({"STELLAR_CARBON_REDIS_URL": "redis://:s3cret@cache:99999"})
    assert "s3cret" not in str(caught.value)


def test_stale_age_shorter_than_the_ttl_is_rejected() -> None:
    with pytest.raises(ConfigError, match="STELLAR_CARBON_MAX_STALE"):
        CarbonSettings.from_env({"STELLAR_CARBON_MAX_STALE": "60"})


def test_forecast_shorter_than_the_horizon_is_rejected() -> None:
    with pytest.raises(ConfigError, match="STELLAR_CARBON_FORECAST_HOURS"):
        CarbonSettings.from_env(
            {"STELLAR_CARBON_HORIZON_HOURS": "48", "STELLAR_CARBON_FORECAST_HOURS": "24"}
        )


def test_mock_clock_with_an_offset_is_converted_to_utc() -> None:
    settings = CarbonSettings.from_env({"STELLAR_CARBON_MOCK_CLOCK": "2026-11-26T14:00:00+02:00"})
    assert settings.mock_clock == datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_empty_variables_keep_their_defaults() -> None:
    assert CarbonSettings.from_env({"STELLAR_CARBON_CURRENT_TTL": "  "}) == CarbonSettings()

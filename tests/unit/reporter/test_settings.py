"""Reporter settings from STELLAR_CARBON_REPORTER_* (and the carbon library's STELLAR_CARBON_*)."""

from __future__ import annotations

import pytest

from reporter.settings import ReporterSettings
from shared.core.errors import ConfigError


def test_defaults_serve_on_9090_from_kubernetes() -> None:
    settings = ReporterSettings.from_env({})
    assert settings.port == 9090
    assert settings.inventory == "kubernetes"
    assert settings.node_metrics is False
    assert settings.carbon.providers == ("mock", "static")


def test_variables_override_defaults() -> None:
    settings = ReporterSettings.from_env(
        {
            "STELLAR_CARBON_REPORTER_PORT": "9191",
            "STELLAR_CARBON_REPORTER_INVENTORY": "Demo",
            "STELLAR_CARBON_REPORTER_NODE_METRICS": "true",
            "STELLAR_CARBON_REPORTER_DEFAULT_PAGE_SIZE": "100",
            "STELLAR_CARBON_REPORTER_POD_NAMESPACE": "stellar",
            "STELLAR_CARBON_EXTRA_REGIONS": "eu-north-1,us-west-2",
        }
    )
    assert settings.pod_namespace == "stellar"
    assert settings.port == 9191
    assert settings.inventory == "demo"
    assert settings.node_metrics is True
    assert settings.default_page_size == 100
    assert settings.carbon.extra_regions == ("eu-north-1", "us-west-2")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STELLAR_CARBON_REPORTER_PORT", "http"),
        ("STELLAR_CARBON_REPORTER_PORT", "70000"),
        ("STELLAR_CARBON_REPORTER_INVENTORY", "file"),
        ("STELLAR_CARBON_REPORTER_NODE_METRICS", "maybe"),
        ("STELLAR_CARBON_REPORTER_DEFAULT_PAGE_SIZE", "0"),
        ("STELLAR_CARBON_REPORTER_NODE_METRICS_INTERVAL_SECONDS", "1"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ReporterSettings.from_env({name: value})


def test_the_described_settings_hide_secrets() -> None:
    settings = ReporterSettings.from_env(
        {
            "STELLAR_CARBON_PROVIDERS": "electricitymaps,static",
            "STELLAR_CARBON_ELECTRICITYMAPS_TOKEN": "very-secret-token",
        }
    )
    assert "very-secret-token" not in repr(settings.describe())


def test_the_history_defaults_to_an_sqlite_file_sampled_hourly_for_400_days() -> None:
    settings = ReporterSettings.from_env({})
    assert settings.history_url.reveal() == "/var/lib/stellar-carbon/history.db"
    assert settings.history_interval_seconds == 3600
    assert settings.history_retention_days == 400


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("STELLAR_CARBON_REPORTER_HISTORY_URL", "mysql://db/history"),
        ("STELLAR_CARBON_REPORTER_HISTORY_URL", "postgresql://db.example/"),
        ("STELLAR_CARBON_REPORTER_HISTORY_INTERVAL_SECONDS", "7200"),
        ("STELLAR_CARBON_REPORTER_HISTORY_RETENTION_DAYS", "0"),
    ],
)
def test_a_bad_history_setting_is_a_config_error_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        ReporterSettings.from_env({name: value})


def test_a_postgresql_history_url_is_described_without_its_password() -> None:
    url = "postgresql://reporter:hunter2@db.example:5432/history"
    settings = ReporterSettings.from_env({"STELLAR_CARBON_REPORTER_HISTORY_URL": url})
    assert settings.history_url.reveal() == url
    described = settings.describe()["history_url"]
    assert described == "postgresql://reporter:***@db.example:5432/history"
    assert "hunter2" not in repr(settings)


def test_a_rejected_history_url_is_not_quoted() -> None:
    with pytest.raises(ConfigError) as raised:
        ReporterSettings.from_env(
            {"STELLAR_CARBON_REPORTER_HISTORY_URL": "mysql://u:hunter2@db/history"}
        )
    assert "hunter2" not in str(raised.value)

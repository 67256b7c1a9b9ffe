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

"""The tier component's settings: safe defaults, the policy they describe, errors in one format."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core.errors import ConfigError
from shared.scoring.tiers import TierPolicy
from tiers.settings import TierMode, TiersSettings


def test_the_defaults_only_report_and_move_tiers_slowly() -> None:
    settings = TiersSettings.from_env({})

    assert settings.mode is TierMode.DRY_RUN
    assert settings.health_port == 8081
    assert settings.policy == TierPolicy(dwell=timedelta(hours=2))


def test_every_variable_reaches_the_policy() -> None:
    settings = TiersSettings.from_env(
        {
            "STELLAR_CARBON_TIERS_MODE": "LABEL",
            "STELLAR_CARBON_TIERS_INTERVAL": "30",
            "STELLAR_CARBON_TIERS_BAND": "0.2",
            "STELLAR_CARBON_TIERS_STEP": "1.5",
            "STELLAR_CARBON_TIERS_MAX_TIER": "4",
            "STELLAR_CARBON_TIERS_MARGIN": "0.05",
            "STELLAR_CARBON_TIERS_DWELL": "600",
            "STELLAR_CARBON_TIERS_MAX_NODE_CHANGES_PER_HOUR": "10",
            "STELLAR_CARBON_PROVIDERS": "mock",
        }
    )

    assert settings.mode is TierMode.LABEL
    assert settings.interval == 30
    assert settings.carbon.providers == ("mock",)
    assert settings.policy == TierPolicy(
        band=0.2,
        step=1.5,
        max_tier=4,
        margin=0.05,
        dwell=timedelta(minutes=10),
        max_node_changes_per_hour=10,
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "STELLAR_CARBON_TIERS_MODE",
            "apply",
            "STELLAR_CARBON_TIERS_MODE: expected one of dry-run, label, got 'apply'",
        ),
        (
            "STELLAR_CARBON_TIERS_STEP",
            "1",
            "STELLAR_CARBON_TIERS_STEP: expected a number above 1, got '1'",
        ),
        (
            "STELLAR_CARBON_TIERS_DWELL",
            "-5",
            "STELLAR_CARBON_TIERS_DWELL: expected a number of at least 0, got '-5'",
        ),
        (
            "STELLAR_CARBON_TIERS_MAX_NODE_CHANGES_PER_HOUR",
            "0",
            "STELLAR_CARBON_TIERS_MAX_NODE_CHANGES_PER_HOUR: expected an integer of at least 1, "
            "got '0'",
        ),
        (
            "STELLAR_CARBON_TIERS_HEALTH_PORT",
            "70000",
            "STELLAR_CARBON_TIERS_HEALTH_PORT: expected a port 1-65535, got '70000'",
        ),
        (
            "STELLAR_CARBON_TIERS_INTERVAL",
            "0",
            "STELLAR_CARBON_TIERS_INTERVAL: expected a positive number of seconds, got '0'",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        TiersSettings.from_env({variable: value})

    assert str(refused.value) == message


def test_a_bad_carbon_setting_is_named_with_the_shared_prefix() -> None:
    with pytest.raises(ConfigError, match=r"^STELLAR_CARBON_HORIZON_HOURS: "):
        TiersSettings.from_env({"STELLAR_CARBON_HORIZON_HOURS": "soon"})

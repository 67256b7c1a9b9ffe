"""The Karmada controller's settings: safe defaults, the rules they describe, one-line errors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from multicluster.decide import Rules
from multicluster.settings import KarmadaMode, KarmadaSettings
from shared.core.errors import ConfigError


def test_the_defaults_only_report_and_move_at_most_hourly_past_a_ten_percent_gain() -> None:
    settings = KarmadaSettings.from_env({})

    assert settings.mode is KarmadaMode.DRY_RUN
    assert settings.rules == Rules(margin=0.1, dwell=timedelta(hours=1), floor=1, exponent=4.0)
    assert settings.lease_namespace == "karmada-system"
    assert settings.health_port == 8082


def test_every_variable_reaches_the_rules() -> None:
    settings = KarmadaSettings.from_env(
        {
            "STELLAR_CARBON_KARMADA_MODE": "Apply",
            "STELLAR_CARBON_KARMADA_MARGIN": "0.2",
            "STELLAR_CARBON_KARMADA_DWELL": "600",
            "STELLAR_CARBON_KARMADA_MAX_MOVED_SHARE": "0.25",
            "STELLAR_CARBON_KARMADA_FLOOR_WEIGHT": "0",
            "STELLAR_CARBON_KARMADA_WEIGHT_EXPONENT": "2",
            "STELLAR_CARBON_KARMADA_LABEL_SELECTOR": "team=stellar",
            "STELLAR_CARBON_KARMADA_KUBECONFIG": "karmada.config",
        }
    )

    assert settings.mode is KarmadaMode.APPLY
    assert settings.label_selector == "team=stellar"
    assert settings.kubeconfig == "karmada.config"
    assert settings.rules == Rules(
        margin=0.2, dwell=timedelta(minutes=10), max_moved_share=0.25, floor=0, exponent=2.0
    )


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("STELLAR_CARBON_KARMADA_MODE", "label", "expected one of dry-run, apply, got 'label'"),
        ("STELLAR_CARBON_KARMADA_FLOOR_WEIGHT", "101", "expected an integer from 0 to 100"),
        ("STELLAR_CARBON_KARMADA_MAX_MOVED_SHARE", "1.5", "expected a share from 0.01 to 1"),
        ("STELLAR_CARBON_KARMADA_MARGIN", "-0.1", "expected a number of at least 0"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    variable: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=f"^{variable}: {message}"):
        KarmadaSettings.from_env({variable: value})

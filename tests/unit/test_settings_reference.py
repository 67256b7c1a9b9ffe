"""docs/settings.md is the table the settings classes generate, and it lists every variable."""

from __future__ import annotations

from tools.settings_reference import DOCUMENT, READERS, reference


def test_the_settings_reference_matches_the_code() -> None:
    assert DOCUMENT.read_text(encoding="utf-8") == reference(), (
        "docs/settings.md is out of date; regenerate it with "
        "`python -m tools.settings_reference --write`"
    )


def test_every_variable_of_every_component_is_listed() -> None:
    text = reference()
    for settings, _ in READERS:
        for name, info in settings.model_fields.items():
            if info.default_factory is None:
                assert f"`{settings.variable(name)}`" in text


def test_secret_defaults_show_as_unset_and_readers_are_named() -> None:
    rows = {line.split(" | ")[0]: line for line in reference().splitlines() if line.startswith("|")}
    token = rows["| `STELLAR_CARBON_ELECTRICITYMAPS_TOKEN`"]
    assert "| unset |" in token
    assert "webhook, reporter, tiers and karmada" in token
    assert "| webhook |" in rows["| `STELLAR_CARBON_WEBHOOK_PORT`"]
    assert "| reporter |" in rows["| `STELLAR_CARBON_REPORTER_INVENTORY`"]
    assert "| tiers |" in rows["| `STELLAR_CARBON_TIERS_MODE`"]
    assert "one of dry-run, label" in rows["| `STELLAR_CARBON_TIERS_MODE`"]
    assert "one of kubernetes, demo" in rows["| `STELLAR_CARBON_REPORTER_INVENTORY`"]

"""Building the carbon runtime from settings, as both services do at startup."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.cluster.demo import demo_inventory
from shared.core.errors import ConfigError
from shared.core.models import Freshness
from shared.core.secret import Secret
from shared.factory import build_provider, build_runtime, settings_clock
from shared.settings import CarbonSettings

PINNED = datetime(2026, 6, 21, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("name", "settings"),
    [
        ("electricitymaps", CarbonSettings(electricitymaps_token=Secret("t0ken"))),
        ("carbon-aware-sdk", CarbonSettings(carbonaware_url="http://127.0.0.1:1")),
        ("http", CarbonSettings(custom_url="http://127.0.0.1:1/carbon")),
        ("mock", CarbonSettings()),
        ("static", CarbonSettings()),
    ],
)
async def test_every_configured_provider_name_builds_the_provider_of_that_name(
    name: str, settings: CarbonSettings
) -> None:
    provider = build_provider(name, settings, settings_clock(settings))
    try:
        assert provider.name == name
        assert "t0ken" not in repr(provider)
    finally:
        await provider.close()


def test_a_provider_without_its_url_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match="STELLAR_CARBON_CUSTOM_URL"):
        build_provider("http", CarbonSettings(), settings_clock(CarbonSettings()))


async def test_default_runtime_serves_every_demo_region_from_the_mock_at_a_pinned_time() -> None:
    runtime = build_runtime(CarbonSettings(mock_clock=PINNED))
    inventory = demo_inventory()
    try:
        runtime.track_inventory(inventory)
        snapshot = await runtime.refresher.refresh_once()
        regions = {node.region for node in inventory.nodes.values()}
        assert set(snapshot.regions) == regions
        for carbon in snapshot.regions.values():
            assert carbon.current is not None
            assert carbon.current.g_per_kwh > 0
            assert carbon.current.provenance.provider == "mock"
            assert carbon.current.provenance.freshness is Freshness.LIVE
            assert carbon.forecast is not None
        assert snapshot.taken_at == PINNED
    finally:
        await runtime.close()

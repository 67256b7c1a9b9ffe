"""The background refresher: complete snapshots, shared zones, surviving failures, its loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from shared.carbon.cache import CarbonCache
from shared.carbon.chain import ProviderChain
from shared.carbon.refresh import CarbonRefresher
from shared.core.errors import ProviderUnavailable
from shared.core.models import Freshness, RegionInfo
from shared.settings import CarbonSettings
from tests.fakes.carbon_provider import FakeProvider, ManualClock, region

SETTINGS = CarbonSettings(current_ttl=300, forecast_ttl=3600, max_stale=3600, forecast_hours=48)

CATALOG = {
    "us-west-2": region("us-west-2", "US-NW-BPAT"),
    "us-west1": region("us-west1", "US-NW-BPAT"),  # GCP Oregon draws from the same grid
    "eu-north-1": region("eu-north-1", "SE-SE3"),
    "europe-west1": region("europe-west1", "BE"),
}


class BrokenBackend:
    async def _fail(self, *args: object, **kwargs: object) -> None:
        raise ConnectionError("Connection refused")

    get = set = add = _fail

    async def close(self) -> None:
        return None


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def provider(clock: ManualClock) -> FakeProvider:
    return FakeProvider(
        "electricitymaps", {"US-NW-BPAT": 118.0, "SE-SE3": 25.0, "BE": 180.0}, clock=clock
    )


@pytest.fixture
async def refreshers(
    clock: ManualClock, provider: FakeProvider
) -> AsyncIterator[Callable[..., CarbonRefresher]]:
    made: list[CarbonRefresher] = []

    def make(
        settings: CarbonSettings = SETTINGS,
        *,
        cache: CarbonCache | None = None,
        resolve: Callable[[str], RegionInfo | None] = CATALOG.get,
    ) -> CarbonRefresher:
        chain = ProviderChain(
            [provider],
            cache or CarbonCache.memory(clock=clock),
            settings=settings,
            clock=clock,
        )
        refresher = CarbonRefresher(chain, resolve, settings=settings, clock=clock)
        made.append(refresher)
        return refresher

    yield make
    for refresher in made:
        await refresher.stop()


async def eventually(condition: Callable[[], bool]) -> None:
    """Wait (bounded) for something the background task does."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - the refresher exposes counters, not events
            await asyncio.sleep(0.001)


async def test_a_refresh_builds_a_snapshot_of_every_tracked_region(
    refreshers: Callable[..., CarbonRefresher], provider: FakeProvider
) -> None:
    refresher = refreshers()
    refresher.track(["us-west-2", "eu-north-1", "atlantis-1"])
    snapshot = await refresher.refresh_once()
    assert refresher.snapshot is snapshot
    assert set(snapshot.regions) == {"us-west-2", "eu-north-1"}
    oregon = snapshot.get("us-west-2")
    assert oregon is not None
    assert oregon.current is not None
    assert oregon.current.g_per_kwh == 118.0
    assert oregon.forecast is not None
    assert len(oregon.forecast.points) == 48
    assert refresher.status()["unresolved"] == ["atlantis-1"]


async def test_regions_sharing_a_zone_cost_one_fetch(
    refreshers: Callable[..., CarbonRefresher], provider: FakeProvider
) -> None:
    refresher = refreshers()
    refresher.track(["us-west-2", "us-west1"])
    snapshot = await refresher.refresh_once()
    assert provider.current_calls == 1
    assert provider.forecast_calls == 1
    assert set(snapshot.regions) == {"us-west-2", "us-west1"}


async def test_extra_regions_are_always_tracked(
    refreshers: Callable[..., CarbonRefresher],
) -> None:
    refresher = refreshers(SETTINGS.model_copy(update={"extra_regions": ("europe-west1",)}))
    refresher.track(["eu-north-1"])
    refresher.track([])
    assert refresher.tracked == {"europe-west1"}
    snapshot = await refresher.refresh_once()
    assert set(snapshot.regions) == {"europe-west1"}


async def test_forecasts_are_fetched_at_most_once_per_forecast_ttl(
    refreshers: Callable[..., CarbonRefresher], provider: FakeProvider, clock: ManualClock
) -> None:
    refresher = refreshers()
    refresher.track(["eu-north-1"])
    for _ in range(12):  # an hour of one-per-five-minutes refreshes
        await refresher.refresh_once()
        clock.advance(300)
    assert provider.current_calls == 12
    assert provider.forecast_calls == 1


async def test_a_new_snapshot_replaces_the_old_one_which_stays_intact(
    refreshers: Callable[..., CarbonRefresher], provider: FakeProvider, clock: ManualClock
) -> None:
    refresher = refreshers()
    refresher.track(["eu-north-1"])
    old = await refresher.refresh_once()
    provider.values["SE-SE3"] = 40.0
    clock.advance(300)
    new = await refresher.refresh_once()
    old_region, new_region = old.get("eu-north-1"), new.get("eu-north-1")
    assert old_region is not None
    assert new_region is not None
    assert old_region.current is not None
    assert new_region.current is not None
    assert (old_region.current.g_per_kwh, new_region.current.g_per_kwh) == (25.0, 40.0)
    assert new.taken_at > old.taken_at


async def test_without_a_cache_the_previous_value_is_kept_as_stale(
    refreshers: Callable[..., CarbonRefresher], provider: FakeProvider, clock: ManualClock
) -> None:
    cache = CarbonCache(BrokenBackend(), shared=True, description="redis down", clock=clock)
    refresher = refreshers(cache=cache)
    refresher.track(["eu-north-1"])
    await refresher.refresh_once()
    provider.error = ProviderUnavailable("electricitymaps", "HTTP 503")
    clock.advance(600)
    kept = (await refresher.refresh_once()).get("eu-north-1")
    assert kept is not None
    assert kept.current is not None
    assert kept.current.g_per_kwh == 25.0
    assert kept.current.provenance.freshness is Freshness.STALE
    clock.advance(3600)
    gone = (await refresher.refresh_once()).get("eu-north-1")
    assert gone is not None
    assert gone.current is None  # too old to serve: unknown, not 0


async def test_start_refreshes_at_once_and_then_in_the_background(
    refreshers: Callable[..., CarbonRefresher], clock: ManualClock
) -> None:
    refresher = refreshers(SETTINGS.model_copy(update={"refresh_interval": 0.01}))
    refresher.track(["eu-north-1"])
    await refresher.start()
    assert refresher.cycles == 1
    assert refresher.snapshot.get("eu-north-1") is not None
    assert refresher.running
    await eventually(lambda: refresher.cycles >= 3)
    await refresher.stop()
    assert not refresher.running


async def test_newly_tracked_regions_do_not_wait_for_the_interval(
    refreshers: Callable[..., CarbonRefresher],
) -> None:
    refresher = refreshers(SETTINGS.model_copy(update={"refresh_interval": 3600.0}))
    refresher.track(["eu-north-1"])
    await refresher.start()
    refresher.track(["eu-north-1", "europe-west1"])
    await eventually(lambda: refresher.snapshot.get("europe-west1") is not None)
    assert refresher.cycles == 2


async def test_the_loop_survives_a_failing_cycle(
    refreshers: Callable[..., CarbonRefresher],
) -> None:
    broken = True

    def resolve(name: str) -> RegionInfo | None:
        if broken:
            raise RuntimeError("catalog reload in progress")
        return CATALOG.get(name)

    refresher = refreshers(SETTINGS.model_copy(update={"refresh_interval": 0.01}), resolve=resolve)
    refresher.track(["eu-north-1"])
    await refresher.start()
    await eventually(lambda: refresher.failed_cycles >= 2)
    assert refresher.last_error == "RuntimeError: catalog reload in progress"
    assert refresher.last_success is None
    assert refresher.age_seconds() is None
    broken = False
    await eventually(lambda: refresher.cycles >= 1)
    assert refresher.running
    assert refresher.snapshot.get("eu-north-1") is not None


async def test_status_reports_age_completeness_and_providers(
    refreshers: Callable[..., CarbonRefresher], provider: FakeProvider, clock: ManualClock
) -> None:
    refresher = refreshers()
    refresher.track(["eu-north-1", "europe-west1"])
    provider.values.pop("BE")
    provider.default = None  # the provider cannot serve Belgium at all
    await refresher.refresh_once()
    clock.advance(30)
    status = refresher.status()
    assert status["known"] == 1
    assert status["withoutData"] == ["europe-west1"]
    assert status["ageSeconds"] == 30
    assert status["lastSuccess"] == "2026-11-26T12:00:00Z"
    assert status["providers"]["providers"][0]["calls"] == 2

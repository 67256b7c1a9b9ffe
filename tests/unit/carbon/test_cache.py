"""The carbon cache: JSON codecs, freshness, single-flight loads, surviving a failing backend."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

import pytest
from aiocache import Cache
from aiocache.serializers import JsonSerializer

from shared.carbon.cache import (
    CURRENT,
    FORECAST,
    CarbonCache,
    forecast_from_dict,
    forecast_to_dict,
    intensity_from_dict,
    intensity_to_dict,
)
from shared.core.errors import ProviderUnavailable
from shared.core.models import Forecast, ForecastPoint, Freshness, Intensity, Provenance
from shared.core.secret import Secret
from shared.settings import CarbonSettings
from tests.fakes.carbon_provider import START, FakeProvider, ManualClock, region

TTL = 300.0


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def cache(clock: ManualClock) -> Any:
    carbon_cache = CarbonCache.memory(clock=clock)
    yield carbon_cache
    await carbon_cache.close()


class BrokenBackend:
    """An aiocache-like backend whose every operation fails, like a Redis that went away."""

    def __init__(self) -> None:
        self.attempts = 0

    async def _fail(self, *args: object, **kwargs: object) -> None:
        self.attempts += 1
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    get = set = add = _fail

    async def close(self) -> None:
        return None


def test_intensity_survives_a_round_trip_through_json_safe_dicts() -> None:
    intensity = Intensity(
        zone="US-NW-BPAT",
        g_per_kwh=118.5,
        observed_at=START,
        provenance=Provenance(
            provider="electricitymaps",
            fetched_at=START + timedelta(minutes=1),
            freshness=Freshness.STALE,
            fallback_from=("carbon-aware-sdk",),
        ),
        estimated=True,
        renewable_pct=None,
    )
    document = intensity_to_dict(intensity)
    assert JsonSerializer().loads(JsonSerializer().dumps(document)) == document
    assert intensity_from_dict(document) == intensity


def test_forecast_survives_a_round_trip_through_json_safe_dicts() -> None:
    forecast = Forecast(
        zone="DE",
        generated_at=START,
        points=(
            ForecastPoint(START, 300.0),
            ForecastPoint(START + timedelta(minutes=5), 290.5, timedelta(minutes=5)),
        ),
        provenance=Provenance(provider="carbon-aware-sdk", fetched_at=START),
    )
    assert forecast_from_dict(forecast_to_dict(forecast)) == forecast


async def test_a_thousand_concurrent_loads_make_one_upstream_call(cache: CarbonCache) -> None:
    provider = FakeProvider(delay=0.01)
    zone = region("us-west-2", "US-NW-BPAT")

    def fetch() -> Any:
        return provider.current(zone)

    entries = await asyncio.gather(
        *(cache.load(CURRENT, "fake", "US-NW-BPAT", fetch, ttl=TTL) for _ in range(1000))
    )
    assert provider.current_calls == 1
    assert {entry.value.g_per_kwh for entry in entries} == {100.0}


async def test_a_fresh_entry_is_served_without_calling_upstream(
    cache: CarbonCache, clock: ManualClock
) -> None:
    provider = FakeProvider()
    zone = region("eu-north-1")
    await cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
    clock.advance(TTL - 1)
    await cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
    assert provider.current_calls == 1


async def test_an_expired_entry_is_fetched_again(cache: CarbonCache, clock: ManualClock) -> None:
    provider = FakeProvider()
    zone = region("eu-north-1")
    await cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
    clock.advance(TTL)
    entry = await cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
    assert provider.current_calls == 2
    assert entry.fetched_at == clock.now


async def test_the_entry_remembers_when_it_was_fetched(
    cache: CarbonCache, clock: ManualClock
) -> None:
    provider = FakeProvider(clock=ManualClock(START - timedelta(hours=1)))
    zone = region("eu-north-1")
    await cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
    clock.advance(42)
    entry = await cache.get(CURRENT, "fake", "EU-NORTH-1")
    assert entry is not None
    assert entry.fetched_at == START
    assert entry.value.provenance.fetched_at == START
    assert entry.age(clock()) == 42


async def test_keys_separate_providers_kinds_and_locations(cache: CarbonCache) -> None:
    provider = FakeProvider(values={"A": 1.0, "B": 2.0})
    a, b = region("a", "A"), region("b", "B")
    await cache.load(CURRENT, "one", "A", lambda: provider.current(a), ttl=TTL)
    await cache.load(CURRENT, "two", "A", lambda: provider.current(a), ttl=TTL)
    await cache.load(CURRENT, "one", "B", lambda: provider.current(b), ttl=TTL)
    await cache.load(FORECAST, "one", "A@24h", lambda: provider.forecast(a, 24), ttl=TTL)
    assert provider.calls == 4
    entry = await cache.get(CURRENT, "one", "B")
    assert entry is not None
    assert entry.value.g_per_kwh == 2.0
    assert await cache.get(FORECAST, "two", "A@24h") is None


async def test_a_failed_fetch_reaches_every_waiter_and_is_not_cached(
    cache: CarbonCache,
) -> None:
    provider = FakeProvider(delay=0.01)
    provider.error = ProviderUnavailable("fake", "503 from upstream")
    zone = region("eu-north-1")
    results = await asyncio.gather(
        *(
            cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
            for _ in range(50)
        ),
        return_exceptions=True,
    )
    assert provider.current_calls == 1
    assert all(result is provider.error for result in results)
    assert await cache.get(CURRENT, "fake", "EU-NORTH-1") is None


async def test_a_cancelled_waiter_does_not_cancel_the_call_for_the_others(
    cache: CarbonCache,
) -> None:
    provider = FakeProvider(delay=0.05)
    zone = region("eu-north-1")

    def load() -> Any:
        return cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)

    impatient = asyncio.create_task(load())
    patient = asyncio.create_task(load())
    await asyncio.sleep(0)
    impatient.cancel()
    entry = await patient
    assert entry.value.g_per_kwh == 100.0
    assert impatient.cancelled()
    assert provider.current_calls == 1


async def test_an_unreadable_entry_counts_as_a_miss(clock: ManualClock) -> None:
    backend = Cache(Cache.MEMORY, serializer=JsonSerializer())
    cache = CarbonCache(backend, shared=False, description="memory", clock=clock)
    await backend.set("current:fake:EU-NORTH-1", {"format": 1, "fetchedAt": "yesterday"})
    assert await cache.get(CURRENT, "fake", "EU-NORTH-1") is None
    provider = FakeProvider()
    zone = region("eu-north-1")
    entry = await cache.load(CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL)
    assert entry.value.g_per_kwh == 100.0
    assert provider.current_calls == 1


async def test_a_failing_backend_degrades_to_no_cache_with_one_log_line(
    clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    backend = BrokenBackend()
    cache = CarbonCache(backend, shared=True, description="redis test", clock=clock)
    provider = FakeProvider()
    zone = region("eu-north-1")
    with caplog.at_level(logging.WARNING, logger="shared.carbon.cache"):
        for _ in range(3):
            entry = await cache.load(
                CURRENT, "fake", "EU-NORTH-1", lambda: provider.current(zone), ttl=TTL
            )
            assert entry.value.g_per_kwh == 100.0
    assert provider.current_calls == 3  # nothing cached, but every load still served
    assert not cache.available
    assert cache.status()["errors"] >= 1
    assert backend.attempts == 1  # bypassed for a while after the first failure
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "serving without a cache" in warnings[0].getMessage()


async def test_settings_without_a_redis_url_give_a_private_memory_cache() -> None:
    cache = CarbonCache.from_settings(CarbonSettings())
    assert cache.status() == {
        "backend": "memory",
        "shared": False,
        "available": True,
        "errors": 0,
        "lastError": None,
    }
    await cache.close()


async def test_settings_with_a_redis_url_give_a_shared_cache_that_hides_the_password() -> None:
    settings = CarbonSettings(redis_url=Secret("redis://:hunter2@127.0.0.1:6390/3"))
    cache = CarbonCache.from_settings(settings)
    status = cache.status()
    assert status["backend"] == "redis 127.0.0.1:6390"
    assert status["shared"] is True
    assert "hunter2" not in repr(status)
    await cache.close()

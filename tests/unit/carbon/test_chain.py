"""The provider chain: caching, stale service during outages, fallback, back-off, no false zeros."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Sequence

import pytest

from shared.carbon.cache import CarbonCache
from shared.carbon.chain import ProviderChain
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderAuthError,
    ProviderUnavailable,
    RateLimited,
)
from shared.core.models import Freshness
from shared.settings import CarbonSettings
from tests.fakes.carbon_provider import START, FakeProvider, ManualClock, region

SETTINGS = CarbonSettings(
    current_ttl=300, forecast_ttl=3600, max_stale=3600, backoff_base=60, backoff_max=900
)
US_WEST_2 = region("us-west-2", "US-NW-BPAT")


class TopOfRange(random.Random):
    """Jitter pinned to the longest delay, so back-off windows are exact in tests."""

    def uniform(self, a: float, b: float) -> float:
        return b


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def live(clock: ManualClock) -> FakeProvider:
    return FakeProvider("electricitymaps", {"US-NW-BPAT": 118.0}, clock=clock)


@pytest.fixture
def static(clock: ManualClock) -> FakeProvider:
    return FakeProvider("static", default=300.0, clock=clock, freshness=Freshness.STATIC)


@pytest.fixture
async def make_chain(clock: ManualClock) -> AsyncIterator[object]:
    chains: list[ProviderChain] = []

    def make(*providers: FakeProvider, settings: CarbonSettings = SETTINGS) -> ProviderChain:
        chain = ProviderChain(
            providers,
            CarbonCache.memory(clock=clock),
            settings=settings,
            clock=clock,
            rng=TopOfRange(),
        )
        chains.append(chain)
        return chain

    yield make
    for chain in chains:
        await chain.close()


def chain_of(make_chain: object, *providers: FakeProvider) -> ProviderChain:
    assert callable(make_chain)
    chain = make_chain(*providers)
    assert isinstance(chain, ProviderChain)
    return chain


async def test_a_thousand_concurrent_requests_for_one_zone_make_one_upstream_call(
    make_chain: object, clock: ManualClock
) -> None:
    provider = FakeProvider("electricitymaps", delay=0.02, clock=clock)
    chain = chain_of(make_chain, provider)
    results = await asyncio.gather(*(chain.current(US_WEST_2) for _ in range(1000)))
    assert provider.current_calls == 1
    assert chain.calls["electricitymaps"] == 1
    assert all(r is not None and r.g_per_kwh == 100.0 for r in results)


async def test_regions_sharing_a_zone_are_fetched_once(
    make_chain: object, live: FakeProvider
) -> None:
    chain = chain_of(make_chain, live)
    oregon = region("us-west-2", "US-NW-BPAT")
    gcp_oregon = region("us-west1", "US-NW-BPAT")
    await asyncio.gather(chain.current(oregon), chain.current(gcp_oregon))
    assert live.current_calls == 1


async def test_a_fresh_value_is_live_and_cached_until_its_ttl(
    make_chain: object, live: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, live)
    first = await chain.current(US_WEST_2)
    clock.advance(299)
    second = await chain.current(US_WEST_2)
    assert live.current_calls == 1
    assert first is not None
    assert second is not None
    assert second.provenance.freshness is Freshness.LIVE
    assert second.provenance.label == "electricitymaps"
    clock.advance(1)
    await chain.current(US_WEST_2)
    assert live.current_calls == 2


async def test_during_an_outage_the_last_value_is_served_flagged_stale(
    make_chain: object, live: FakeProvider, static: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, live, static)
    await chain.current(US_WEST_2)
    live.error = ProviderUnavailable("electricitymaps", "HTTP 503")
    clock.advance(600)
    served = await chain.current(US_WEST_2)
    assert served is not None
    assert served.g_per_kwh == 118.0
    assert served.provenance.freshness is Freshness.STALE
    assert served.provenance.label == "electricitymaps(stale)"
    assert served.provenance.fetched_at == START  # when it was really fetched
    assert static.current_calls == 0
    assert chain.errors["electricitymaps"] == 1
    assert chain.stale_served["electricitymaps"] == 1


async def test_past_the_maximum_stale_age_the_next_provider_answers(
    make_chain: object, live: FakeProvider, static: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, live, static)
    await chain.current(US_WEST_2)
    live.error = ProviderUnavailable("electricitymaps", "HTTP 503")
    clock.advance(3601)
    served = await chain.current(US_WEST_2)
    assert served is not None
    assert served.g_per_kwh == 300.0
    assert served.provenance.provider == "static"
    assert served.provenance.freshness is Freshness.STATIC
    assert served.provenance.fallback_from == ("electricitymaps",)


async def test_when_every_provider_fails_the_value_is_none_not_zero(
    make_chain: object, live: FakeProvider, static: FakeProvider
) -> None:
    chain = chain_of(make_chain, live, static)
    live.error = ProviderAuthError("electricitymaps", "HTTP 401")
    static.error = ProviderUnavailable("static", "no annual factor")
    assert await chain.current(US_WEST_2) is None
    assert await chain.forecast(US_WEST_2, 24) is None


async def test_a_region_no_provider_covers_is_none(make_chain: object) -> None:
    provider = FakeProvider(default=None)
    chain = chain_of(make_chain, provider)
    assert await chain.current(region("on-prem-1", "NOWHERE")) is None
    assert provider.calls == 0
    assert chain.errors.total() == 0


async def test_rate_limited_provider_is_not_called_during_retry_after(
    make_chain: object, live: FakeProvider, static: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, live, static)
    live.error = RateLimited("electricitymaps", "HTTP 429", retry_after=1200)
    first = await chain.current(US_WEST_2)
    assert first is not None
    assert first.provenance.provider == "static"
    live.error = None
    clock.advance(1199)
    during = await chain.current(US_WEST_2)
    await chain.forecast(US_WEST_2, 24)  # the quota is spent for forecasts too
    assert live.calls == 1
    assert during is not None
    assert during.provenance.fallback_from == ("electricitymaps",)
    clock.advance(1)
    after = await chain.current(US_WEST_2)
    assert live.calls == 2
    assert after is not None
    assert after.provenance.provider == "electricitymaps"
    assert after.provenance.fallback_from == ()


async def test_back_off_doubles_per_failure_and_resets_on_success(
    make_chain: object, live: FakeProvider, static: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, live, static)
    live.error = ProviderUnavailable("electricitymaps", "timeout")
    calls_at: list[int] = []
    for _ in range(5 * 60):  # five simulated minutes, a request every second
        await chain.current(US_WEST_2)
        calls_at.append(live.current_calls)
        clock.advance(1)
    # failures at t=0, 60 (after 60 s), 180 (after 120 s): three calls in the first 299 s
    assert calls_at[0] == 1
    assert calls_at[59] == 1
    assert calls_at[60] == 2
    assert calls_at[179] == 2
    assert calls_at[180] == 3
    assert calls_at[-1] == 3
    live.error = None
    clock.advance(240)  # the next retry is due at t=420
    recovered = await chain.current(US_WEST_2)
    assert recovered is not None
    assert recovered.provenance.provider == "electricitymaps"
    live.error = ProviderUnavailable("electricitymaps", "timeout")
    clock.advance(300)
    await chain.current(US_WEST_2)
    clock.advance(60)
    await chain.current(US_WEST_2)
    assert live.current_calls == 6  # back at the base delay after the success


async def test_one_failed_call_counts_once_however_many_callers_waited(
    make_chain: object, clock: ManualClock
) -> None:
    provider = FakeProvider("electricitymaps", delay=0.01, clock=clock)
    provider.error = ProviderUnavailable("electricitymaps", "HTTP 502")
    chain = chain_of(make_chain, provider)
    results = await asyncio.gather(*(chain.current(US_WEST_2) for _ in range(100)))
    assert results == [None] * 100
    assert provider.current_calls == 1
    assert chain.errors["electricitymaps"] == 1


async def test_no_forecast_is_not_a_failure_and_is_asked_again_only_after_the_forecast_ttl(
    make_chain: object, clock: ManualClock
) -> None:
    free_tier = FakeProvider("electricitymaps", clock=clock, forecasts=False)
    chain = chain_of(make_chain, free_tier)
    assert await chain.forecast(US_WEST_2, 24) is None
    assert await chain.forecast(US_WEST_2, 24) is None
    assert free_tier.forecast_calls == 1  # the answer is remembered: no quota spent on it
    assert chain.errors.total() == 0
    assert await chain.current(US_WEST_2) is not None
    clock.advance(SETTINGS.forecast_ttl + 1)
    assert await chain.forecast(US_WEST_2, 24) is None
    assert free_tier.forecast_calls == 2


async def test_no_forecast_falls_through_to_a_provider_that_forecasts(
    make_chain: object, clock: ManualClock
) -> None:
    free_tier = FakeProvider("electricitymaps", clock=clock, forecasts=False)
    mock = FakeProvider("mock", default=250.0, clock=clock)
    chain = chain_of(make_chain, free_tier, mock)
    forecast = await chain.forecast(US_WEST_2, 6)
    assert forecast is not None
    assert len(forecast.points) == 6
    assert forecast.provenance.provider == "mock"
    assert forecast.provenance.fallback_from == ()  # not a failure


async def test_forecasts_are_cached_for_the_forecast_ttl(
    make_chain: object, live: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, live)
    await chain.forecast(US_WEST_2, 24)
    clock.advance(3599)
    await chain.forecast(US_WEST_2, 24)
    assert live.forecast_calls == 1
    clock.advance(1)
    await chain.forecast(US_WEST_2, 24)
    assert live.forecast_calls == 2


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
async def test_an_impossible_value_is_a_failure_not_data(
    make_chain: object, static: FakeProvider, clock: ManualClock, value: float
) -> None:
    broken = FakeProvider("electricitymaps", {"US-NW-BPAT": value}, clock=clock)
    chain = chain_of(make_chain, broken, static)
    served = await chain.current(US_WEST_2)
    assert served is not None
    assert served.provenance.provider == "static"
    assert chain.error_kinds[("electricitymaps", BadResponse.__name__)] == 1


async def test_a_provider_bug_counts_as_an_outage(
    make_chain: object, live: FakeProvider, static: FakeProvider
) -> None:
    chain = chain_of(make_chain, live, static)
    live.error = KeyError("data")
    served = await chain.current(US_WEST_2)
    assert served is not None
    assert served.provenance.fallback_from == ("electricitymaps",)
    assert chain.error_kinds[("electricitymaps", ProviderUnavailable.__name__)] == 1


async def test_a_static_value_served_past_its_ttl_stays_static(
    make_chain: object, static: FakeProvider, clock: ManualClock
) -> None:
    chain = chain_of(make_chain, static)
    await chain.current(US_WEST_2)
    static.error = ProviderUnavailable("static", "catalog unreadable")
    clock.advance(600)
    served = await chain.current(US_WEST_2)
    assert served is not None
    assert served.provenance.freshness is Freshness.STATIC


async def test_a_failure_is_logged_with_provider_location_and_error_type(
    make_chain: object, live: FakeProvider, caplog: pytest.LogCaptureFixture
) -> None:
    chain = chain_of(make_chain, live)
    live.error = ProviderAuthError("electricitymaps", "HTTP 401: invalid auth-token")
    with caplog.at_level(logging.WARNING, logger="shared.carbon.chain"):
        await chain.current(US_WEST_2)
    (record,) = caplog.records
    assert "electricitymaps current for US-NW-BPAT failed (ProviderAuthError" in record.getMessage()


async def test_health_reports_calls_errors_and_back_offs(
    make_chain: object, live: FakeProvider, static: FakeProvider
) -> None:
    chain = chain_of(make_chain, live, static)
    live.error = NoForecast("electricitymaps", "free tier")
    await chain.forecast(US_WEST_2, 24)
    live.error = ProviderUnavailable("electricitymaps", "HTTP 503")
    await chain.current(US_WEST_2)
    health = chain.health()
    providers: Sequence[dict[str, object]] = health["providers"]
    em, st = providers
    assert em["name"] == "electricitymaps"
    assert em["calls"] == 2
    assert em["errors"] == 1
    assert em["backingOff"] == 1
    assert em["lastError"] == "electricitymaps: HTTP 503"
    assert st["errors"] == 0
    assert st["lastSuccessAt"] == "2026-11-26T12:00:00Z"
    assert health["cache"]["backend"] == "memory"


async def test_closing_the_chain_closes_its_providers(
    make_chain: object, live: FakeProvider, static: FakeProvider
) -> None:
    chain = chain_of(make_chain, live, static)
    await chain.close()
    assert live.closed
    assert static.closed

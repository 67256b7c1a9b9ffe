"""Every HTTP provider maps the same upstream failures to the same errors, each against its fake."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest

from shared.carbon.providers.base import CarbonProvider
from shared.carbon.providers.carbonaware import CarbonAwareSdkProvider
from shared.carbon.providers.custom_http import CustomHttpProvider
from shared.carbon.providers.electricitymaps import ElectricityMapsProvider
from shared.core.clock import fixed
from shared.core.errors import BadResponse, ProviderUnavailable, RateLimited
from shared.core.models import Cloud, RegionInfo
from shared.core.secret import Secret
from tests.fakes import carbonaware, custom_api, electricitymaps
from tests.fakes.upstream import FakeUpstream
from tests.unit.carbon.providers.closing import Closing


@dataclass(frozen=True)
class Upstream:
    """One provider, the fake API it reads, and what that fake answers."""

    serve: Callable[[], AbstractAsyncContextManager[FakeUpstream[Any]]]
    open: Callable[[Any, float], CarbonProvider]
    """The provider reading the served fake, with the given timeout in seconds."""
    mode: type[enum.StrEnum]
    region: RegionInfo
    retry_after: int
    """The fake's default ``Retry-After``, in seconds."""
    server_error: int
    """The status the fake answers in its server-error mode."""


UPSTREAMS = {
    "electricitymaps": Upstream(
        serve=electricitymaps.serve,
        open=lambda fake, timeout: ElectricityMapsProvider(
            Secret(electricitymaps.TOKEN),
            base_url=fake.base_url,
            clock=fixed(electricitymaps.NOW),
            timeout=timeout,
        ),
        mode=electricitymaps.Mode,
        region=RegionInfo(cloud=Cloud.AWS, region="eu-central-1", zone="DE"),
        retry_after=30,
        server_error=500,
    ),
    "carbonaware": Upstream(
        serve=carbonaware.serve,
        open=lambda fake, timeout: CarbonAwareSdkProvider(
            fake.base_url, clock=fixed(carbonaware.NOW), timeout=timeout
        ),
        mode=carbonaware.Mode,
        region=RegionInfo(
            cloud=Cloud.AZURE, region="eastus", zone="US-MIDA-PJM", watttime_region="PJM_DC"
        ),
        retry_after=120,
        server_error=500,
    ),
    "custom_http": Upstream(
        serve=custom_api.serve,
        open=lambda fake, timeout: CustomHttpProvider(
            fake.url, forecast_url=fake.forecast_url, clock=fixed(custom_api.NOW), timeout=timeout
        ),
        mode=custom_api.Mode,
        region=RegionInfo(cloud=Cloud.AWS, region="us-west-2", zone="US-NW-BPAT"),
        retry_after=15,
        server_error=502,
    ),
}


@pytest.fixture(params=list(UPSTREAMS.values()), ids=list(UPSTREAMS))
def upstream(request: pytest.FixtureRequest) -> Upstream:
    chosen: Upstream = request.param
    return chosen


@pytest.fixture
async def fake(upstream: Upstream) -> AsyncIterator[FakeUpstream[Any]]:
    async with upstream.serve() as served:
        yield served


@pytest.fixture
def provider(upstream: Upstream, fake: FakeUpstream[Any], closing: Closing) -> CarbonProvider:
    return closing(upstream.open(fake, 10.0))


async def test_rate_limit_carries_retry_after_given_in_seconds(
    upstream: Upstream, fake: FakeUpstream[Any], provider: CarbonProvider
) -> None:
    fake.set_mode(upstream.mode("rate-limited"))

    with pytest.raises(RateLimited) as caught:
        await provider.current(upstream.region)

    assert caught.value.retry_after == upstream.retry_after


async def test_a_server_error_makes_the_provider_unavailable(
    upstream: Upstream, fake: FakeUpstream[Any], provider: CarbonProvider
) -> None:
    fake.set_mode(upstream.mode("server-error"))

    with pytest.raises(ProviderUnavailable, match=f"HTTP {upstream.server_error}"):
        await provider.current(upstream.region)
    with pytest.raises(ProviderUnavailable, match=f"HTTP {upstream.server_error}"):
        await provider.forecast(upstream.region, hours=24)


async def test_an_answer_slower_than_the_timeout_makes_the_provider_unavailable(
    upstream: Upstream, fake: FakeUpstream[Any], closing: Closing
) -> None:
    fake.set_mode(upstream.mode("slow"))
    hasty = closing(upstream.open(fake, 0.05))

    with pytest.raises(ProviderUnavailable, match=r"no answer within 0\.05 s"):
        await hasty.current(upstream.region)


async def test_malformed_json_is_a_bad_response(
    upstream: Upstream, fake: FakeUpstream[Any], provider: CarbonProvider
) -> None:
    fake.set_mode(upstream.mode("malformed"))

    with pytest.raises(BadResponse, match="not JSON"):
        await provider.current(upstream.region)

"""The ordered provider chain: one value per region, with caching, back-off and fallback.

For each value (a region's current intensity, or its forecast) the chain walks the configured
providers in order. A fresh cached value is used as is; otherwise the provider is asked (once per
key, however many callers, through ``CarbonCache.load``). When a provider fails, its last value
within the maximum stale age is served flagged ``stale``; without one the chain moves on to the
next provider and records the failed ones in ``Provenance.fallback_from``. After a failure a
provider is left alone for that key for an exponentially growing, jittered time (at least what a
429's ``Retry-After`` asked for), during which stale or fallback values are served without calling
it. When every provider fails the answer is None: an unknown value is never 0.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from shared.carbon.cache import CURRENT, FORECAST, CacheEntry, CarbonCache, EntryKind
from shared.carbon.providers.base import CarbonProvider
from shared.core.backoff import Backoff
from shared.core.clock import Clock, rfc3339, utcnow
from shared.core.errors import (
    BadResponse,
    NoForecast,
    ProviderError,
    ProviderUnavailable,
    RateLimited,
)
from shared.core.errors import truncate as truncate_text
from shared.core.models import Forecast, Freshness, Intensity, RegionInfo
from shared.core.tasks import SingleFlight
from shared.settings import CarbonSettings

logger = logging.getLogger(__name__)

T = TypeVar("T", Intensity, Forecast)

_KINDS = (CURRENT.name, FORECAST.name)


@dataclass(slots=True)
class _BackingOff:
    """Consecutive failures of one provider for one location and kind of value."""

    failures: int
    until: datetime
    error: ProviderError


@dataclass(frozen=True, slots=True)
class _Step(Generic[T]):
    """What one provider gave for one key: a value (maybe stale), or why the chain moves on."""

    entry: CacheEntry[T] | None
    stale: bool = False
    failed: bool = False
    """The provider failed (or is backing off): it goes into ``fallback_from``."""


class ProviderChain:
    """Current and forecast intensity for a region from the first provider that can give it."""

    def __init__(
        self,
        providers: Sequence[CarbonProvider],
        cache: CarbonCache,
        *,
        settings: CarbonSettings,
        clock: Clock = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self._providers = tuple(providers)
        self._cache = cache
        self._settings = settings
        self._clock = clock
        # Jitter spreads retries of replicas (and of zones failing together) apart.
        self._backoff = Backoff(settings.backoff_base, settings.backoff_max, rng=rng)
        self._backoffs: dict[tuple[str, str, str], _BackingOff] = {}
        self.calls: Counter[str] = Counter()
        """Upstream calls made by this process, per provider."""
        self.errors: Counter[str] = Counter()
        """Failed upstream calls (or failures shared by a replica), per provider."""
        self.error_kinds: Counter[tuple[str, str]] = Counter()
        """Failures per (provider, error class), e.g. ``("electricitymaps", "RateLimited")``."""
        self.stale_served: Counter[str] = Counter()
        """Values served stale because their provider failed or was backing off, per provider."""
        self._last_success: dict[str, datetime] = {}
        self._flights: SingleFlight[tuple[str, str, str]] = SingleFlight()
        self._no_forecast_until: dict[tuple[str, str], datetime] = {}
        """(provider, key) → when to ask again after the provider said it cannot forecast it.
        Remembered for the forecast TTL: a free-tier token would otherwise spend one request per
        zone per refresh cycle learning the same answer."""

    @property
    def providers(self) -> tuple[CarbonProvider, ...]:
        return self._providers

    @property
    def cache(self) -> CarbonCache:
        return self._cache

    async def current(self, region: RegionInfo) -> Intensity | None:
        """The region's current intensity: live, stale or static; None when nothing is known."""

        async def fetch(provider: CarbonProvider) -> Intensity:
            return _checked_intensity(provider.name, await provider.current(region))

        return await self._resolve(CURRENT, region, fetch, ttl=self._settings.current_ttl)

    async def forecast(self, region: RegionInfo, hours: int) -> Forecast | None:
        """Forecast points up to ``hours`` ahead from the first provider that forecasts the zone.

        ``NoForecast`` is not a failure: the chain moves on without backing off.
        """
        if hours <= 0:
            raise ValueError(f"hours must be positive, got {hours}")

        async def fetch(provider: CarbonProvider) -> Forecast:
            return _checked_forecast(provider.name, await provider.forecast(region, hours))

        return await self._resolve(
            FORECAST, region, fetch, ttl=self._settings.forecast_ttl, suffix=f"@{hours}h"
        )

    async def _resolve(
        self,
        kind: EntryKind[T],
        region: RegionInfo,
        fetch: Callable[[CarbonProvider], Awaitable[T]],
        *,
        ttl: float,
        suffix: str = "",
    ) -> T | None:
        failed: list[str] = []
        for provider in self._providers:
            location = provider.location_key(region)
            if location is None:
                continue  # this provider does not cover the region; not a failure
            step = await self._step(kind, provider, location, location + suffix, fetch, ttl)
            if step.entry is not None:
                if step.stale:
                    self.stale_served[provider.name] += 1
                return _labelled(step.entry.value, failed, stale=step.stale)
            if step.failed:
                failed.append(provider.name)
        if failed:
            logger.info("no %s value for %s: %s failed", kind.name, region.key, ", ".join(failed))
        return None

    async def _step(
        self,
        kind: EntryKind[T],
        provider: CarbonProvider,
        location: str,
        key: str,
        fetch: Callable[[CarbonProvider], Awaitable[T]],
        ttl: float,
    ) -> _Step[T]:
        """One provider's answer for one key, shared by every concurrent caller.

        Coalescing the whole step (cache read included, not just the upstream call) keeps a burst
        of callers from opening a cache connection each, and books a failure once, not per caller.
        """
        return await self._flights.run(
            (kind.name, provider.name, key),
            lambda: self._ask(kind, provider, location, key, fetch, ttl),
        )

    async def _ask(
        self,
        kind: EntryKind[T],
        provider: CarbonProvider,
        location: str,
        key: str,
        fetch: Callable[[CarbonProvider], Awaitable[T]],
        ttl: float,
    ) -> _Step[T]:
        entry = await self._cache.get(kind, provider.name, key)
        now = self._clock()
        if entry is not None and entry.age(now) < ttl:
            return _Step(entry)
        fallback = entry if entry is not None and self._servable(entry, now) else None
        if kind is FORECAST:
            until = self._no_forecast_until.get((provider.name, key))
            if until is not None and until > now:
                return _Step(None)
        backoff = self._backoffs.get((provider.name, location, kind.name))
        if backoff is not None and backoff.until > now:
            logger.debug("%s backing off for %s until %s", provider.name, key, backoff.until)
            return _Step(fallback, stale=True, failed=True)
        try:
            loaded = await self._cache.load(
                kind, provider.name, key, self._counted(provider, fetch), ttl=ttl
            )
        except NoForecast:
            logger.debug("%s has no forecast for %s", provider.name, key)
            self._no_forecast_until[(provider.name, key)] = now + timedelta(seconds=ttl)
            return _Step(None)
        except ProviderError as e:
            self._record_failure(provider.name, location, kind, e)
            return _Step(fallback, stale=True, failed=True)
        self._record_success(provider.name, location, kind)
        return _Step(loaded)

    def _counted(
        self, provider: CarbonProvider, fetch: Callable[[CarbonProvider], Awaitable[T]]
    ) -> Callable[[], Awaitable[T]]:
        """The upstream call as the cache runs it (once per flight): counted, errors typed."""

        async def call() -> T:
            self.calls[provider.name] += 1
            try:
                return await fetch(provider)
            except ProviderError:
                raise
            except Exception as e:
                # A provider bug must not take the chain down; it counts as an outage.
                raise ProviderUnavailable(
                    provider.name, f"unexpected {type(e).__name__}: {truncate_text(str(e))}"
                ) from e

        return call

    def _servable(self, entry: CacheEntry[Any], now: datetime) -> bool:
        return entry.age(now) <= self._settings.max_stale

    def _record_failure(
        self, provider: str, location: str, kind: EntryKind[Any], error: ProviderError
    ) -> None:
        previous = self._backoffs.get((provider, location, kind.name))
        failures = previous.failures + 1 if previous is not None else 1
        retry_after = error.retry_after if isinstance(error, RateLimited) else None
        delay = self._backoff.delay(failures, retry_after=retry_after)
        until = self._clock() + timedelta(seconds=delay)
        # A quota is exhausted for every kind of request to that location, not just this one.
        kinds = _KINDS if isinstance(error, RateLimited) else (kind.name,)
        for name in kinds:
            self._backoffs[(provider, location, name)] = _BackingOff(failures, until, error)
        self.errors[provider] += 1
        self.error_kinds[(provider, type(error).__name__)] += 1
        logger.warning(
            "%s %s for %s failed (%s, %d in a row): %s; not asking again for %.0f s",
            provider,
            kind.name,
            location,
            type(error).__name__,
            failures,
            error,
            delay,
        )

    def _record_success(self, provider: str, location: str, kind: EntryKind[Any]) -> None:
        if self._backoffs.pop((provider, location, kind.name), None) is not None:
            logger.info("%s %s for %s recovered", provider, kind.name, location)
        self._last_success[provider] = self._clock()

    def health(self) -> dict[str, Any]:
        """Per-provider calls, failures and back-offs, plus the cache's state, for ``/health``."""
        now = self._clock()
        providers = []
        for provider in self._providers:
            name = provider.name
            active = [b for (p, _, _), b in self._backoffs.items() if p == name and b.until > now]
            last_error = max(active, key=lambda b: b.until).error if active else None
            success = self._last_success.get(name)
            providers.append(
                {
                    "name": name,
                    "calls": self.calls[name],
                    "errors": self.errors[name],
                    "staleServed": self.stale_served[name],
                    "backingOff": len(active),
                    "lastError": None if last_error is None else str(last_error),
                    "lastSuccessAt": None if success is None else rfc3339(success),
                }
            )
        return {"providers": providers, "cache": self._cache.status()}

    async def close(self) -> None:
        """Close the providers and the cache the chain was given."""
        self._flights.cancel_all()
        for provider in self._providers:
            try:
                await provider.close()
            except Exception as e:
                logger.debug("closing %s failed: %s", provider.name, type(e).__name__)
        await self._cache.close()


def _labelled(value: T, failed: list[str], *, stale: bool) -> T:
    provenance = value.provenance
    freshness = provenance.freshness
    if stale and freshness is Freshness.LIVE:
        freshness = Freshness.STALE  # a static value stays static: it never was live
    return replace(
        value,
        provenance=replace(provenance, freshness=freshness, fallback_from=tuple(failed)),
    )


def _checked_intensity(provider: str, intensity: Intensity) -> Intensity:
    if not math.isfinite(intensity.g_per_kwh) or intensity.g_per_kwh < 0:
        raise BadResponse(provider, f"unusable intensity {intensity.g_per_kwh!r}")
    return intensity


def _checked_forecast(provider: str, forecast: Forecast) -> Forecast:
    if not forecast.points:
        raise NoForecast(provider, "empty forecast")
    for point in forecast.points:
        if not math.isfinite(point.g_per_kwh) or point.g_per_kwh < 0:
            raise BadResponse(provider, f"unusable forecast value {point.g_per_kwh!r}")
    return forecast

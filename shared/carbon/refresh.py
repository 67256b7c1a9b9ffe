"""Background refresh: keeps a ``CarbonSnapshot`` of every tracked region current.

Providers are only ever called from here (through the chain and its cache), never on the admission
path or per reporter request. Each cycle builds a complete new snapshot and swaps it in with one
assignment, so readers always see a consistent picture without locks. Regions that share a grid
zone cost one upstream call: the cache keys by the provider's location key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, TypeVar

from shared.carbon.chain import ProviderChain
from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.core.clock import Clock, rfc3339, utcnow
from shared.core.errors import truncate
from shared.core.models import Forecast, Freshness, Intensity, RegionInfo
from shared.core.tasks import cancel_and_wait
from shared.settings import CarbonSettings

logger = logging.getLogger(__name__)

T = TypeVar("T", Intensity, Forecast)

_CONCURRENCY = 8
"""Regions refreshed at once: enough to overlap upstream latency, few enough to be polite."""


class CarbonRefresher:
    """Refreshes carbon data for the tracked regions in the background."""

    def __init__(
        self,
        chain: ProviderChain,
        resolve: Callable[[str], RegionInfo | None],
        *,
        settings: CarbonSettings,
        clock: Clock = utcnow,
    ) -> None:
        """``resolve`` maps a region label value to its catalog entry (None when unknown)."""
        self._chain = chain
        self._resolve = resolve
        self._settings = settings
        self._clock = clock
        self._tracked: frozenset[str] = frozenset(settings.extra_regions)
        self._snapshot = CarbonSnapshot(taken_at=clock())
        self._unresolved: tuple[str, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._cycle_lock = asyncio.Lock()
        self.last_success: datetime | None = None
        """When the last refresh cycle completed."""
        self.last_error: str | None = None
        self.cycles = 0
        self.failed_cycles = 0

    # what to refresh

    def track(self, regions: Iterable[str]) -> None:
        """Set the regions in use (e.g. from the node inventory); extra regions always stay.

        Newly added regions wake the background loop so they do not wait a whole interval.
        """
        tracked = frozenset(regions) | frozenset(self._settings.extra_regions)
        added = tracked - self._tracked
        self._tracked = tracked
        if added:
            logger.info("tracking %d new region(s): %s", len(added), ", ".join(sorted(added)))
            self._wake.set()

    @property
    def tracked(self) -> frozenset[str]:
        return self._tracked

    @property
    def snapshot(self) -> CarbonSnapshot:
        """The latest complete snapshot; safe to read at any time without awaiting."""
        return self._snapshot

    # refreshing

    async def refresh_once(self) -> CarbonSnapshot:
        """Fetch (through cache and chain) every tracked region and swap in a new snapshot."""
        async with self._cycle_lock:
            self._wake.clear()  # this cycle covers every region tracked so far
            regions = sorted(self._tracked)
            previous = self._snapshot
            limit = asyncio.Semaphore(_CONCURRENCY)

            async def one(name: str) -> RegionCarbon | None:
                async with limit:
                    return await self._region(name, previous.get(name))

            results = await asyncio.gather(*(one(name) for name in regions))
            carbon = {name: rc for name, rc in zip(regions, results, strict=True) if rc is not None}
            self._unresolved = tuple(
                name for name, rc in zip(regions, results, strict=True) if rc is None
            )
            snapshot = CarbonSnapshot(taken_at=self._clock(), regions=MappingProxyType(carbon))
            self._snapshot = snapshot  # one assignment: readers see the old or the new, never half
            self.last_success = snapshot.taken_at
            self.cycles += 1
            unknown = [name for name, rc in carbon.items() if rc.current is None]
            logger.debug(
                "refreshed %d region(s), %d without data, %d unresolved",
                len(carbon),
                len(unknown),
                len(self._unresolved),
            )
            return snapshot

    async def _region(self, name: str, previous: RegionCarbon | None) -> RegionCarbon | None:
        info = self._resolve(name)
        if info is None:
            return None
        current = await self._guarded(self._chain.current(info), info, "current")
        forecast = await self._guarded(
            self._chain.forecast(info, self._settings.forecast_hours), info, "forecast"
        )
        # The chain's cache normally covers outages; this also covers a cache that is down.
        if current is None and previous is not None:
            current = self._still_servable(previous.current)
        if forecast is None and previous is not None:
            forecast = self._still_servable(previous.forecast)
        return RegionCarbon(info=info, current=current, forecast=forecast)

    async def _guarded(self, call: Awaitable[T | None], info: RegionInfo, what: str) -> T | None:
        try:
            return await call
        except Exception as e:  # one region's bug must not cost the others their refresh
            logger.error(
                "refreshing %s of %s failed: %s: %s",
                what,
                info.key,
                type(e).__name__,
                truncate(str(e)),
            )
            logger.debug("refresh failure detail", exc_info=True)
            return None

    def _still_servable(self, value: T | None) -> T | None:
        if value is None:
            return None
        age = (self._clock() - value.provenance.fetched_at).total_seconds()
        if age > self._settings.max_stale:
            return None
        if value.provenance.freshness is Freshness.LIVE:
            value = replace(value, provenance=replace(value.provenance, freshness=Freshness.STALE))
        return value

    # lifecycle

    async def start(self) -> None:
        """Refresh once (so the first snapshot is ready), then keep refreshing in the background."""
        if self._task is not None:
            return
        await self._cycle()
        self._task = asyncio.create_task(self._run(), name="carbon-refresh")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def _run(self) -> None:
        while True:
            # Sleep one interval, or less when newly tracked regions need data.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.refresh_interval)
            await self._cycle()

    async def _cycle(self) -> None:
        try:
            await self.refresh_once()
        except Exception as e:  # the loop must survive anything a cycle throws
            self.failed_cycles += 1
            self.last_error = f"{type(e).__name__}: {truncate(str(e))}"
            logger.error("carbon refresh failed: %s", self.last_error)
            logger.debug("refresh failure detail", exc_info=True)
        else:
            self.last_error = None

    # observability

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def age_seconds(self) -> float | None:
        """Seconds since the last completed refresh; None before the first one."""
        if self.last_success is None:
            return None
        return max(0.0, (self._clock() - self.last_success).total_seconds())

    def status(self) -> dict[str, Any]:
        """For health output: is data being refreshed, how old and how complete it is."""
        regions = self._snapshot.regions.values()
        known = [rc for rc in regions if rc.current is not None]
        return {
            "running": self.running,
            "tracked": len(self._tracked),
            "known": len(known),
            "stale": sum(1 for rc in known if rc.current is not None and rc.current.stale),
            "withoutData": sorted(rc.info.region for rc in regions if rc.current is None),
            "unresolved": list(self._unresolved),
            "lastSuccess": None if self.last_success is None else rfc3339(self.last_success),
            "ageSeconds": self.age_seconds(),
            "cycles": self.cycles,
            "failedCycles": self.failed_cycles,
            "lastError": self.last_error,
            "providers": self._chain.health(),
        }

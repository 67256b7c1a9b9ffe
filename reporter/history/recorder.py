"""The hourly recorder: files the reporter's current view as the samples of the current hour.

A background task (the application's cleanup context) migrates the database, then samples every
``interval`` seconds and at the start of every hour, so drift never skips one. It records only
once the carbon data and the inventory are ready: an hour without real data stays a gap. A sample
of an hour already stored (by this replica before a restart, or by another one) is left as it is.
Errors are logged and reported by ``GET health``; they never stop the reporter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from reporter.health import HealthCheck, Status
from reporter.history.samples import HOUR, hour_of, hourly_samples
from reporter.history.store import HistoryError, HistoryStore
from reporter.views import ViewCache
from shared.core.clock import Clock, rfc3339

logger = logging.getLogger(__name__)

SETTLE = timedelta(minutes=1)
"""How long after an hour starts its first sample is taken: a refresh cycle's worth of time."""
NOT_READY_RETRY = timedelta(seconds=15)
MIGRATE_RETRY = timedelta(seconds=30)
STARTUP_MIGRATE_TIMEOUT = timedelta(seconds=10)
STOP_TIMEOUT = timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    hour: datetime
    written: int
    """Samples newly stored; 0 when this hour was already recorded."""


class HistoryRecorder:
    """Writes hourly samples to ``store`` from ``views``; ``ready`` once the schema is migrated."""

    def __init__(
        self,
        store: HistoryStore,
        views: ViewCache,
        *,
        clock: Clock,
        interval: timedelta = HOUR,
        retention: timedelta = timedelta(days=400),
    ) -> None:
        self.store = store
        self.retention = retention
        self._views = views
        self._clock = clock
        self._interval = interval
        self.ready = False
        self.last: RecordOutcome | None = None
        self.last_error: str | None = None

    async def migrate(self) -> None:
        version = await self.store.migrate()
        self.ready = True
        logger.info("history ready on %s, schema version %d", self.store.backend, version)

    async def record_once(self) -> RecordOutcome | None:
        """Sample the current hour; None (nothing written: a gap) while the data is not ready."""
        if not self._views.ready():
            return None
        now = self._clock()
        view = self._views.current()
        batch = hourly_samples(view.footprints, view.pods.values(), view.placement, at=now)
        outcome = RecordOutcome(hour_of(now), await self.store.record(batch))
        await self.store.prune(now - self.retention)
        self.last = outcome
        return outcome

    def delay(self, now: datetime, *, recorded: bool) -> float:
        """Seconds until the next sample: the interval, or the next hour's first sample if that
        comes sooner; soon again when this hour could not be sampled."""
        if not recorded:
            return NOT_READY_RETRY.total_seconds()
        next_hour = hour_of(now) + HOUR + SETTLE
        return max(1.0, min(self._interval, next_hour - now).total_seconds())

    async def run(self, stopping: asyncio.Event) -> None:
        """Migrate, then record until ``stopping`` is set; a write under way is finished first,
        so shutting down never leaves a connection mid-transaction."""
        while not self.ready and not stopping.is_set():
            try:
                await self.migrate()
            except HistoryError as e:
                self.last_error = str(e)
                logger.warning("history unavailable, retrying: %s", e)
                await _pause(stopping, MIGRATE_RETRY.total_seconds())
        while not stopping.is_set():
            try:
                outcome = await self.record_once()
            except HistoryError as e:
                self.last_error = str(e)
                logger.warning("recording the history failed: %s", e)
                outcome = None
            else:
                if outcome is not None:
                    self.last_error = None
                    logger.debug("history %s: %d samples stored", outcome.hour, outcome.written)
            await _pause(stopping, self.delay(self._clock(), recorded=outcome is not None))

    def check(self) -> HealthCheck:
        """Degraded (never down: the live API does not need it) while the history fails."""
        details = {
            "backend": self.store.backend,
            "lastRecordedHour": rfc3339(self.last.hour) if self.last is not None else None,
        }
        if self.last_error is not None:
            return HealthCheck("history", Status.DEGRADED, self.last_error, False, details)
        if not self.ready:
            return HealthCheck(
                "history", Status.DEGRADED, "schema not migrated yet", False, details
            )
        return HealthCheck("history", Status.OK, "recording", False, details)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """Cleanup context: migrate before serving when the database answers in time (so the
        history endpoints work from the first request), record until shutdown, then close."""
        try:
            await asyncio.wait_for(self.migrate(), STARTUP_MIGRATE_TIMEOUT.total_seconds())
        except (HistoryError, TimeoutError) as e:
            self.last_error = str(e) or "the database did not answer in time"
            logger.warning("history not ready at start, retrying: %s", self.last_error)
        stopping = asyncio.Event()
        task = asyncio.create_task(self.run(stopping), name="history-recorder")
        yield
        stopping.set()
        try:
            await asyncio.wait_for(task, STOP_TIMEOUT.total_seconds())
        except TimeoutError:  # wait_for has cancelled it: the database did not answer
            logger.warning("the history recorder did not stop in time")
        await self.store.close()


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less when ``stopping`` is set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)

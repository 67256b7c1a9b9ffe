"""``GET history`` and ``GET report``: parse the range, read the stored samples, answer.

The maths is in ``series`` and ``report``; this module only turns query parameters into a range
of whole hours (or a 400 naming the parameter) and reads the store, which is the one awaited
call. A history that is not ready, or fails, is a 503: the live views keep working without it.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, get_args

import orjson
from aiohttp import web
from multidict import MultiMapping

from reporter import params
from reporter.errors import BadParameter, HistoryUnavailable
from reporter.history.market import market_based
from reporter.history.recorder import HistoryRecorder
from reporter.history.report import (
    Accounts,
    Period,
    Signal,
    build_report,
    replica_hours,
    report_csv,
)
from reporter.history.samples import CLUSTER, HOUR, MIXED, NO_ROLE, READ_REPLICAS, Kind, hour_of
from reporter.history.series import DAY, HourSums, Step, SubjectTotal, Tally, points
from reporter.history.store import HistoryError, StoredRange, epoch_hour
from reporter.placement import BASELINE
from reporter.routes import API, REPORTER, Reporter
from shared.cluster.pods import StellarRole
from shared.core.clock import rfc3339

_T = TypeVar("_T")

ROLES: tuple[str, ...] = (*get_args(StellarRole), MIXED, NO_ROLE)
HISTORY_SPAN = timedelta(hours=24)
REPORT_SPAN = timedelta(days=30)
FORMATS = ("json", "csv")


def resolve_period(
    query: MultiMapping[str],
    *,
    now: datetime,
    retention: timedelta,
    default_span: timedelta,
    step: Step = Step.HOUR,
) -> Period:
    """``from`` and ``to`` as whole UTC hours (``from`` to the day for daily steps), defaulting to
    the ``default_span`` up to the end of the current hour; a 400 naming the parameter when the
    range is reversed, reaches into the future or goes back further than the retention."""
    current_end = hour_of(now) + HOUR
    oldest = hour_of(now) - retention + HOUR
    start, end = params.moment(query, "from"), params.moment(query, "to")
    if end is None:
        end = current_end
    elif end > current_end:
        raise BadParameter(
            "to", f"must not be after the current hour's end, {rfc3339(current_end)}"
        )
    else:
        end = _ceil_hour(end)
    if start is None:
        start = max(end - default_span, oldest)
    start = hour_of(start)
    if step is Step.DAY:
        start = start.replace(hour=0)
    if start >= end:
        raise BadParameter("from", f"must be before to ({rfc3339(end)})")
    if start < oldest:
        days = int(retention / DAY)
        raise BadParameter(
            "from", f"must not be before {rfc3339(oldest)}: the history keeps {days} days"
        )
    return Period(start, end)


def _json(body: dict[str, Any]) -> web.Response:
    # A month of hourly points is a large document; orjson writes it several times faster.
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _ceil_hour(at: datetime) -> datetime:
    floor = hour_of(at)
    return floor if floor == at else floor + HOUR


def _recorder(state: Reporter) -> HistoryRecorder:
    recorder = state.history
    if recorder is None:
        raise HistoryUnavailable("the history is not configured")
    if not recorder.ready:
        raise HistoryUnavailable(f"the history is not ready: {recorder.last_error or 'starting'}")
    return recorder


@dataclass(frozen=True, slots=True)
class _History:
    """The store's reads over one period, each failure a 503."""

    recorder: HistoryRecorder
    period: Period

    def range(self, kind: Kind, subject: str | None = None) -> StoredRange:
        return StoredRange(
            kind, epoch_hour(self.period.start), epoch_hour(self.period.end), subject
        )

    async def __call__(self, read: Awaitable[_T]) -> _T:
        try:
            return await read
        except HistoryError as e:
            raise HistoryUnavailable(f"reading the history failed: {e}") from e


async def get_history(request: web.Request) -> web.Response:
    state = request.app[REPORTER]
    query = request.query
    step = Step(params.choice(query, "step", tuple(Step), default=Step.HOUR))
    region = params.text(query, "region")
    role = params.choice(query, "role", ROLES, default="") or None
    if region is not None and role is not None:
        raise BadParameter("role", "give region or role, not both")
    recorder = _recorder(state)
    period = resolve_period(
        query, now=state.clock(), retention=recorder.retention, default_span=HISTORY_SPAN, step=step
    )
    history = _History(recorder, period)
    store = recorder.store
    replicas: list[HourSums] | None = None
    if region is not None:
        subject: dict[str, Any] = {"kind": "region", "name": region}
        (hours,) = await history(store.hour_sums(history.range(Kind.REGION, region)))
    elif role is not None:
        subject = {"kind": "role", "name": role}
        (hours,) = await history(store.hour_sums(history.range(Kind.ROLE, role)))
    else:
        subject = {"kind": "cluster", "name": None}
        hours, replicas = await history(
            store.hour_sums(history.range(Kind.CLUSTER), history.range(Kind.REPLICAS))
        )
    series = points(
        hours,
        start=epoch_hour(period.start),
        end=epoch_hour(period.end),
        step=step,
        replicas=replicas,
    )
    return _json(
        {
            "subject": subject,
            "from": rfc3339(period.start),
            "to": rfc3339(period.end),
            "step": str(step),
            "estimate": True,
            "scope2Method": "location-based",
            "readReplicaBaseline": BASELINE if replicas is not None else None,
            "points": series,
        }
    )


async def get_report(request: web.Request) -> web.Response:
    state = request.app[REPORTER]
    query = request.query
    output = params.choice(query, "format", FORMATS, default="json")
    recorder = _recorder(state)
    period = resolve_period(
        query, now=state.clock(), retention=recorder.retention, default_span=REPORT_SPAN
    )
    history = _History(recorder, period)
    store = recorder.store
    regions = await history(store.totals(history.range(Kind.REGION)))
    market = {
        name: market_based(
            await history(store.read(history.range(Kind.REGION, name))),
            declared,
            start=period.start,
            end=period.end,
        )
        for name, declared in state.instruments.items()
        if name in regions
    }
    replica_samples = await history(store.read(history.range(Kind.REPLICAS)))
    empty = SubjectTotal(Tally(hours=period.hours))
    cluster = await history(store.totals(history.range(Kind.CLUSTER)))
    replicas = await history(store.totals(history.range(Kind.REPLICAS)))
    accounts = Accounts(
        cluster=cluster.get(CLUSTER, empty).tally,
        regions=regions,
        roles=await history(store.totals(history.range(Kind.ROLE))),
        replicas=replicas.get(READ_REPLICAS, empty).tally,
        replica_hours=replica_hours(replica_samples),
        market=market,
    )
    carbon = state.settings.carbon
    report = build_report(
        period,
        accounts,
        signal=Signal(carbon.providers, str(carbon.emission_factor_type)),
        generated_at=state.clock(),
        market_declared=bool(state.instruments),
    )
    if output == "csv":
        name = f"stellar-carbon-report-{period.start:%Y%m%dT%H}-{period.end:%Y%m%dT%H}.csv"
        return web.Response(
            text=report_csv(report),
            content_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return _json(report)


def add_routes(app: web.Application) -> None:
    app.router.add_get(f"{API}/history", get_history, name="history")
    app.router.add_get(f"{API}/report", get_report, name="report")

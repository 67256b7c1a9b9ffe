"""Where samples live: an SQLite file by default, PostgreSQL when several replicas share one
history. One code path over both: SQLAlchemy 2 core on asyncio (aiosqlite, asyncpg).

Why SQLAlchemy core: the two databases differ in drivers, parameter styles, upsert spelling and
transaction quirks, and core hides all four behind one typed query builder without an ORM's
session and identity map. The only dialect branch left is which ``insert`` builds
``ON CONFLICT DO NOTHING``, which both databases speak.

Writes are idempotent: a sample whose (kind, subject, hour) is already stored is ignored, so a
restart, a replay or a second replica writing the same hour keeps the first record of that hour,
once. Nothing is ever written for an hour that was not sampled. The samples newly stored are
added to their day's sums (``schema.days``) in the same transaction, so a day holds exactly the
samples stored for it; sums over a range read whole days from there and only the hours at its
ends from the samples.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Select,
    bindparam,
    case,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from reporter.history.samples import COVERAGE_RANKS, Kind, Sample, rank
from reporter.history.schema import DAYS_FROM_SAMPLES, MIGRATIONS, days, samples, schema_version
from reporter.history.series import Hourly, HourSums, SubjectTotal, Tally
from shared.core.errors import truncate

logger = logging.getLogger(__name__)

_EPOCH = datetime.fromtimestamp(0, UTC)
_WRITING = "stellar_carbon_writing"
"""Execution option marking a transaction that writes (see ``HistoryStore._begin``)."""
_MIGRATION_LOCK = 0x5C4_0001
"""PostgreSQL advisory lock key held while migrating (any constant, the same in every replica)."""


class HistoryError(Exception):
    """The history database could not be opened, migrated, read or written."""


def epoch_hour(at: datetime) -> int:
    """Hours since the Unix epoch of ``at``'s UTC hour."""
    return int((at - _EPOCH).total_seconds() // 3600)


def hour_start(hour: int) -> datetime:
    return _EPOCH + timedelta(hours=hour)


def database_url(location: str) -> str:
    """The SQLAlchemy URL of a ``postgresql://`` URL or an SQLite file path."""
    if location.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + location.split("://", 1)[1]
    return f"sqlite+aiosqlite:///{Path(location)}"


@dataclass(frozen=True, slots=True)
class StoredRange:
    """The samples of one kind (and optionally one subject) between two hours, half-open."""

    kind: Kind
    start: int
    end: int
    subject: str | None = None


class HistoryStore:
    """Opens the database, migrates it, and reads and writes samples."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    @classmethod
    def open(cls, location: str) -> HistoryStore:
        """A store over ``location`` (an SQLite path or a ``postgresql://`` URL); no I/O yet."""
        url = make_url(database_url(location))
        if url.get_backend_name() == "sqlite":
            engine = create_async_engine(url)
            _sqlite_transactions(engine)
        else:
            engine = create_async_engine(url, pool_pre_ping=True, pool_size=4)
        return cls(engine)

    @property
    def backend(self) -> str:
        return self._engine.dialect.name

    async def close(self) -> None:
        await self._engine.dispose()

    @asynccontextmanager
    async def _begin(self, *, writing: bool = False) -> AsyncIterator[AsyncConnection]:
        """A transaction; ``writing`` takes SQLite's write lock at once, so two writers queue
        (busy timeout) instead of one failing when it upgrades a read lock."""
        try:
            async with self._engine.connect() as conn:
                if writing:
                    conn = await conn.execution_options(**{_WRITING: True})
                async with conn.begin():
                    yield conn
        except (SQLAlchemyError, OSError) as e:
            # The driver's own message, never SQLAlchemy's (which quotes the statement and its
            # parameters); neither holds the URL's password.
            cause = getattr(e, "orig", None) or e
            raise HistoryError(f"{self.backend}: {truncate(str(cause))}") from e

    async def migrate(self) -> int:
        """Apply every migration not applied yet; the schema version afterwards."""
        database = self._engine.url.database
        if not self._postgres and database:
            try:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise HistoryError(f"sqlite: cannot create the directory of {database}: {e}") from e
        async with self._begin(writing=True) as conn:
            return await conn.run_sync(self._migrate)

    def _migrate(self, conn: Connection) -> int:
        if self._postgres:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        schema_version.create(conn, checkfirst=True)
        applied = set(conn.scalars(select(schema_version.c.version)))
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            migration.apply(conn)
            conn.execute(
                insert(schema_version).values(
                    version=migration.version,
                    description=migration.description,
                    applied_at=datetime.now(UTC),
                )
            )
            logger.info("history schema migrated to version %d", migration.version)
        return max(m.version for m in MIGRATIONS)

    async def record(self, batch: Sequence[Sample]) -> int:
        """Store ``batch``; samples already stored for their hour are left as they are.
        The number newly stored."""
        if not batch:
            return 0
        builder = postgresql.insert if self._postgres else sqlite.insert
        statement = builder(samples).on_conflict_do_nothing(
            index_elements=["kind", "subject", "hour"]
        )
        first: dict[tuple[str, str, int], Sample] = {}
        for sample in batch:
            first.setdefault((sample.kind.value, sample.subject, epoch_hour(sample.hour)), sample)
        async with self._begin(writing=True) as conn:
            result = await conn.execute(
                statement.returning(samples.c.kind, samples.c.subject, samples.c.hour),
                [_row(s) for s in first.values()],
            )
            stored = [first[(kind, subject, hour)] for kind, subject, hour in result.all()]
            if stored:
                await conn.execute(self._add_to_days(), _day_rows(stored))
            return len(stored)

    def _add_to_days(self) -> Any:
        builder = postgresql.insert if self._postgres else sqlite.insert
        statement = builder(days)
        new, d = statement.excluded, days.c
        return statement.on_conflict_do_update(
            index_elements=["kind", "subject", "day", "pue", "source"],
            set_={
                "member_hours": d.member_hours + new.member_hours,
                "energy_wh": d.energy_wh + new.energy_wh,
                "grams": _add_known(d.grams, new.grams),
                "energy_with_grams_wh": d.energy_with_grams_wh + new.energy_with_grams_wh,
                "baseline_grams": _add_known(d.baseline_grams, new.baseline_grams),
                "grams_with_baseline": d.grams_with_baseline + new.grams_with_baseline,
                **{cls.value: d[cls.value] + new[cls.value] for cls in COVERAGE_RANKS},
            },
        )

    async def recorded(self, hour: datetime) -> bool:
        """Whether any sample of ``hour`` is stored."""
        async with self._begin() as conn:
            found = await conn.scalar(
                select(samples.c.hour).where(samples.c.hour == epoch_hour(hour)).limit(1)
            )
        return found is not None

    async def prune(self, before: datetime) -> int:
        """Delete the samples of hours before ``before``; the number deleted."""
        hour = epoch_hour(before)
        async with self._begin(writing=True) as conn:
            result = await conn.execute(delete(samples).where(samples.c.hour < hour))
            # The day the cut falls in keeps the sums of its hours that are left.
            await conn.execute(delete(days).where(days.c.day <= hour // 24))
            if hour % 24:
                await conn.execute(
                    text(DAYS_FROM_SAMPLES), {"start": hour, "end": (hour // 24 + 1) * 24}
                )
        return int(result.rowcount or 0)

    async def hour_sums(self, *wanted: StoredRange) -> list[list[HourSums]]:
        """For each of ``wanted``, its samples added up hour by hour (one subject's, or all of a
        kind's), in hour order; hours without a sample are absent. One transaction."""
        out: list[list[HourSums]] = []
        async with self._begin() as conn:
            for one in wanted:
                parameters: dict[str, Any] = {
                    "kind": one.kind.value,
                    "start": one.start,
                    "end": one.end,
                }
                if one.subject is not None:
                    parameters["subject"] = one.subject
                query = _HOURS if one.subject is None else _SUBJECT_HOURS
                rows = (await conn.execute(query, parameters)).all()
                out.append(
                    [
                        (hour, int(n), float(wh), g, float(wg), b, float(gb), worst)
                        for hour, n, wh, g, wg, b, gb, worst in rows
                    ]
                )
        return out

    async def hourly(self, wanted: StoredRange) -> list[Hourly]:
        """``hour_sums`` of one range as values."""
        (rows,) = await self.hour_sums(wanted)
        return [
            Hourly(
                hour=hour_start(hour),
                members=members,
                energy_wh=energy_wh,
                grams=grams,
                energy_with_grams_wh=energy_with_grams_wh,
                baseline_grams=baseline_grams,
                grams_with_baseline=grams_with_baseline,
                coverage=COVERAGE_RANKS[worst],
            )
            for (
                hour,
                members,
                energy_wh,
                grams,
                energy_with_grams_wh,
                baseline_grams,
                grams_with_baseline,
                worst,
            ) in rows
        ]

    async def totals(self, wanted: StoredRange) -> dict[str, SubjectTotal]:
        """The samples of ``wanted`` added up per subject over the range's hours, with the PUE
        values and intensity sources seen: the whole days from their sums, the hours at either
        end from the samples."""
        query: Select[Any] | CompoundSelect[Any] = _hour_sums(*_filters(wanted))
        first_day, end_day = -(-wanted.start // 24), wanted.end // 24
        if first_day < end_day:
            ends = or_(samples.c.hour < first_day * 24, samples.c.hour >= end_day * 24)
            query = union_all(
                _hour_sums(*_filters(wanted), ends), _day_sums(wanted, first_day, end_day)
            )
        async with self._begin() as conn:
            rows = (await conn.execute(query.order_by("subject"))).all()
        found: dict[str, SubjectTotal] = {}
        for subject, pue, source, *sums in rows:
            total = found.setdefault(subject, SubjectTotal(Tally(hours=wanted.end - wanted.start)))
            total.tally.merge(_tally(sums))
            if pue is not None and pue not in total.pues:
                total.pues.append(pue)
            if source is not None and source not in total.sources:
                total.sources.append(source)
        for total in found.values():
            total.pues.sort()
            total.sources.sort()
        return found

    async def read(self, wanted: StoredRange) -> list[Sample]:
        """The stored samples of ``wanted``, by hour then subject."""
        query = select(samples).where(*_filters(wanted)).order_by(samples.c.hour, samples.c.subject)
        async with self._begin() as conn:
            rows = (await conn.execute(query)).mappings().all()
        return [_sample(row) for row in rows]


def _tally(sums: Sequence[Any]) -> Tally:
    """A ``Tally`` of one group's ``_sums()`` followed by its coverage counts."""
    return Tally(
        member_hours=int(sums[0]),
        energy_wh=float(sums[1]),
        grams=sums[2],
        energy_with_grams_wh=float(sums[3]),
        baseline_grams=sums[4],
        grams_with_baseline=float(sums[5]),
        coverage={cls: int(n) for cls, n in zip(COVERAGE_RANKS, sums[6:], strict=True)},
    )


def _hour_sums(*where: ColumnElement[bool]) -> Select[Any]:
    """Per subject, PUE and source: ``_sums()`` and the hours of each coverage class."""
    c = samples.c
    counts = [func.sum(case((c.coverage == i, 1), else_=0)) for i in range(len(COVERAGE_RANKS))]
    return (
        select(c.subject, c.pue, c.source, *_sums(), *counts)
        .where(*where)
        .group_by(c.subject, c.pue, c.source)
    )


def _day_sums(wanted: StoredRange, first_day: int, end_day: int) -> Select[Any]:
    """``_hour_sums`` over whole days, from their stored sums."""
    d = days.c
    filters = [d.kind == wanted.kind.value, d.day >= first_day, d.day < end_day]
    if wanted.subject is not None:
        filters.append(d.subject == wanted.subject)
    sums = (
        d.member_hours,
        d.energy_wh,
        d.grams,
        d.energy_with_grams_wh,
        d.baseline_grams,
        d.grams_with_baseline,
        *(d[cls.value] for cls in COVERAGE_RANKS),
    )
    return (
        select(
            d.subject,
            func.nullif(d.pue, 0.0).label("pue"),
            func.nullif(d.source, "").label("source"),
            *(func.sum(column) for column in sums),
        )
        .where(*filters)
        .group_by(d.subject, d.pue, d.source)
    )


def _add_known(stored: Any, new: Any) -> Any:
    """``stored + new`` where an unknown (NULL) adds nothing, and nothing known stays NULL."""
    return case((new.is_(None), stored), else_=func.coalesce(stored, 0.0) + new)


def _day_rows(stored: Sequence[Sample]) -> list[dict[str, Any]]:
    """``stored`` added up per ``schema.days`` row, the way ``series.Tally`` adds them up."""
    out: dict[tuple[str, str, int, float, str], dict[str, Any]] = {}
    for sample in stored:
        kind, pue, source = sample.kind.value, sample.pue or 0.0, sample.source or ""
        key = (kind, sample.subject, epoch_hour(sample.hour) // 24, pue, source)
        row = out.get(key)
        if row is None:
            row = out[key] = {
                "kind": kind,
                "subject": sample.subject,
                "day": key[2],
                "pue": pue,
                "source": source,
                "member_hours": 0,
                "energy_wh": 0.0,
                "grams": None,
                "energy_with_grams_wh": 0.0,
                "baseline_grams": None,
                "grams_with_baseline": 0.0,
                **{cls.value: 0 for cls in COVERAGE_RANKS},
            }
        row["member_hours"] += sample.members
        row["energy_wh"] += sample.energy_wh
        if sample.grams is not None:
            row["grams"] = (row["grams"] or 0.0) + sample.grams
            row["energy_with_grams_wh"] += sample.energy_wh
        if sample.baseline_grams is not None:
            row["baseline_grams"] = (row["baseline_grams"] or 0.0) + sample.baseline_grams
            row["grams_with_baseline"] += sample.grams or 0.0
        row[sample.coverage.value] += 1
    return list(out.values())


def _filters(wanted: StoredRange) -> list[ColumnElement[bool]]:
    c = samples.c
    filters = [c.kind == wanted.kind.value, c.hour >= wanted.start, c.hour < wanted.end]
    if wanted.subject is not None:
        filters.append(c.subject == wanted.subject)
    return filters


def _sums() -> tuple[Any, ...]:
    """Members, energy, emissions and baseline added up the way ``series.Tally`` adds them:
    emissions (and the energy behind them) only where known, emissions against a baseline only
    where there is one."""
    c = samples.c
    return (
        func.sum(c.members),
        func.sum(c.energy_wh),
        func.sum(c.grams),
        func.sum(case((c.grams.is_not(None), c.energy_wh), else_=0.0)),
        func.sum(c.baseline_grams),
        func.sum(case((c.baseline_grams.is_not(None), c.grams), else_=0.0)),
    )


def _hours_query(*, subject: bool) -> Select[Any]:
    """Per hour of a kind (and a subject): ``_sums()`` and the worst coverage, in hour order.
    Built once with bound parameters, so a request only binds values to a compiled statement."""
    c = samples.c
    filters = [
        c.kind == bindparam("kind"),
        c.hour >= bindparam("start"),
        c.hour < bindparam("end"),
    ]
    if subject:
        filters.append(c.subject == bindparam("subject"))
    return (
        select(c.hour, *_sums(), func.max(c.coverage))
        .where(*filters)
        .group_by(c.hour)
        .order_by(c.hour)
    )


_HOURS = _hours_query(subject=False)
_SUBJECT_HOURS = _hours_query(subject=True)


def _row(sample: Sample) -> dict[str, Any]:
    return {
        "kind": sample.kind.value,
        "subject": sample.subject,
        "hour": epoch_hour(sample.hour),
        "members": sample.members,
        "energy_wh": sample.energy_wh,
        "grams": sample.grams,
        "coverage": rank(sample.coverage),
        "intensity": sample.intensity,
        "source": sample.source,
        "pue": sample.pue,
        "baseline_grams": sample.baseline_grams,
        "placement": json.dumps(dict(sample.placement)) if sample.placement is not None else None,
    }


def _sample(row: Any) -> Sample:
    placement = row["placement"]
    return Sample(
        hour=hour_start(row["hour"]),
        kind=Kind(row["kind"]),
        subject=row["subject"],
        members=row["members"],
        energy_wh=row["energy_wh"],
        grams=row["grams"],
        coverage=COVERAGE_RANKS[row["coverage"]],
        intensity=row["intensity"],
        source=row["source"],
        pue=row["pue"],
        baseline_grams=row["baseline_grams"],
        placement=json.loads(placement) if placement is not None else None,
    )


def _sqlite_transactions(engine: AsyncEngine) -> None:
    """Let SQLite's own BEGIN/COMMIT govern transactions (DDL included), in WAL mode so readers
    never wait for the recorder. Python's sqlite3 module otherwise commits before DDL on its own."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(_WRITING, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

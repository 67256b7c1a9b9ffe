"""The history's tables and their versioned migrations.

One table of samples keyed by (kind, subject, hour), where ``hour`` counts hours since the Unix
epoch (UTC): an integer key is the smallest that orders correctly on both databases, and it
makes "the same hour" an equality, whatever clock wrote it. ``coverage`` is the class's rank
(0 live, 1 stale, 2 static, 3 missing), so the worst of several is their ``MAX``. On SQLite the
table has no rowid, so the key is the table and no second copy of it is stored.

``days`` holds each (kind, subject, UTC day)'s samples added up, kept by the store in the
transaction that records them, so a month's report adds up a row per subject and day instead of
one per hour. It is split by the PUE and intensity source seen, which the report lists; as a
primary key cannot hold NULL on PostgreSQL, 0 stands for no PUE (a PUE is at least 1) and the
empty string for no source. Days only ever hold samples that are stored: a gap stays a gap.

``schema_version`` records each migration applied. A migration is a function over a connection
inside the transaction that records it; they run in order on start, each at most once. On
PostgreSQL an advisory lock makes replicas starting together take turns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    text,
)

metadata = MetaData()

samples = Table(
    "samples",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject", String(253), primary_key=True),
    Column("hour", Integer, primary_key=True, autoincrement=False),
    Column("members", Integer, nullable=False),
    Column("energy_wh", Float, nullable=False),
    Column("grams", Float),
    Column("coverage", SmallInteger, nullable=False),
    Column("intensity", Float),
    Column("source", String(100)),
    Column("pue", Float),
    Column("baseline_grams", Float),
    Column("placement", Text),
    sqlite_with_rowid=False,
)

days = Table(
    "days",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("subject", String(253), primary_key=True),
    Column("day", Integer, primary_key=True, autoincrement=False),
    Column("pue", Float, primary_key=True),
    Column("source", String(100), primary_key=True),
    Column("member_hours", Integer, nullable=False),
    Column("energy_wh", Float, nullable=False),
    Column("grams", Float),
    Column("energy_with_grams_wh", Float, nullable=False),
    Column("baseline_grams", Float),
    Column("grams_with_baseline", Float, nullable=False),
    Column("live", Integer, nullable=False),
    Column("stale", Integer, nullable=False),
    Column("static", Integer, nullable=False),
    Column("missing", Integer, nullable=False),
    sqlite_with_rowid=False,
)
"""Samples added up per UTC day (``day`` counts days since the Unix epoch); see above."""

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("description", String(200), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _create_samples(conn: Connection) -> None:
    samples.create(conn)


def _index_hours(conn: Connection) -> None:
    # The cluster-wide views read every subject of a kind over a range of hours.
    conn.exec_driver_sql("CREATE INDEX samples_by_hour ON samples (hour, kind)")


DAYS_FROM_SAMPLES = (
    "INSERT INTO days SELECT kind, subject, hour / 24, COALESCE(pue, 0), COALESCE(source, ''),"
    " SUM(members), SUM(energy_wh), SUM(grams),"
    " SUM(CASE WHEN grams IS NOT NULL THEN energy_wh ELSE 0.0 END), SUM(baseline_grams),"
    " SUM(CASE WHEN baseline_grams IS NOT NULL THEN grams ELSE 0.0 END),"
    " SUM(CASE WHEN coverage = 0 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN coverage = 1 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN coverage = 2 THEN 1 ELSE 0 END),"
    " SUM(CASE WHEN coverage = 3 THEN 1 ELSE 0 END)"
    " FROM samples WHERE hour >= :start AND hour < :end"
    " GROUP BY kind, subject, hour / 24, COALESCE(pue, 0), COALESCE(source, '')"
)
"""Adds up the samples of the hours from ``start`` to ``end`` (whole days) into ``days``, the
way the store adds up each hour it records."""


def _add_days(conn: Connection) -> None:
    days.create(conn)
    conn.execute(text(DAYS_FROM_SAMPLES), {"start": 0, "end": 2**31 - 1})


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "samples keyed by kind, subject and hour", _create_samples),
    Migration(2, "index samples by hour for cluster-wide ranges", _index_hours),
    Migration(3, "samples added up per day, for month-long reports", _add_days),
)
"""Every schema change, in order; append, never edit one that has shipped."""

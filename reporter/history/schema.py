"""The history's tables and their versioned migrations.

One table of samples keyed by (kind, subject, hour), where ``hour`` counts hours since the Unix
epoch (UTC): an integer key is the smallest that orders correctly on both databases, and it
makes "the same hour" an equality, whatever clock wrote it. ``coverage`` is the class's rank
(0 live, 1 stale, 2 static, 3 missing), so the worst of several is their ``MAX``. On SQLite the
table has no rowid, so the key is the table and no second copy of it is stored.

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


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "samples keyed by kind, subject and hour", _create_samples),
    Migration(2, "index samples by hour for cluster-wide ranges", _index_hours),
)
"""Every schema change, in order; append, never edit one that has shipped."""

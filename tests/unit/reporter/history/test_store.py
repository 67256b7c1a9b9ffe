"""The history store on a real SQLite file and a real PostgreSQL server: migrations, idempotent
writes keyed by (hour, subject), gaps left as gaps, retention."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from reporter.history.samples import Coverage, Kind, Sample
from reporter.history.schema import MIGRATIONS, schema_version
from reporter.history.series import Tally
from reporter.history.store import HistoryStore, StoredRange, epoch_hour

NOON = datetime(2026, 11, 26, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def region_sample(hour: datetime, region: str = "us-west-2", grams: float = 120.0) -> Sample:
    return Sample(
        hour=hour,
        kind=Kind.REGION,
        subject=region,
        members=3,
        energy_wh=1000.0,
        grams=grams,
        coverage=Coverage.LIVE,
        intensity=grams,
        source="electricitymaps",
        pue=1.135,
    )


def hours(first: datetime, count: int) -> StoredRange:
    return StoredRange(Kind.REGION, epoch_hour(first), epoch_hour(first) + count)


async def test_a_new_database_is_migrated_to_the_latest_version_once(location: str) -> None:
    store = HistoryStore.open(location)
    try:
        assert await store.migrate() == MIGRATIONS[-1].version
        assert await store.migrate() == MIGRATIONS[-1].version
        async with store._engine.connect() as conn:
            versions = list(await conn.scalars(select(schema_version.c.version)))
    finally:
        await store.close()
    assert versions == [m.version for m in MIGRATIONS]


async def test_a_sample_reads_back_as_written(store: HistoryStore) -> None:
    replicas = Sample(
        hour=NOON,
        kind=Kind.REPLICAS,
        subject="read-replicas",
        members=4,
        energy_wh=420.5,
        grams=50.25,
        coverage=Coverage.STALE,
        baseline_grams=80.0,
        placement={"eu-north-1": 3, "us-west-2": 1},
    )
    assert await store.record([replicas]) == 1
    stored = await store.read(StoredRange(Kind.REPLICAS, epoch_hour(NOON), epoch_hour(NOON) + 1))
    assert stored == [replicas]


async def test_writing_an_hour_again_keeps_the_first_record_once(store: HistoryStore) -> None:
    assert await store.record([region_sample(NOON, grams=100.0)]) == 1
    assert await store.record([region_sample(NOON, grams=999.0)]) == 0
    stored = await store.read(hours(NOON, 1))
    assert [s.grams for s in stored] == [100.0]


async def test_two_replicas_writing_the_same_hours_store_each_hour_once(location: str) -> None:
    first, second = HistoryStore.open(location), HistoryStore.open(location)
    try:
        await asyncio.gather(first.migrate(), second.migrate())
        batches = [[region_sample(NOON + i * HOUR, r) for r in ("a", "b")] for i in range(24)]
        written = await asyncio.gather(
            *(store.record(batch) for batch in batches for store in (first, second))
        )
        stored = await first.read(hours(NOON, 24))
    finally:
        await first.close()
        await second.close()
    assert sum(written) == 48
    assert len(stored) == 48
    assert len({(s.hour, s.subject) for s in stored}) == 48


async def test_an_hour_never_written_is_absent_not_invented(store: HistoryStore) -> None:
    await store.record([region_sample(NOON), region_sample(NOON + 2 * HOUR)])
    stored = await store.read(hours(NOON, 3))
    assert [s.hour for s in stored] == [NOON, NOON + 2 * HOUR]
    assert await store.recorded(NOON + HOUR) is False
    assert await store.recorded(NOON + 2 * HOUR) is True


async def test_a_range_reads_one_subject_or_all_of_a_kind(store: HistoryStore) -> None:
    await store.record([region_sample(NOON, r) for r in ("eu-north-1", "us-west-2")])
    one = await store.read(
        StoredRange(Kind.REGION, epoch_hour(NOON), epoch_hour(NOON) + 1, "us-west-2")
    )
    assert [s.subject for s in one] == ["us-west-2"]
    assert [s.subject for s in await store.read(hours(NOON, 1))] == ["eu-north-1", "us-west-2"]
    roles = StoredRange(Kind.ROLE, epoch_hour(NOON), epoch_hour(NOON) + 1)
    assert await store.read(roles) == []


async def test_pruning_deletes_only_the_hours_before_the_retention(store: HistoryStore) -> None:
    await store.record([region_sample(NOON + i * HOUR) for i in range(5)])
    assert await store.prune(NOON + 2 * HOUR) == 2
    assert [s.hour for s in await store.read(hours(NOON, 5))] == [
        NOON + i * HOUR for i in (2, 3, 4)
    ]


async def test_the_history_survives_reopening_the_database(location: str) -> None:
    store = HistoryStore.open(location)
    await store.migrate()
    await store.record([region_sample(NOON)])
    await store.close()
    reopened = HistoryStore.open(location)
    try:
        await reopened.migrate()
        assert len(await reopened.read(hours(NOON, 1))) == 1
    finally:
        await reopened.close()


async def test_hours_add_up_their_subjects_at_the_worst_coverage(store: HistoryStore) -> None:
    known = region_sample(NOON, "a", grams=100.0)
    unknown = Sample(NOON, Kind.REGION, "b", 1, 500.0, None, Coverage.MISSING)
    stale = Sample(NOON + HOUR, Kind.REGION, "a", 2, 700.0, 70.0, Coverage.STALE)
    await store.record([known, unknown, stale])
    first, second = await store.hourly(hours(NOON, 2))
    assert (first.members, first.energy_wh, first.grams) == (4, 1500.0, 100.0)
    # Emissions are known for region a only, so only its energy stands behind them.
    assert first.energy_with_grams_wh == 1000.0
    assert first.coverage is Coverage.MISSING
    assert second.coverage is Coverage.STALE


async def test_totals_add_up_each_subject_over_the_range(store: HistoryStore) -> None:
    await store.record([region_sample(NOON + i * HOUR, "a", grams=10.0 * i) for i in range(3)])
    await store.record([Sample(NOON, Kind.REGION, "b", 1, 500.0, None, Coverage.MISSING)])
    await store.record([replace(region_sample(NOON + 3 * HOUR, "a"), source="static", pue=1.2)])
    totals = await store.totals(hours(NOON, 4))
    a, b = totals["a"], totals["b"]
    assert a.tally.grams == 150.0
    assert a.tally.energy_wh == 4000.0
    assert a.tally.coverage_json() == {"live": 4, "stale": 0, "static": 0, "missing": 0}
    assert (a.pues, a.sources) == ([1.135, 1.2], ["electricitymaps", "static"])
    assert b.tally.grams is None
    assert b.tally.coverage_json() == {"live": 0, "stale": 0, "static": 0, "missing": 4}


async def test_whole_days_add_up_as_their_hours_do(store: HistoryStore) -> None:
    start = datetime(2026, 11, 24, 20, tzinfo=UTC)
    written = [
        replace(
            region_sample(start + i * HOUR, "a", grams=float(i)),
            grams=None if i % 7 == 0 else float(i),
            coverage=Coverage.STALE if i % 5 == 0 else Coverage.LIVE,
            source="static" if i % 11 == 0 else "electricitymaps",
        )
        for i in range(60)
        if i % 9 != 4  # gaps stay gaps
    ]
    await store.record(written[:30])
    await store.record(written)  # a replay adds nothing to a day
    whole = await store.totals(hours(start, 60))
    by_hour = [await store.totals(hours(start + i * HOUR, 1)) for i in range(60)]
    expected = Tally(hours=60)
    for one in by_hour:
        if "a" in one:
            expected.merge(one["a"].tally)
    assert whole["a"].tally.json() == expected.json()
    assert whole["a"].tally.coverage_json() == {"live": 42, "stale": 11, "static": 0, "missing": 7}
    assert (whole["a"].tally.grams, whole["a"].tally.member_hours) == (expected.grams, 3 * 53)
    assert (whole["a"].pues, whole["a"].sources) == ([1.135], ["electricitymaps", "static"])


async def test_pruning_forgets_the_days_wholly_before_the_retention(store: HistoryStore) -> None:
    midnight = datetime(2026, 11, 24, tzinfo=UTC)
    await store.record([region_sample(midnight + i * HOUR) for i in range(72)])
    await store.prune(midnight + 30 * HOUR)
    (total,) = (await store.totals(hours(midnight, 72))).values()
    assert total.tally.coverage_json() == {
        "live": 42,
        "stale": 0,
        "static": 0,
        "missing": 30,
    }

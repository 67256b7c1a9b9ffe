"""The hourly recorder files the reporter's view as samples of the current hour, keeps gaps as
gaps, and never duplicates an hour however many recorders write it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reporter.history.recorder import SETTLE, HistoryRecorder
from reporter.history.samples import Coverage, Kind
from reporter.history.store import HistoryStore, StoredRange, epoch_hour
from reporter.views import ViewCache
from shared.regions.catalog import RegionCatalog
from tests.fakes.carbon_provider import ManualClock
from tests.unit.reporter.cluster import NOW, FixedSnapshot
from tests.unit.reporter.conftest import demo_cluster, demo_snapshot

HOUR = timedelta(hours=1)


def views(clock: ManualClock, source: FixedSnapshot | None = None) -> ViewCache:
    return ViewCache(
        snapshot_source=source or FixedSnapshot(demo_snapshot()),
        inventory=demo_cluster(),
        catalog=RegionCatalog.load(),
        clock=clock,
    )


def this_hour(kind: Kind, at: ManualClock) -> StoredRange:
    return StoredRange(kind, epoch_hour(at.now), epoch_hour(at.now) + 1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW + timedelta(minutes=5))


@pytest.fixture
def recorder(store: HistoryStore, clock: ManualClock) -> HistoryRecorder:
    return HistoryRecorder(store, views(clock), clock=clock)


async def test_a_sample_per_region_per_node_role_and_for_the_read_replicas(
    recorder: HistoryRecorder, store: HistoryStore, clock: ManualClock
) -> None:
    outcome = await recorder.record_once()
    assert outcome is not None
    assert outcome.hour == NOW
    regions = await store.read(this_hour(Kind.REGION, clock))
    assert [(s.subject, s.members) for s in regions] == [
        ("eu-west-1", 1),
        ("europe-west1", 1),
        ("us-west-2", 2),
    ]
    oregon = regions[-1]
    assert oregon.intensity == 120.0
    assert oregon.coverage is Coverage.LIVE
    assert oregon.source == "mock"
    roles = await store.read(this_hour(Kind.ROLE, clock))
    # eu-west-1's node runs a validator and a read replica: a mixed node.
    assert {s.subject: s.members for s in roles} == {"horizon": 1, "mixed": 1, "read-replica": 2}
    assert sum(s.energy_wh for s in roles) == pytest.approx(sum(s.energy_wh for s in regions))
    (cluster,) = await store.read(this_hour(Kind.CLUSTER, clock))
    assert cluster.members == 4
    assert cluster.energy_wh == pytest.approx(sum(s.energy_wh for s in regions))
    assert cluster.grams == pytest.approx(sum(s.grams or 0 for s in regions))
    (replicas,) = await store.read(this_hour(Kind.REPLICAS, clock))
    assert replicas.members == 3
    assert replicas.placement == {"eu-west-1": 1, "us-west-2": 2}
    assert replicas.baseline_grams is not None
    assert replicas.grams is not None


async def test_the_samples_add_up_to_the_live_metrics(
    recorder: HistoryRecorder, store: HistoryStore, clock: ManualClock
) -> None:
    view = views(clock).current()
    await recorder.record_once()
    regions = await store.read(this_hour(Kind.REGION, clock))
    # The live totals are rounded to 4 decimals.
    assert sum(s.grams or 0 for s in regions) == pytest.approx(
        view.totals["gCO2eqPerHour"], abs=1e-4
    )
    (replicas,) = await store.read(this_hour(Kind.REPLICAS, clock))
    assert replicas.grams == pytest.approx(view.placement.g_per_hour)
    assert replicas.baseline_grams == pytest.approx(view.placement.baseline_g_per_hour)


async def test_nothing_is_recorded_before_the_first_carbon_refresh(
    store: HistoryStore, clock: ManualClock
) -> None:
    waiting = HistoryRecorder(store, views(clock, FixedSnapshot(None)), clock=clock)
    assert await waiting.record_once() is None
    assert await store.recorded(clock.now) is False


async def test_an_hour_recorded_twice_by_two_recorders_is_stored_once(
    location: str, clock: ManualClock
) -> None:
    first, second = HistoryStore.open(location), HistoryStore.open(location)
    try:
        await first.migrate()
        await second.migrate()
        one = await HistoryRecorder(first, views(clock), clock=clock).record_once()
        two = await HistoryRecorder(second, views(clock), clock=clock).record_once()
        stored = await first.read(this_hour(Kind.REGION, clock))
        clusters = await first.read(this_hour(Kind.CLUSTER, clock))
    finally:
        await first.close()
        await second.close()
    assert one is not None
    assert one.written > 0
    assert two is not None
    assert two.written == 0
    assert len(stored) == 3
    assert len(clusters) == 1


async def test_a_missed_hour_stays_a_gap(
    recorder: HistoryRecorder, store: HistoryStore, clock: ManualClock
) -> None:
    await recorder.record_once()
    clock.advance(2 * 3600)
    await recorder.record_once()
    stored = await store.read(
        StoredRange(Kind.REGION, epoch_hour(NOW), epoch_hour(NOW) + 3, "us-west-2")
    )
    assert [s.hour for s in stored] == [NOW, NOW + 2 * HOUR]


async def test_hours_past_the_retention_are_pruned_when_recording(
    store: HistoryStore, clock: ManualClock
) -> None:
    short = HistoryRecorder(store, views(clock), clock=clock, retention=timedelta(hours=2))
    await short.record_once()
    clock.advance(3 * 3600)
    await short.record_once()
    assert await store.recorded(NOW) is False
    assert await store.recorded(NOW + 3 * HOUR) is True


def test_the_next_sample_is_at_the_interval_or_the_next_hour_whichever_comes_first(
    clock: ManualClock,
) -> None:
    hourly = HistoryRecorder(HistoryStore.open(":memory:"), views(clock), clock=clock)
    next_hour = NOW + HOUR + SETTLE
    assert hourly.delay(clock.now, recorded=True) == (next_hour - clock.now).total_seconds()
    quarterly = HistoryRecorder(
        HistoryStore.open(":memory:"), views(clock), clock=clock, interval=timedelta(minutes=15)
    )
    assert quarterly.delay(clock.now, recorded=True) == 15 * 60
    assert hourly.delay(clock.now, recorded=False) < 60

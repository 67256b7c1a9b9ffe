"""Following the grid in the replay: the descheduler model evicts as the real one does, the PDB
is never broken, the oracle bounds every policy, and a pool follows a region that turns green."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime

import pytest

from bench.carbon import fleet_regions
from bench.descheduler import Cluster, Profile, Replica, cycle, should_evict
from bench.follow_replay import Week, oracle_nodes, run_week
from bench.readpool import operator_pool
from bench.replay import build_fleet, replica_region
from bench.spread import zoned
from bench.traces import Traces, build_traces, measured
from shared.scoring.ranking import PreferenceTerm
from shared.scoring.tiers import TierPolicy
from webhook.follow import tier_terms

PROFILE = Profile(min_pod_age_minutes=60, catch_up_minutes=20)
TERMS = tier_terms({0: 1, 1: 1, 2: 1})
"""The webhook's terms with tiers 0, 1 and 2 present: weight 100 on 0, 64 on 1, none on 2."""


def cluster(tiers: Mapping[str, int], *, main: str = "main", full: frozenset[str] = frozenset()):
    nodes = {**tiers, main: 2}
    return Cluster(
        tiers=nodes,
        free_millis={node: 0 if node in full else 4000 for node in nodes},
        schedulable=frozenset(nodes),
        main=main,
        cpu_millis=500,
    )


def replica(ordinal: int, node: str, *, top: int | None = None, ready_at: int = 0) -> Replica:
    return Replica(ordinal, node, created=-600, ready_at=ready_at, terms=TERMS, top=top)


def test_the_webhooks_tier_terms_weigh_each_tier_like_the_tier_maths() -> None:
    assert (PreferenceTerm(100, ("0",)), PreferenceTerm(64, ("1",))) == TERMS
    assert [replica(0, "a").weight(t) for t in (0, 1, 2, None)] == [100, 64, 0, 0]


def test_a_replica_on_the_best_tier_anywhere_is_never_evicted() -> None:
    nodes = cluster({"a": 0, "b": 1, "c": 1})
    pods = [replica(0, "a")]
    assert cycle(pods, nodes, PROFILE, now=0, wanted=3) == []


def test_a_replica_is_evicted_when_a_better_tier_exists_and_another_node_fits() -> None:
    nodes = cluster({"a": 0, "b": 1, "c": 2})
    pods = [replica(0, "b"), replica(1, "c")]
    assert [r.ordinal for r in cycle(pods, nodes, PROFILE, now=0, wanted=2)] == [0]


def test_the_better_node_need_not_have_room_only_some_other_node_must() -> None:
    # As GetBestNodeWeightGivenPodPreferredAffinity: the tier-0 node already runs a pool pod,
    # yet the pod on tier 1 is evicted because an empty tier-2 node would take it.
    nodes = cluster({"a": 0, "b": 1, "c": 2})
    assert should_evict(replica(1, "b"), nodes, nodes.open_tiers({"a", "b"}))


def test_no_eviction_when_no_other_node_fits_the_pod() -> None:
    nodes = cluster({"a": 0, "b": 1, "c": 1, "d": 3}, full=frozenset({"c"}))
    occupied = {"a", "b"}
    # c lacks room, the main pod's node is taken by the anti-affinity, d is outside tiers 0..1.
    assert not should_evict(replica(1, "b", top=1), nodes, nodes.open_tiers(occupied))
    assert should_evict(replica(1, "b", top=3), nodes, nodes.open_tiers(occupied))


def test_the_pdb_allows_one_eviction_at_a_time_and_none_while_a_replacement_catches_up() -> None:
    nodes = cluster({"a": 0, "b": 1, "c": 1, "d": 1, "e": 1})
    pods = [replica(0, "b"), replica(1, "c"), replica(2, "d")]
    evicted = cycle(pods, nodes, dataclasses.replace(PROFILE, max_per_namespace=5), now=0, wanted=3)
    assert len(evicted) == 1
    catching_up = [replica(0, "e", ready_at=20), replica(1, "c"), replica(2, "d")]
    assert cycle(catching_up, nodes, PROFILE, now=10, wanted=3) == []
    two_down = dataclasses.replace(PROFILE, unavailable=2, max_per_namespace=5)
    assert len(cycle(pods, nodes, two_down, now=0, wanted=3)) == 2


def test_young_replicas_and_small_pools_are_left_alone() -> None:
    nodes = cluster({"a": 0, "b": 1, "c": 1})
    young = dataclasses.replace(replica(0, "b"), created=-30)
    assert cycle([young, replica(1, "a")], nodes, PROFILE, now=0, wanted=2) == []
    assert cycle([replica(0, "b")], nodes, PROFILE, now=0, wanted=1) == []


def test_a_profile_whose_interval_does_not_divide_an_hour_is_refused() -> None:
    with pytest.raises(ValueError, match="divide an hour"):
        Profile(interval_minutes=7)


# --- the replay -----------------------------------------------------------------------------------

START = datetime(2024, 1, 15, tzinfo=UTC)
INFOS = tuple(i for i in fleet_regions() if i.region in ("us-west-1", "eu-central-1", "sa-east-1"))
HOURS = 72
SWAP = 36


def week(values: Mapping[str, list[float]], *, size: int, per_zone: int = 1) -> Week:
    fleet = build_fleet([replica_region(i) for i in INFOS], nodes_per_region=3 * per_zone)
    model = zoned(fleet, nodes_per_zone=per_zone)
    zones = {i.region: i.zone or "" for i in INFOS}
    series = {zones[region]: tuple(v) for region, v in values.items()}
    traces = Traces(START, len(next(iter(series.values()))), series, {})
    return Week(model, operator_pool(), traces, INFOS, size, hours=HOURS)


def swapping() -> dict[str, list[float]]:
    """us-west-1 green for a day and a half, then sa-east-1; eu-central-1 always dirty."""
    span = HOURS + 48
    return {
        "us-west-1": [50.0] * SWAP + [600.0] * (span - SWAP),
        "sa-east-1": [600.0] * SWAP + [50.0] * (span - SWAP),
        "eu-central-1": [400.0] * span,
    }


@pytest.mark.parametrize("per_zone", [1, 2])
def test_the_oracle_binds_the_cheapest_free_nodes_and_no_policy_beats_it(per_zone: int) -> None:
    replay = week(swapping(), size=4, per_zone=per_zone)
    for hour in range(HOURS):
        costs = sorted(
            replay.grams_per_hour(n.name, hour)
            for n in replay.model.fleet.nodes
            if n.name != replay.main
        )
        chosen = oracle_nodes(replay, hour)
        assert len(set(chosen)) == 4
        assert replay.main not in chosen
        assert sum(replay.grams_per_hour(n, hour) for n in chosen) == pytest.approx(sum(costs[:4]))
    tallies = run_week(replay, PROFILE, TierPolicy(), {})
    assert set(tallies) == {"agnostic", "create-time", "following", "oracle", "ranked-hourly"}
    best = tallies["oracle"].g_per_replica_hour
    assert all(t.g_per_replica_hour >= best - 1e-9 for t in tallies.values())


def test_following_moves_the_pool_to_the_region_that_turned_green_one_at_a_time() -> None:
    tallies = run_week(week(swapping(), size=2), PROFILE, TierPolicy(), {})
    following, create_time = tallies["following"], tallies["create-time"]
    assert create_time.evictions == 0
    assert (following.evictions, following.futile_evictions) == (2, 0)  # each replica once
    assert following.min_ready == 1  # minAvailable = replicas - 1: never below it
    assert following.not_ready_minutes == PROFILE.catch_up_minutes * following.evictions
    assert following.g_per_replica_hour < 0.6 * create_time.g_per_replica_hour
    assert following.served_minutes == following.wanted_minutes


def test_a_grid_that_never_changes_moves_nothing() -> None:
    span = HOURS + 48
    steady = {"us-west-1": [50.0] * span, "sa-east-1": [300.0] * span}
    steady["eu-central-1"] = [600.0] * span
    tallies = run_week(week(steady, size=2), PROFILE, TierPolicy(), {})
    assert tallies["following"].evictions == 0
    assert tallies["following"].grams == pytest.approx(tallies["create-time"].grams)


# --- the grid data of 2023 ------------------------------------------------------------------------


async def test_a_replay_starting_in_2023_reads_2023s_measured_hours() -> None:
    start = datetime(2023, 1, 16, tzinfo=UTC)
    traces = await build_traces(INFOS, start, 48)
    later = await build_traces(INFOS, start.replace(year=2024, day=15), 48)
    assert set(traces.sources.values()) == {"electricitymaps-2023"}
    assert set(later.sources.values()) == {"electricitymaps-2024"}
    assert traces.values["DE"] != later.values["DE"]
    assert traces.values["DE"] == measured("DE", start, 48)


def test_a_year_without_shipped_data_is_refused() -> None:
    with pytest.raises(ValueError, match="no hourly grid data for 2022"):
        measured("DE", datetime(2022, 6, 1, tzinfo=UTC), 24)

"""The carbon-outcome replay's pure pieces: accounting, scheduler model, policies, workload."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.loadgen import percentile
from bench.replay import (
    AgnosticSpread,
    Binding,
    Decision,
    Fleet,
    Node,
    Oracle,
    PodSpec,
    RankedPolicy,
    Region,
    account,
    churn,
    fraction_of_oracle,
    place,
    reduction,
    simulate,
)
from bench.traces import Traces, forecast_values, snapshot_at
from shared.core.models import Cloud, RegionInfo

START = datetime(2024, 1, 15, tzinfo=UTC)


def traces(**zones: tuple[float, ...]) -> Traces:
    hours = len(next(iter(zones.values())))
    return Traces(START, hours, zones, dict.fromkeys(zones, "test"))


def region(name: str, zone: str, *, pue: float = 1.5, watts: float = 10.0) -> Region:
    return Region(name, Cloud.AWS, zone, pue, watts)


def fleet_of(*regions: Region, nodes: int = 1, free_slots: int = 1) -> Fleet:
    return Fleet(
        regions,
        tuple(
            Node(f"{r.name}-{i}", r.name, 8000, 8000 - free_slots * 2000)
            for r in regions
            for i in range(nodes)
        ),
    )


def test_a_pod_hour_is_charged_its_power_times_pue_times_that_hours_intensity() -> None:
    fleet = fleet_of(region("r", "Z"))
    pods = [PodSpec("p", arrival=0, end=3)]
    outcome = account("x", fleet, traces(Z=(100.0, 200.0, 300.0)), pods, {"p": Binding("r-0", 0)})
    # 10 W / 1000 * PUE 1.5 * (100 + 200 + 300) gCO2eq/kWh
    assert outcome.grams == pytest.approx(9.0)
    assert outcome.served_hours == 3
    assert outcome.unserved_hours == 0
    assert outcome.g_per_replica_hour == pytest.approx(3.0)


def test_hours_before_a_pod_is_bound_are_unserved_and_not_charged() -> None:
    fleet = fleet_of(region("r", "Z"))
    pods = [PodSpec("p", 0, 3), PodSpec("q", 0, 3)]
    outcome = account("x", fleet, traces(Z=(100.0, 200.0, 300.0)), pods, {"p": Binding("r-0", 1)})
    assert outcome.grams == pytest.approx(10 / 1000 * 1.5 * 500)
    assert outcome.served_hours == 2
    assert outcome.unserved_hours == 1 + 3
    assert outcome.never_served == 1


def test_the_oracle_never_loses_to_the_agnostic_spread_with_two_regions() -> None:
    fleet = fleet_of(region("clean", "A"), region("dirty", "B"), nodes=2, free_slots=2)
    actual = traces(A=(50.0,) * 30, B=(500.0,) * 30)
    pods = churn(30, concurrency=5, life_hours=(3, 12), seed=3)
    agnostic = account("a", fleet, actual, pods, simulate(AgnosticSpread(), fleet, pods, 30))
    oracle = account("o", fleet, actual, pods, simulate(Oracle(fleet, actual), fleet, pods, 30))
    assert oracle.served_hours == agnostic.served_hours
    assert oracle.grams < agnostic.grams


def test_the_oracle_looks_past_the_current_hour_where_a_current_only_ranking_cannot() -> None:
    # A is cleaner now but much dirtier for most of the pod's life; B is steady.
    fleet = fleet_of(region("a", "A"), region("b", "B"))
    actual = traces(A=(100.0, 100.0) + (600.0,) * 10, B=(300.0,) * 12)
    infos = [
        RegionInfo(cloud=Cloud.AWS, region="a", zone="A"),
        RegionInfo(cloud=Cloud.AWS, region="b", zone="B"),
    ]
    pods = [PodSpec("p", 0, 10)]
    current = RankedPolicy(
        "current", lambda h: snapshot_at(actual, infos, h, forecast_hours=0), ("a", "b"), actual
    )
    ranked = account("c", fleet, actual, pods, simulate(current, fleet, pods, 12))
    oracle = account("o", fleet, actual, pods, simulate(Oracle(fleet, actual), fleet, pods, 12))
    assert ranked.region_hours == {"a": 10}
    assert oracle.region_hours == {"b": 10}
    assert oracle.grams < ranked.grams


def test_a_full_preferred_region_sends_the_pod_to_the_next_group() -> None:
    fleet = fleet_of(region("green", "A"), region("amber", "B"), region("red", "C"))
    decision = Decision(groups=(("green",), ("amber",)), weights=(100, 40))
    pod = PodSpec("p", 0, 5)
    assert place(decision, fleet, {}, pod) == fleet.nodes[0]
    assert place(decision, fleet, {"green-0": 2000}, pod) == fleet.nodes[1]
    assert place(decision, fleet, {"green-0": 2000, "amber-0": 2000}, pod) == fleet.nodes[2]


def test_a_required_pod_waits_while_its_allowed_regions_are_full() -> None:
    fleet = fleet_of(region("green", "A"), region("red", "B"))
    decision = Decision(groups=(("green",),), allowed=frozenset({"green"}))
    assert place(decision, fleet, {"green-0": 2000}, PodSpec("p", 0, 5)) is None


def test_a_waiting_pod_is_bound_once_room_frees_and_charged_from_then() -> None:
    class RequireGreen:
        name = "require-green"

        def decide(self, pod: PodSpec, hour: int) -> Decision:
            return Decision(groups=(("green",),), allowed=frozenset({"green"}))

    fleet = fleet_of(region("green", "A"), region("red", "B"))
    pods = [PodSpec("first", 0, 2), PodSpec("second", 0, 5)]
    bindings = simulate(RequireGreen(), fleet, pods, 5)
    assert bindings == {"first": Binding("green-0", 0), "second": Binding("green-0", 2)}
    outcome = account("r", fleet, traces(A=(1.0,) * 5, B=(9.0,) * 5), pods, bindings)
    assert (outcome.served_hours, outcome.unserved_hours) == (5, 2)


def test_the_read_pool_churns_within_the_window_with_lives_of_hours_to_days() -> None:
    pods = churn(168, concurrency=16, seed=1)
    assert pods == churn(168, concurrency=16, seed=1)
    assert sum(1 for p in pods if p.arrival == 0) == 16
    assert all(0 <= p.arrival < p.end <= 168 for p in pods)
    assert all(p.wanted_hours >= 3 or p.end == 168 for p in pods)
    assert max(p.wanted_hours for p in pods) <= 72
    assert len(pods) > 16 + 50  # arrivals keep coming after the initial population


def test_reduction_and_the_oracle_fraction_follow_their_definitions() -> None:
    fleet = fleet_of(region("r", "Z"))
    actual = traces(Z=(100.0, 50.0, 80.0))
    baseline = account("a", fleet, actual, [PodSpec("p", 0, 1)], {"p": Binding("r-0", 0)})
    oracle = account("o", fleet, actual, [PodSpec("p", 1, 2)], {"p": Binding("r-0", 1)})
    middle = account("m", fleet, actual, [PodSpec("p", 2, 3)], {"p": Binding("r-0", 2)})
    assert reduction(oracle, baseline) == pytest.approx(0.5)
    assert fraction_of_oracle(middle, baseline, oracle) == pytest.approx((100 - 80) / (100 - 50))


def test_a_snapshot_holds_the_actual_value_now_and_a_forecast_from_the_next_hour() -> None:
    actual = traces(Z=tuple(100.0 if h % 2 else 1000.0 for h in range(60)))
    info = RegionInfo(cloud=Cloud.GCP, region="r", zone="Z")
    snapshot = snapshot_at(actual, [info], 5, forecast_hours=48, seed=2)
    carbon = snapshot.regions["r"]
    assert carbon.current is not None
    assert carbon.current.g_per_kwh == 100.0
    assert carbon.forecast is not None
    points = carbon.forecast.points
    assert len(points) == 48
    assert points[0].starts_at == actual.time(6)
    assert [p.g_per_kwh for p in points] == forecast_values(actual, "Z", 5, 48, seed=2)
    # A forecast errs, but around the actual value of the hour it is for (hours alternate 10x).
    for lead in (1, 2, 24, 25):
        assert abs(points[lead - 1].g_per_kwh / actual.at("Z", 5 + lead) - 1) < 0.5


def test_percentiles_interpolate_between_closest_ranks() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 0.5) == pytest.approx(2.5)
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.99) == pytest.approx(4.96)

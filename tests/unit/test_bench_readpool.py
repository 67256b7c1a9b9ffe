"""The read-pool replay's scheduler model: kube-scheduler's spread arithmetic, anti-affinity,
OrderedReady and the HPA, checked on small fleets."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from bench.readpool import (
    Creation,
    hpa_max,
    operator_pool,
    pool_sized,
    replicas_at,
    run_pool,
)
from bench.replay import Decision, Fleet, Node, Region
from bench.spread import ZONE, HardRules, ZonedFleet, place_spread, skews, zoned
from bench.traces import Traces
from shared.cluster.room import Host, PlacedPod, pool_room
from shared.core.models import Cloud, Freshness
from shared.scoring.ranking import Ranking, RegionScore

POOL = operator_pool()
RULES = HardRules((("kubernetes.io/hostname", 1), (ZONE, 1)), ("kubernetes.io/hostname",))
ANYWHERE = Decision()


def fleet(
    *regions: str, zones: int = 3, per_zone: int = 1, cordoned: frozenset[str] = frozenset()
) -> ZonedFleet:
    nodes = tuple(Node(f"{r}-{i}", r, 8000, 0) for r in regions for i in range(zones * per_zone))
    built = Fleet(tuple(Region(r, Cloud.AWS, r.upper(), 1.0, 1.0) for r in regions), nodes)
    model = zoned(built, nodes_per_zone=per_zone)
    return ZonedFleet(model.fleet, model.zones, cordoned)


def fill(model: ZonedFleet, decision: Decision, matching: Counter[str], limit: int = 100) -> int:
    """Bind pool pods until the model leaves one Pending (or ``limit``); how many were bound."""
    return len(bound_regions(model, decision, matching, limit))


def bound_regions(
    model: ZonedFleet, decision: Decision, matching: Counter[str], limit: int = 100
) -> list[str]:
    regions = []
    while len(regions) < limit:
        node = place_spread(decision, model, RULES, matching, {}, 500)
        if node is None:
            break
        matching[node.name] += 1
        regions.append(node.region)
    return regions


def test_a_zone_may_run_one_more_matching_pod_than_the_emptiest_zone() -> None:
    model = fleet("g", per_zone=5)
    counts = skews(model, RULES, {"g-0": 1, "g-1": 1, "g-5": 1}, None)[ZONE]
    assert counts == {"g-a": 2, "g-b": 1, "g-c": 0}
    node = place_spread(ANYWHERE, model, RULES, Counter({"g-0": 1, "g-5": 1}), {}, 500)
    assert node is not None
    assert model.zones[node.name] == "g-c"


def test_without_a_required_set_every_zone_of_the_cluster_is_a_domain() -> None:
    model = fleet("green", "red", per_zone=5)
    green_only = Decision(groups=(("green",),))
    # Red's three empty zones keep the minimum at 0: green takes one pod per zone, then red.
    assert bound_regions(model, green_only, Counter(), 6) == ["green"] * 3 + ["red"] * 3
    model = fleet("green", "red", per_zone=5)
    required = Decision(groups=(("green",),), allowed=frozenset({"green"}))
    assert bound_regions(model, required, Counter(), 6) == ["green"] * 6
    assert fill(model, required, Counter()) == 15


def test_a_cordoned_node_is_an_empty_domain_that_caps_the_others() -> None:
    model = fleet("g", cordoned=frozenset({"g-0"}))
    required = Decision(allowed=frozenset({"g"}))
    assert fill(model, required, Counter()) == 2


def test_the_main_pod_takes_its_node_and_counts_in_its_zone() -> None:
    model = fleet("g", per_zone=2)
    required = Decision(allowed=frozenset({"g"}))
    assert fill(model, required, Counter({"g-0": 1})) == 5


def test_the_model_and_the_librarys_room_agree_on_the_operators_template() -> None:
    for per_zone, main in ((1, None), (5, None), (1, "g-0"), (5, "g-3")):
        model = fleet("g", "h", per_zone=per_zone)
        matching = Counter({main: 1}) if main else Counter[str]()
        hosts = [
            Host(n.name, n.region, model.labels(n), free_cpu_millis=n.free_millis)
            for n in model.fleet.nodes
        ]
        placed = [PlacedPod(main, POOL.labels)] if main else []
        room = pool_room(POOL, hosts, placed, regions={"g"}, limit=100)
        assert fill(model, Decision(allowed=frozenset({"g"})), matching) == room


def test_the_hpa_moves_replicas_between_the_pool_and_three_times_it_capped_at_20() -> None:
    assert [hpa_max(3), hpa_max(6), hpa_max(20)] == [9, 18, 20]
    daily = [replicas_at(6, hour) for hour in range(24)]
    assert (min(daily), max(daily)) == (6, 18)
    assert {replicas_at(20, hour) for hour in range(24)} == {20}


def test_ordered_ready_creates_no_pod_after_a_pending_one_and_the_main_pod_holds_a_node() -> None:
    model = fleet("g", "h")
    traces = Traces(datetime(2024, 1, 15, tzinfo=UTC), 48, {"G": (1.0,) * 48, "H": (9.0,) * 48}, {})
    only_g = Decision(allowed=frozenset({"g"}))
    outcome = run_pool("g-only", lambda c: only_g, model, POOL, traces, 3, hours=3)
    # Three nodes in g, one of them the main pod's: ordinal 2 stays Pending, later ones are
    # never created.
    assert outcome.region_hours == {"g": 2 * 3}
    assert outcome.unserved_hours == sum(replicas_at(3, h) for h in range(3)) - 2 * 3
    assert outcome.pods == 3


def test_the_pool_sized_policy_requires_the_greenest_regions_that_hold_the_pool() -> None:
    model = fleet("g", "h", "i")
    ranking = Ranking(
        tuple(RegionScore(r, g, "t", Freshness.LIVE, g) for r, g in (("g", 1), ("h", 2), ("i", 3))),
        (),
        24,
        datetime(2024, 1, 15, tzinfo=UTC),
    )
    hosts = tuple(
        Host(n.name, n.region, model.labels(n), free_cpu_millis=8000) for n in model.fleet.nodes
    )
    creation = Creation(0, 10, replicas=4, maximum=12, bound=0, hosts=hosts, placed=())
    by_replicas = pool_sized(lambda c: ranking, POOL, from_hpa=False)(creation)
    by_maximum = pool_sized(lambda c: ranking, POOL, from_hpa=True)(creation)
    assert by_replicas.allowed == {"g", "h"}
    assert by_maximum.allowed is None  # nine nodes cannot hold twelve: preferred terms only

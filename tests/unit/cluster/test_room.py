"""How many read-pool pods a region set holds, and the pool-sized required set, on the operator's
own read-pool template (tests/fixtures/operator-read-pool)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.cluster.constraints import (
    HOSTNAME,
    ZONE,
    ConstraintError,
    LabelSelector,
    PoolConstraints,
    Requirement,
)
from shared.cluster.inventory import NodeInfo
from shared.cluster.room import Host, PlacedPod, holds_pool, pool_room
from shared.core.models import Freshness
from shared.scoring.ranking import Ranking, RegionScore, low_carbon_set

FIXTURES = Path(__file__).parents[2] / "fixtures" / "operator-read-pool"
REGION = "topology.kubernetes.io/region"


def statefulset() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / "read-statefulset.yaml").read_text())
    return loaded


POOL = PoolConstraints.from_controller(statefulset())
MAIN_POD_LABELS = {  # the StellarNode's own (non-read) pod: same name, component and network
    "app.kubernetes.io/name": "stellar-node",
    "app.kubernetes.io/component": "validator",
    "app.kubernetes.io/instance": "carbon-validator",
    "stellar-network": "testnet",
}


def fleet(
    regions: Sequence[str], *, zones: int = 3, nodes_per_zone: int = 1, cordoned: Sequence[str] = ()
) -> list[Host]:
    hosts = []
    for region in regions:
        for z in range(zones):
            zone = f"{region}-{'abcdef'[z]}"
            for n in range(nodes_per_zone):
                name = f"{zone}-{n}"
                labels = {REGION: region, ZONE: zone, HOSTNAME: name}
                hosts.append(
                    Host(
                        name,
                        region,
                        labels,
                        schedulable=name not in cordoned,
                        free_cpu_millis=4000,
                        free_memory_bytes=8 * 1024**3,
                    )
                )
    return hosts


def ranking(*regions: str) -> Ranking:
    """Regions greenest first, 100 g apart."""
    return Ranking(
        scores=tuple(
            RegionScore(r, 100.0 * (i + 1), "test", Freshness.LIVE, 100.0 * (i + 1))
            for i, r in enumerate(regions)
        ),
        unranked=(),
        horizon_hours=24,
        computed_at=datetime(2024, 1, 15, tzinfo=UTC),
    )


REGIONS = tuple(f"r{i:02d}" for i in range(14))


def required_set(
    hosts: Sequence[Host], wanted: int, placed: Sequence[PlacedPod] = ()
) -> tuple[str, ...]:
    return low_carbon_set(ranking(*REGIONS), holds=holds_pool(POOL, hosts, placed, wanted=wanted))


def test_the_operators_template_holds_two_spreads_and_a_hostname_anti_affinity() -> None:
    assert [(c.topology_key, c.max_skew) for c in POOL.spreads] == [(HOSTNAME, 1), (ZONE, 1)]
    assert [t.topology_key for t in POOL.anti_affinity] == [HOSTNAME]
    assert all(c.selector.matches(POOL.labels) for c in POOL.spreads)
    assert all(c.selector.matches(MAIN_POD_LABELS) for c in POOL.spreads)
    assert (POOL.cpu_millis, POOL.memory_bytes) == (500, 1024**3)


def test_schedule_anyway_constraints_never_strand_a_pod_and_are_left_out() -> None:
    template = statefulset()
    for constraint in template["spec"]["template"]["spec"]["topologySpreadConstraints"]:
        constraint["whenUnsatisfiable"] = "ScheduleAnyway"
    assert PoolConstraints.from_controller(template).spreads == ()


def test_a_spread_without_a_positive_max_skew_is_refused() -> None:
    template = statefulset()
    template["spec"]["template"]["spec"]["topologySpreadConstraints"][0]["maxSkew"] = 0
    with pytest.raises(ConstraintError, match="maxSkew"):
        PoolConstraints.from_controller(template)


def test_match_expressions_are_and_ed_with_match_labels() -> None:
    selector = LabelSelector(
        {"app": "core"},
        (Requirement("tier", "In", frozenset({"read"})), Requirement("canary", "DoesNotExist")),
    )
    assert selector.matches({"app": "core", "tier": "read"})
    assert not selector.matches({"app": "core", "tier": "read", "canary": "1"})
    assert not selector.matches({"app": "core", "tier": "write"})


def test_one_node_per_zone_holds_one_pool_pod_per_node() -> None:
    assert pool_room(POOL, fleet(["a", "b"]), (), limit=20) == 6


def test_a_pool_of_20_on_one_node_per_zone_gets_the_greenest_regions_with_20_free_nodes() -> None:
    assert required_set(fleet(REGIONS), 20) == REGIONS[:7]


def test_three_zones_of_five_nodes_keep_a_pool_of_6_in_the_greenest_region() -> None:
    assert required_set(fleet(REGIONS, nodes_per_zone=5), 6) == REGIONS[:1]


def test_three_zones_of_five_nodes_hold_a_pool_of_20_in_the_two_greenest_regions() -> None:
    assert required_set(fleet(REGIONS, nodes_per_zone=5), 20) == REGIONS[:2]


def test_the_main_pod_of_the_same_component_takes_a_node_and_counts_in_the_spread() -> None:
    hosts = fleet(["a", "b"], zones=3, nodes_per_zone=1)
    main = [PlacedPod("a-a-0", MAIN_POD_LABELS)]
    assert pool_room(POOL, hosts, main, regions={"a"}, limit=20) == 2
    green = fleet(REGIONS)
    assert required_set(green, 3, [PlacedPod("r00-a-0", MAIN_POD_LABELS)]) == REGIONS[:2]
    assert required_set(green, 3) == REGIONS[:1]


def test_a_main_pod_alone_in_its_zone_lifts_the_minimum_where_an_empty_zone_would_not() -> None:
    # Zone a's only node runs the main pod: the zone counts 1 and takes no pool pod, so zones b
    # and c may reach 2. Were that node cordoned and empty instead, zone a would stay at 0 and
    # cap b and c at 1 each.
    hosts = [h for h in fleet(["g"], nodes_per_zone=5) if h.name == "g-a-0" or "-a-" not in h.name]
    assert pool_room(POOL, hosts, [PlacedPod("g-a-0", MAIN_POD_LABELS)], limit=20) == 4
    cordoned = [Host(h.name, h.region, h.labels, schedulable=h.name != "g-a-0") for h in hosts]
    assert pool_room(POOL, cordoned, [], limit=20) == 2


def test_a_cordoned_green_node_still_counts_as_an_empty_zone_and_the_set_grows() -> None:
    assert required_set(fleet(REGIONS), 3) == REGIONS[:1]
    assert required_set(fleet(REGIONS, cordoned=["r00-a-0"]), 3) == REGIONS[:2]


def test_pods_already_in_the_pool_count_against_the_set() -> None:
    hosts = fleet(REGIONS, nodes_per_zone=5)
    placed = [PlacedPod(f"r00-{z}-{n}", POOL.labels) for z in "abc" for n in range(4)]
    assert pool_room(POOL, hosts, placed, regions={"r00"}, limit=20) == 3
    assert required_set(hosts, 3, placed) == REGIONS[:1]
    assert required_set(hosts, 4, placed) == REGIONS[:2]


def test_a_node_without_room_for_the_requests_takes_no_pool_pod() -> None:
    full = [
        Host(h.name, h.region, h.labels, free_cpu_millis=400, free_memory_bytes=None)
        for h in fleet(["a"])
    ]
    assert pool_room(POOL, full, [], limit=20) == 0


def test_when_no_set_can_hold_the_pool_there_is_no_required_set() -> None:
    assert required_set(fleet(REGIONS[:2]), 20) == ()


def test_regions_tied_in_the_ranking_join_the_set_together() -> None:
    tied = Ranking(
        scores=tuple(
            RegionScore(r, g, "test", Freshness.LIVE, g)
            for r, g in (("a", 100.0), ("b", 200.0), ("c", 200.0), ("d", 300.0))
        ),
        unranked=(),
        horizon_hours=24,
        computed_at=datetime(2024, 1, 15, tzinfo=UTC),
    )
    holds = holds_pool(POOL, fleet("abcd"), (), wanted=4)
    assert low_carbon_set(tied, holds=holds) == ("a", "b", "c")


def test_a_hosts_free_room_is_allocatable_minus_requests_and_zero_allocatable_is_unknown() -> None:
    node = NodeInfo(
        name="n",
        labels={HOSTNAME: "n"},
        region="r",
        region_label=REGION,
        cloud=None,
        unschedulable=True,
        cpu_millis=4000,
        memory_bytes=0,
    )
    host = Host.from_node(node, requested_cpu_millis=1500)
    assert (host.free_cpu_millis, host.free_memory_bytes) == (2500, None)
    assert not host.schedulable

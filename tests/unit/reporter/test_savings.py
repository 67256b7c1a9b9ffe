"""Read-replica placement and its savings against an even spread over the eligible regions."""

from __future__ import annotations

import pytest

from reporter.footprints import node_footprints
from reporter.placement import ReplicaPlacement, replica_placement
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo, PodInfo
from tests.unit.reporter.cluster import NOW, Catalog, carbon, node, pod, region_info, snapshot

GREEN, MID, DIRTY = region_info("green-1"), region_info("mid-1"), region_info("dirty-1")
NODES = [node("g", "green-1"), node("m", "mid-1"), node("d", "dirty-1")]


def three_regions() -> CarbonSnapshot:
    return snapshot(carbon(GREEN, 100), carbon(MID, 200), carbon(DIRTY, 300))


def place(
    pods: list[PodInfo],
    nodes: list[NodeInfo] | None = None,
    carbon_snapshot: CarbonSnapshot | None = None,
) -> ReplicaPlacement:
    data = carbon_snapshot or three_regions()
    footprints = node_footprints(nodes or NODES, pods, snapshot=data, catalog=Catalog())
    return replica_placement(footprints, pods, snapshot=data, now=NOW)


def test_four_replicas_in_the_greenest_of_three_regions_save_half_against_an_even_spread() -> None:
    # Same PUE everywhere: actual 4 x P x 100, baseline 4 x P x mean(100, 200, 300) = 4 x P x 200.
    replicas = [pod(f"read-{i}", "g", carbon_aware=True) for i in range(4)]
    placement = place(replicas)
    assert placement.total == placement.placed == placement.carbon_aware == 4
    assert placement.in_greenest == 4
    assert placement.greenest_regions == ("green-1",)
    assert placement.eligible_regions == ("dirty-1", "green-1", "mid-1")
    assert placement.savings_pct == pytest.approx(50.0)
    watts = placement.watts
    assert placement.g_per_hour == pytest.approx(watts / 1000 * 1.135 * 100)
    assert placement.baseline_g_per_hour == pytest.approx(watts / 1000 * 1.135 * 200)


def test_replicas_spread_like_the_baseline_save_nothing() -> None:
    replicas = [pod("a", "g"), pod("b", "m"), pod("c", "d")]
    assert place(replicas).savings_pct == pytest.approx(0.0)


def test_replicas_in_the_dirtiest_region_report_negative_savings() -> None:
    assert place([pod("a", "d"), pod("b", "d")]).savings_pct == pytest.approx(-50.0)


def test_a_replica_requesting_half_the_node_is_charged_half_its_power() -> None:
    placement = place([pod("a", "g", cpu_millis=4000)])
    node_watts = 8 * 2.12
    assert placement.watts == pytest.approx(node_watts / 2)


def test_replicas_without_a_cpu_request_share_their_node_equally() -> None:
    placement = place([pod("a", "g", cpu_millis=0), pod("b", "g", cpu_millis=0)])
    assert placement.watts == pytest.approx(8 * 2.12)


def test_regions_without_schedulable_nodes_are_not_eligible_for_the_baseline() -> None:
    nodes = [node("g", "green-1"), node("m", "mid-1"), node("d", "dirty-1", schedulable=False)]
    placement = place([pod("a", "g")], nodes)
    assert placement.eligible_regions == ("green-1", "mid-1")
    # Baseline mean(100, 200) = 150 against actual 100.
    assert placement.savings_pct == pytest.approx(100 / 3)


def test_replicas_in_a_region_without_intensity_are_counted_but_not_summed() -> None:
    data = snapshot(carbon(GREEN, 100), carbon(MID, 200), carbon(DIRTY, None))
    placement = place([pod("a", "g"), pod("b", "d")], carbon_snapshot=data)
    assert placement.placed == 2
    assert placement.accounted == 1
    assert placement.eligible_regions == ("green-1", "mid-1")
    assert placement.savings_pct == pytest.approx(100 / 3)


def test_pending_replicas_and_other_roles_do_not_count_as_placed() -> None:
    placement = place([pod("a", None), pod("core", "g", role="validator")])
    assert placement.total == 1
    assert placement.placed == 0
    assert placement.g_per_hour is None
    assert placement.savings_pct is None


def test_regions_tied_for_greenest_all_count_as_the_greenest() -> None:
    data = snapshot(carbon(GREEN, 100), carbon(MID, 100), carbon(DIRTY, 300))
    placement = place([pod("a", "g"), pod("b", "m")], carbon_snapshot=data)
    assert placement.greenest_regions == ("green-1", "mid-1")
    assert placement.in_greenest == 2


def test_replicas_limited_by_their_own_rules_are_counted_per_rule() -> None:
    placement = place(
        [
            pod("a", "g", carbon_aware=True, constraint="podAntiAffinity:kubernetes.io/hostname"),
            pod(
                "b",
                None,
                carbon_aware=True,
                constraint="topologySpread:topology.kubernetes.io/zone,"
                "podAntiAffinity:kubernetes.io/hostname",
            ),
            pod("c", "m", carbon_aware=True),
            pod("v", "m", role="validator", constraint="resources"),
        ]
    )
    assert placement.constrained == 2
    assert placement.constraints == {
        "podAntiAffinity:kubernetes.io/hostname": 2,
        "topologySpread:topology.kubernetes.io/zone": 1,
    }

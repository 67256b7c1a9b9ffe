"""The tier component's pure decisions: label writes, restoring tiers, the hourly budget."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from shared.cluster.inventory import NodeInfo
from shared.scoring.ranking import Ranking, rank
from shared.scoring.tiers import TIER_LABEL, RegionTier, TierPlan, TierPolicy, plan_tiers
from tests.unit.tiers.builders import NOW, inventory_node, snapshot
from tiers.decide import (
    ChangeBudget,
    LabelWrite,
    held_kind,
    label_writes,
    nodes_per_region,
    restore_tiers,
)

POLICY = TierPolicy()


def plan_for(
    nodes: Mapping[str, NodeInfo],
    values: Mapping[str, float],
    previous: Mapping[str, RegionTier] | None = None,
) -> tuple[TierPlan, Ranking]:
    ranking = rank(snapshot(values), values, now=NOW)
    plan = plan_tiers(
        previous or {}, ranking, now=NOW, policy=POLICY, nodes=nodes_per_region(nodes)
    )
    return plan, ranking


def test_only_nodes_whose_label_differs_from_the_plan_are_written() -> None:
    nodes = {
        "g1": inventory_node("g1", "green", tier="0"),
        "g2": inventory_node("g2", "green"),
        "d1": inventory_node("d1", "dirty", tier="0"),
        "bare": inventory_node("bare", None),
        "dark": inventory_node("dark", "unknown", tier="4"),
    }
    plan, ranking = plan_for(nodes, {"green": 100, "dirty": 400})

    writes = label_writes(nodes, plan, ranking)

    assert {w.node: (w.before, w.after) for w in writes} == {"g2": (None, 0), "d1": (0, 6)}
    # The biggest move comes first; nodes without a tiered region are never touched.
    assert writes[0].node == "d1"
    assert writes[0].direction == "dirtier"
    assert writes[1].direction == "new"


def test_a_label_the_webhook_cannot_read_is_rewritten_like_a_missing_one() -> None:
    nodes = {"d1": inventory_node("d1", "dirty", tier="06")}
    plan, ranking = plan_for(nodes, {"green": 100, "dirty": 400}, previous=None)

    (write,) = label_writes(nodes, plan, ranking)

    # "06" names no tier for the webhook's terms; written as "6" it does, and moves no pod.
    assert (write.before, write.value, write.moves) == (None, "6", False)


def test_the_event_message_names_the_region_both_tiers_and_the_intensity() -> None:
    write = LabelWrite("n1", "eu-north-1", before=2, after=0, expected_g_per_kwh=41.4)

    assert write.message() == f"region eu-north-1: {TIER_LABEL} 2 -> 0 (expected 41 gCO2eq/kWh)"
    assert write.value == "0"
    assert write.direction == "greener"


def test_restored_tiers_follow_most_nodes_of_a_region_and_start_their_dwell_now() -> None:
    nodes = {
        "a": inventory_node("a", "green", tier="1"),
        "b": inventory_node("b", "green", tier="1"),
        "c": inventory_node("c", "green", tier="0"),
        "d": inventory_node("d", "mid", tier="3"),
        "e": inventory_node("e", "mid", tier="2"),
        "f": inventory_node("f", "fresh"),
        "g": inventory_node("g", None, tier="0"),
    }

    restored = restore_tiers(nodes, now=NOW)

    assert restored == {
        "green": RegionTier("green", 1, NOW),
        "mid": RegionTier("mid", 2, NOW),  # a tie goes to the greener tier
    }


def test_every_hold_reason_of_the_tier_maths_has_a_metric_name() -> None:
    nodes = {"a": inventory_node("a", "green"), "b": inventory_node("b", "dirty")}
    recent = {
        "green": RegionTier("green", 0, NOW - timedelta(minutes=5)),
        "dirty": RegionTier("dirty", 0, NOW - timedelta(minutes=5)),
    }
    dwell, _ = plan_for(nodes, {"green": 100, "dirty": 400}, recent)
    none = plan_tiers(recent, rank(snapshot({}), (), now=NOW), now=NOW, policy=POLICY, nodes={})
    settled = {region: RegionTier(region, 0, NOW - timedelta(hours=3)) for region in recent}
    frozen = plan_tiers(
        settled,
        rank(snapshot({"green": 100, "dirty": 400}, stale=("dirty",)), ("green", "dirty"), now=NOW),
        now=NOW,
        policy=POLICY,
        nodes={"green": 1, "dirty": 1},
    )
    budget = plan_tiers(
        settled,
        rank(snapshot({"green": 100, "dirty": 400}), ("green", "dirty"), now=NOW),
        now=NOW,
        policy=TierPolicy(max_node_changes_per_hour=1),
        nodes={"green": 1, "dirty": 1},
        changed_nodes_last_hour=1,
    )

    assert {held_kind(reason) for reason in dwell.held.values()} == {"dwell"}
    assert {held_kind(reason) for reason in none.held.values()} == {"no-data"}
    assert {held_kind(reason) for reason in frozen.held.values()} == {"frozen"}
    assert {held_kind(reason) for reason in budget.held.values()} == {"budget"}


def test_the_budget_counts_moves_of_the_last_hour_only() -> None:
    budget = ChangeBudget()
    moves = [LabelWrite(f"n{i}", "r", 0, 1, 100.0) for i in range(3)]
    new = [LabelWrite("n9", "r", None, 1, 100.0)]

    budget.record(NOW, [*moves, *new])

    assert budget.spent(NOW) == 3
    assert budget.spent(NOW + timedelta(minutes=59)) == 3
    assert budget.spent(NOW + timedelta(hours=1)) == 0

"""Carbon tiers: cut from the ranking, moved with hysteresis, dwell and a node budget; frozen in
outages."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.models import Freshness
from shared.scoring.ranking import Ranking, RegionScore
from shared.scoring.tiers import (
    RegionTier,
    TierPolicy,
    node_tiers,
    plan_tiers,
    prevailing_tier,
    tier_value,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
POLICY = TierPolicy()  # band 10 %, step 1.25, margin 10 %, dwell 2 h
NODES = {"green": 3, "mid": 3, "dirty": 3, "far": 3}


def ranking(values: Mapping[str, float], *, stale: tuple[str, ...] = ()) -> Ranking:
    scores = tuple(
        sorted(
            (
                RegionScore(
                    region=region,
                    expected_g_per_kwh=value,
                    source="mock",
                    freshness=Freshness.STALE if region in stale else Freshness.LIVE,
                    current_g_per_kwh=value,
                )
                for region, value in values.items()
            ),
            key=lambda s: (s.expected_g_per_kwh, s.region),
        )
    )
    return Ranking(scores=scores, unranked=(), horizon_hours=24, computed_at=NOW)


def held(
    tiers: Mapping[str, int], *, since: datetime = NOW - timedelta(hours=3)
) -> dict[str, RegionTier]:
    return {region: RegionTier(region, tier, since) for region, tier in tiers.items()}


def tiers_of(plan_tiers_result: Mapping[str, RegionTier]) -> dict[str, int]:
    return {region: held.tier for region, held in plan_tiers_result.items()}


def test_tier_zero_holds_the_greenest_and_those_within_the_band() -> None:
    assert POLICY.tier_of(100, 100) == 0
    assert POLICY.tier_of(110, 100) == 0
    assert POLICY.tier_of(111, 100) == 1
    assert POLICY.tier_of(110 * 1.25, 100) == 1
    assert POLICY.tier_of(110 * 1.25 * 1.25 + 1, 100) == 3
    assert POLICY.tier_of(100_000, 100) == POLICY.max_tier


def test_weights_fall_like_the_webhooks_and_never_reach_zero() -> None:
    weights = [POLICY.weight(tier) for tier in range(POLICY.max_tier + 1)]
    assert weights[0] == 100
    assert weights == sorted(weights, reverse=True)
    assert weights[1] == round(100 / 1.25**2)
    assert min(weights) >= 1


def test_regions_seen_for_the_first_time_get_their_tier_at_once() -> None:
    plan = plan_tiers(
        {}, ranking({"green": 100, "mid": 130, "dirty": 400}), now=NOW, policy=POLICY, nodes=NODES
    )

    assert tiers_of(plan.tiers) == {"green": 0, "mid": 1, "dirty": 6}
    assert {c.region for c in plan.changes} == {"green", "mid", "dirty"}


def test_a_region_just_past_a_boundary_keeps_its_tier_until_it_clears_the_margin() -> None:
    before = held({"green": 0, "mid": 0})
    # mid at 115 g is tier 1 by the cut (above 110) but within the 10 % margin of tier 0's bound.
    plan = plan_tiers(
        before, ranking({"green": 100, "mid": 115}), now=NOW, policy=POLICY, nodes=NODES
    )
    assert tiers_of(plan.tiers) == {"green": 0, "mid": 0}
    assert plan.changes == ()

    # At 122 g it has passed 110 g by more than 10 %: it moves.
    plan = plan_tiers(
        before, ranking({"green": 100, "mid": 122}), now=NOW, policy=POLICY, nodes=NODES
    )
    assert tiers_of(plan.tiers)["mid"] == 1


def test_a_region_enters_a_greener_tier_only_below_its_bound_by_the_margin() -> None:
    before = held({"green": 0, "mid": 1})
    plan = plan_tiers(
        before, ranking({"green": 100, "mid": 105}), now=NOW, policy=POLICY, nodes=NODES
    )
    assert tiers_of(plan.tiers)["mid"] == 1  # 105 × 1.1 > 110
    plan = plan_tiers(
        before, ranking({"green": 100, "mid": 99}), now=NOW, policy=POLICY, nodes=NODES
    )
    assert tiers_of(plan.tiers)["mid"] == 0


@pytest.mark.parametrize("margin", [0.1, 0.15, 0.3])
def test_the_region_that_becomes_the_greenest_reaches_tier_zero_whatever_the_margin(
    margin: float,
) -> None:
    policy = TierPolicy(margin=margin)
    plan = plan_tiers(
        held({"green": 0, "mid": 3}),
        ranking({"green": 400.0, "mid": 80.0}),
        now=NOW,
        policy=policy,
        nodes=NODES,
    )

    assert tiers_of(plan.tiers)["mid"] == 0


def test_a_region_changes_tier_at_most_once_per_dwell_time() -> None:
    before = held({"green": 0, "mid": 3}, since=NOW - timedelta(minutes=30))

    plan = plan_tiers(
        before, ranking({"green": 100, "mid": 90}), now=NOW, policy=POLICY, nodes=NODES
    )

    assert tiers_of(plan.tiers)["mid"] == 3
    assert "mid" in plan.held
    later = plan_tiers(
        before,
        ranking({"green": 100, "mid": 90}),
        now=NOW + timedelta(hours=2),
        policy=POLICY,
        nodes=NODES,
    )
    assert tiers_of(later.tiers)["mid"] == 0
    assert later.tiers["mid"].since == NOW + timedelta(hours=2)


@pytest.mark.parametrize("stale", [("mid",), ("green",)])
def test_tiers_freeze_when_the_data_is_not_live(stale: tuple[str, ...]) -> None:
    before = held({"green": 0, "mid": 4})

    plan = plan_tiers(
        before, ranking({"green": 90, "mid": 95}, stale=stale), now=NOW, policy=POLICY, nodes=NODES
    )

    assert tiers_of(plan.tiers) == {"green": 0, "mid": 4}
    assert plan.changes == ()


def test_no_carbon_data_at_all_keeps_every_tier() -> None:
    before = held({"green": 0, "mid": 4})

    plan = plan_tiers(before, ranking({}), now=NOW, policy=POLICY, nodes=NODES)

    assert tiers_of(plan.tiers) == {"green": 0, "mid": 4}


def test_the_node_budget_moves_the_biggest_changes_first_and_holds_the_rest() -> None:
    policy = TierPolicy(max_node_changes_per_hour=4)
    before = held({"green": 0, "mid": 1, "dirty": 6})
    # dirty becomes the greenest (a move of 6 tiers), mid dirtier by one tier: 3 nodes each.
    plan = plan_tiers(
        before,
        ranking({"green": 100, "mid": 160, "dirty": 95}),
        now=NOW,
        policy=policy,
        nodes=NODES,
    )

    assert tiers_of(plan.tiers) == {"green": 0, "mid": 1, "dirty": 0}
    assert plan.held["mid"] == "node changes per hour used up"
    spent = plan_tiers(
        before,
        ranking({"green": 100, "mid": 160, "dirty": 95}),
        now=NOW,
        policy=policy,
        nodes=NODES,
        changed_nodes_last_hour=4,
    )
    assert spent.changes == ()


def test_nodes_take_their_regions_tier_and_unknown_regions_are_left_alone() -> None:
    tiers = held({"green": 0, "mid": 2})

    assert node_tiers(tiers, {"n1": "green", "n2": "mid", "n3": "elsewhere", "n4": None}) == {
        "n1": 0,
        "n2": 2,
    }


def test_impossible_policies_are_refused() -> None:
    with pytest.raises(ValueError, match="step"):
        TierPolicy(step=1.0)
    with pytest.raises(ValueError, match="negative"):
        TierPolicy(margin=-0.1)


@pytest.mark.parametrize(
    ("label", "tier"),
    [
        ("0", 0),
        ("9", 9),
        ("12", 12),
        ("03", None),
        ("-1", None),
        ("x", None),
        ("1.5", None),
        ("\u0663", None),
        ("", None),
        (None, None),
    ],
)
def test_only_plain_tier_numbers_name_a_tier(label: str | None, tier: int | None) -> None:
    assert tier_value(label) == tier


def test_a_region_holds_the_tier_most_of_its_nodes_carry_and_the_greener_on_a_tie() -> None:
    assert prevailing_tier([1, 1, 0]) == 1
    assert prevailing_tier([3, 0, 0, 3]) == 0
    assert prevailing_tier([]) is None

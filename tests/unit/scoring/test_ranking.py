"""Ranking: expected intensity over a horizon, preference weights and the low-carbon set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.core.models import (
    Cloud,
    Forecast,
    ForecastPoint,
    Freshness,
    Intensity,
    Provenance,
    RegionInfo,
)
from shared.scoring.ranking import (
    PreferenceTerm,
    Ranking,
    RegionScore,
    expected_intensity,
    low_carbon_set,
    preference_terms,
    rank,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def provenance(provider: str = "mock", freshness: Freshness = Freshness.LIVE) -> Provenance:
    return Provenance(provider=provider, fetched_at=NOW, freshness=freshness)


def intensity(
    value: float, *, provider: str = "mock", freshness: Freshness = Freshness.LIVE
) -> Intensity:
    return Intensity(
        zone="Z", g_per_kwh=value, observed_at=NOW, provenance=provenance(provider, freshness)
    )


def forecast(
    *points: tuple[float, float], freshness: Freshness = Freshness.LIVE, hours: float = 1
) -> Forecast:
    """Points as (hours from NOW, value)."""
    return Forecast(
        zone="Z",
        generated_at=NOW,
        points=tuple(
            ForecastPoint(
                starts_at=NOW + timedelta(hours=offset),
                g_per_kwh=value,
                duration=timedelta(hours=hours),
            )
            for offset, value in points
        ),
        provenance=provenance(freshness=freshness),
    )


def snapshot(**regions: tuple[Intensity | None, Forecast | None]) -> CarbonSnapshot:
    return CarbonSnapshot(
        taken_at=NOW,
        regions={
            name.replace("_", "-"): RegionCarbon(
                info=RegionInfo(cloud=Cloud.AWS, region=name.replace("_", "-"), zone="Z"),
                current=current,
                forecast=fc,
            )
            for name, (current, fc) in regions.items()
        },
    )


def ranking_of(**values: float) -> Ranking:
    return rank(
        snapshot(**{name: (intensity(v), None) for name, v in values.items()}),
        [name.replace("_", "-") for name in values],
        now=NOW,
    )


def test_expected_intensity_is_the_time_weighted_mean_of_current_and_forecast() -> None:
    # 100 for the first 2 h, 200 for the next 1 h, 400 for the last 1 h of a 4 h horizon:
    # (100*2 + 200*1 + 400*1) / 4 = 200
    fc = forecast((2, 200), (3, 400))
    assert expected_intensity(intensity(100), fc, now=NOW, horizon_hours=4) == pytest.approx(200)


def test_expected_intensity_holds_the_last_forecast_value_past_its_end() -> None:
    # One 1 h point at +1 h, horizon 10 h: 100 for 1 h, then 300 held for 9 h → 280
    fc = forecast((1, 300))
    assert expected_intensity(intensity(100), fc, now=NOW, horizon_hours=10) == pytest.approx(280)


def test_expected_intensity_keeps_the_previous_value_across_a_gap() -> None:
    # 100 for 1 h, 200 from +1 h (a 1 h point) through the gap until 400 starts at +3 h.
    fc = forecast((1, 200), (3, 400))
    # (100*1 + 200*2 + 400*1) / 4 = 225
    assert expected_intensity(intensity(100), fc, now=NOW, horizon_hours=4) == pytest.approx(225)


def test_expected_intensity_ignores_points_beyond_the_horizon() -> None:
    fc = forecast((2, 200), (30, 10_000))
    # (100*2 + 200*22) / 24
    assert expected_intensity(intensity(100), fc, now=NOW, horizon_hours=24) == pytest.approx(
        (200 + 200 * 22) / 24
    )


def test_current_reading_outranks_a_forecast_point_covering_now() -> None:
    fc = forecast((-0.5, 900), (1, 100))
    # 50 until the first point after now (+1 h), then 100: (50 + 100) / 2
    assert expected_intensity(intensity(50), fc, now=NOW, horizon_hours=2) == pytest.approx(75)


def test_without_a_forecast_the_expected_intensity_is_the_current_value() -> None:
    assert expected_intensity(intensity(321), None, now=NOW, horizon_hours=24) == 321


def test_without_a_current_reading_the_forecast_covering_now_stands_in() -> None:
    fc = forecast((-0.5, 200), (1, 400))
    assert expected_intensity(None, fc, now=NOW, horizon_hours=2) == pytest.approx(300)


def test_nothing_known_is_none_not_zero() -> None:
    assert expected_intensity(None, None, now=NOW, horizon_hours=24) is None


def test_a_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon_hours"):
        expected_intensity(intensity(1), None, now=NOW, horizon_hours=0)


def test_rank_orders_regions_ascending_with_ties_by_name() -> None:
    ranking = ranking_of(us_west_2=118, europe_west1=180, eu_north_1=118)
    assert ranking.regions == ("eu-north-1", "us-west-2", "europe-west1")
    greenest = ranking.greenest
    assert greenest is not None
    assert greenest.region == "eu-north-1"


def test_regions_without_data_are_unranked_never_zero() -> None:
    snap = snapshot(us_west_2=(intensity(118), None), eu_west_1=(None, forecast((1, 5))))
    ranking = rank(snap, ["us-west-2", "eu-west-1", "ap-south-1"], now=NOW)
    assert ranking.regions == ("us-west-2",)
    assert ranking.unranked == ("ap-south-1", "eu-west-1")


def test_rank_uses_the_forecast_over_the_horizon() -> None:
    snap = snapshot(
        clean_now=(intensity(100), forecast((1, 500))),
        steady=(intensity(200), None),
    )
    ranking = rank(snap, ["clean-now", "steady"], now=NOW, horizon_hours=24)
    assert ranking.regions == ("steady", "clean-now")
    assert ranking.scores[1].current_g_per_kwh == 100


def test_stale_provenance_propagates_to_the_score_and_the_ranking() -> None:
    snap = snapshot(
        us_west_2=(intensity(118, provider="electricitymaps", freshness=Freshness.STALE), None),
        europe_west1=(intensity(180, provider="static", freshness=Freshness.STATIC), None),
    )
    ranking = rank(snap, ["us-west-2", "europe-west1"], now=NOW)
    assert [s.freshness for s in ranking.scores] == [Freshness.STALE, Freshness.STATIC]
    assert ranking.scores[0].source == "electricitymaps(stale)"
    assert ranking.sources() == ("electricitymaps(stale)", "static")
    assert ranking.stale


def test_a_stale_forecast_marks_a_live_reading_stale() -> None:
    snap = snapshot(r=(intensity(100), forecast((1, 120), freshness=Freshness.STALE)))
    ranking = rank(snap, ["r"], now=NOW)
    assert ranking.scores[0].freshness is Freshness.STALE


def test_live_data_is_not_stale() -> None:
    assert not ranking_of(a=1, b=2).stale


def test_annotation_lists_rounded_values_in_ranked_order() -> None:
    ranking = ranking_of(europe_west1=180.4, us_west_2=117.6)
    assert ranking.annotation() == "us-west-2=118,europe-west1=180"


def test_weights_fall_with_the_square_of_the_ratio_to_the_greenest() -> None:
    # b: 100 * (100/150)^2 = 44.4 -> 44; c: 100 * (100/200)^2 = 25; d is the dirtiest.
    terms = preference_terms(ranking_of(a=100, b=150, c=200, d=400))
    assert terms == (
        PreferenceTerm(100, ("a",)),
        PreferenceTerm(44, ("b",)),
        PreferenceTerm(25, ("c",)),
    )


def test_a_near_equal_region_keeps_a_near_equal_weight() -> None:
    # 100 * (100/110)^2 = 82.6 -> 83
    terms = preference_terms(ranking_of(a=100, b=110, c=300))
    assert terms == (PreferenceTerm(100, ("a",)), PreferenceTerm(83, ("b",)))


def test_a_weight_depends_on_the_greenest_not_on_the_dirtiest() -> None:
    near = preference_terms(ranking_of(a=50, b=100, c=500))
    far = preference_terms(ranking_of(a=50, b=100, c=5000))
    assert near == far == (PreferenceTerm(100, ("a",)), PreferenceTerm(25, ("b",)))


def test_the_dirtiest_region_gets_no_term() -> None:
    terms = preference_terms(ranking_of(a=100, b=200, c=200))
    assert terms == (PreferenceTerm(100, ("a",)),)


def test_regions_with_equal_weight_share_one_sorted_term() -> None:
    # c: 100 * (100/201)^2 = 24.75 -> 25, the same as b's 25.
    terms = preference_terms(ranking_of(z=100, a=100, c=201, b=200, m=300))
    assert terms == (PreferenceTerm(100, ("a", "z")), PreferenceTerm(25, ("b", "c")))


def test_weights_never_drop_below_one() -> None:
    # b: 100 * (10/150)^2 = 0.44 would round to 0; it keeps 1, ahead of the dirtiest c.
    terms = preference_terms(ranking_of(a=10, b=150, c=1000))
    assert terms == (PreferenceTerm(100, ("a",)), PreferenceTerm(1, ("b",)))


def test_a_greenest_region_at_zero_grams_leaves_the_others_weight_one() -> None:
    terms = preference_terms(ranking_of(a=0, b=5, c=10))
    assert terms == (PreferenceTerm(100, ("a",)), PreferenceTerm(1, ("b",)))


@given(st.lists(st.floats(min_value=0, max_value=5000, allow_nan=False), min_size=2, max_size=12))
def test_weights_stay_in_range_and_follow_the_ranking(values: list[float]) -> None:
    ranking = ranking_of(**{f"r{index}": value for index, value in enumerate(values)})
    terms = preference_terms(ranking)
    if len(set(values)) < 2:
        assert terms == ()
        return
    weight = {region: term.weight for term in terms for region in term.regions}
    assert terms[0].weight == 100
    assert [term.weight for term in terms] == sorted({term.weight for term in terms}, reverse=True)
    assert all(1 <= w <= 100 for w in weight.values())
    expected = {score.region: score.expected_g_per_kwh for score in ranking.scores}
    worst = max(values)
    assert {region for region, v in expected.items() if v == worst}.isdisjoint(weight)
    ordered = [weight.get(score.region, 0) for score in ranking.scores]
    assert ordered == sorted(ordered, reverse=True)


def test_a_single_region_yields_no_terms() -> None:
    assert preference_terms(ranking_of(only=120)) == ()


def test_identical_values_yield_no_terms() -> None:
    assert preference_terms(ranking_of(a=120, b=120)) == ()


def test_low_carbon_set_keeps_regions_within_the_tolerance() -> None:
    ranking = ranking_of(a=100, b=109, c=111, d=400)
    assert low_carbon_set(ranking, fraction=0.10) == ("a", "b")


def test_low_carbon_set_always_contains_the_greenest() -> None:
    ranking = ranking_of(a=0, b=0, c=1)
    assert low_carbon_set(ranking, fraction=0) == ("a", "b")


def test_low_carbon_set_of_nothing_is_empty() -> None:
    empty = Ranking(scores=(), unranked=("x",), horizon_hours=24, computed_at=NOW)
    assert low_carbon_set(empty) == ()
    assert low_carbon_set(empty, node_counts={"x": 3}) == ()
    assert empty.greenest is None


def test_a_low_carbon_set_with_enough_nodes_stays_as_it_is() -> None:
    ranking = ranking_of(a=100, b=109, c=150, d=300)
    counts = {"a": 3, "b": 2, "c": 3, "d": 3}  # a and b hold 5 of 11 nodes, more than a third
    assert low_carbon_set(ranking, node_counts=counts) == ("a", "b")


def test_a_low_carbon_set_short_of_nodes_grows_with_the_next_greenest() -> None:
    ranking = ranking_of(a=100, b=200, c=300, d=400, e=500)
    counts = dict.fromkeys("abcde", 3)  # a third of 15 is 5: a's 3 are too few, a and b's 6 do
    assert low_carbon_set(ranking, node_counts=counts) == ("a", "b")
    assert low_carbon_set(ranking, node_counts=counts, min_node_share=0.5) == ("a", "b", "c")


def test_regions_tied_in_intensity_join_the_low_carbon_set_together() -> None:
    ranking = ranking_of(a=100, b=200, c=200, d=300)
    counts = {"a": 2, "b": 2, "c": 2, "d": 6}  # b alone would reach 4 of 12; c is as green
    assert low_carbon_set(ranking, node_counts=counts) == ("a", "b", "c")


def test_regions_without_nodes_are_left_out_of_the_low_carbon_set() -> None:
    ranking = ranking_of(a=100, b=105, c=300, d=400)
    counts = {"b": 1, "c": 3, "d": 2}  # a has no node; b's 1 of 6 is short, so c joins
    assert low_carbon_set(ranking, node_counts=counts) == ("b", "c")


def test_nodes_of_unranked_regions_do_not_count_towards_the_share() -> None:
    ranking = ranking_of(a=100, b=200)
    assert low_carbon_set(ranking, node_counts={"a": 3, "b": 3, "unranked": 100}) == ("a",)


def test_a_zero_node_share_keeps_only_the_tolerance() -> None:
    ranking = ranking_of(a=100, b=300)
    counts = {"a": 1, "b": 9}
    assert low_carbon_set(ranking, node_counts=counts, min_node_share=0) == ("a",)
    assert low_carbon_set(ranking, node_counts=counts, min_node_share=1) == ("a", "b")


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_a_node_share_outside_zero_to_one_is_refused(share: float) -> None:
    with pytest.raises(ValueError, match="min_node_share"):
        low_carbon_set(ranking_of(a=1), node_counts={"a": 1}, min_node_share=share)


def test_region_scores_are_immutable() -> None:
    score = RegionScore("a", 1.0, "mock", Freshness.LIVE, 1.0)
    with pytest.raises(AttributeError):
        score.region = "b"  # type: ignore[misc]

"""Weights follow expected intensity; replicas divide as Karmada divides them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from multicluster.weights import MAX_WEIGHT, blend, carbon_weights, divide, mean_intensity

intensities = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=4),
    st.floats(min_value=1, max_value=2000, allow_nan=False),
    min_size=1,
    max_size=8,
)


def test_the_greenest_cluster_gets_the_most_and_the_rest_fall_with_the_fourth_power() -> None:
    weights = carbon_weights({"eu": 100.0, "us": 200.0, "asia": 700.0})

    assert weights == {"asia": 1, "eu": 100, "us": 6}


def test_a_floor_of_zero_lets_dirty_clusters_drop_out_and_unranked_ones_keep_the_floor() -> None:
    assert carbon_weights({"eu": 100.0, "asia": 700.0}, floor=0) == {"eu": 100}
    assert carbon_weights({"eu": 100.0}, floor=5, unranked=("lab",)) == {"eu": 100, "lab": 5}


@given(intensities, st.integers(min_value=0, max_value=50))
def test_weights_are_integers_ordered_like_intensity_and_never_under_the_floor(
    expected: dict[str, float], floor: int
) -> None:
    weights = carbon_weights(expected, floor=floor)

    assert max(weights.values()) == MAX_WEIGHT
    assert all(isinstance(w, int) and floor <= w <= MAX_WEIGHT for w in weights.values())
    if floor:
        assert set(weights) == set(expected)
    for a in weights:
        for b in weights:
            if expected[a] < expected[b]:
                assert weights[a] >= weights[b]
    assert carbon_weights(dict(reversed(expected.items())), floor=floor) == weights


def test_karmada_divides_nine_replicas_one_to_two_as_three_and_six() -> None:
    # The example in Karmada's assignByStaticWeightStrategy comment.
    assert divide(9, {"a": 1, "b": 2}) == {"a": 3, "b": 6}
    assert divide(9, {"a": 1, "b": 3}) == {"a": 2, "b": 7}


def test_a_cluster_without_weight_gets_nothing_unless_none_has_weight() -> None:
    assert divide(4, {"a": 0, "b": 1}) == {"a": 0, "b": 4}
    assert divide(4, {"a": 0, "b": 0}) == {"a": 2, "b": 2}


@given(
    st.integers(min_value=0, max_value=200),
    st.dictionaries(st.text("xyz", min_size=1), st.integers(0, 100), min_size=1, max_size=6),
)
def test_every_replica_is_placed_once(replicas: int, weights: dict[str, int]) -> None:
    assert sum(divide(replicas, weights).values()) == replicas


def test_mean_intensity_counts_replicas_where_data_is_known() -> None:
    assert mean_intensity({"eu": 3, "us": 1}, {"eu": 100.0, "us": 500.0}) == 200.0
    assert mean_intensity({"lab": 2}, {"eu": 100.0}) is None


def test_a_blend_keeps_the_floor_and_lets_a_cluster_outside_the_target_fade() -> None:
    halfway = blend({"eu": 1, "us": 1, "fading": 1}, {"eu": 100, "us": 1}, 0.5, floor=1)

    assert set(halfway) == {"eu", "us", "fading"}
    assert halfway["fading"] < halfway["eu"]
    assert halfway["eu"] == MAX_WEIGHT
    assert 1 <= halfway["us"] < MAX_WEIGHT


def test_nonsense_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="floor"):
        carbon_weights({"eu": 1.0}, floor=-1)
    with pytest.raises(ValueError, match="replicas"):
        divide(-1, {"eu": 1})

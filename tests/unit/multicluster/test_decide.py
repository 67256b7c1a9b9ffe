"""Re-weighing follows the grid without thrashing: margin, dwell, moved share, frozen data."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from multicluster.decide import ClusterCarbon, Rules, Verdict, decide, held_weights
from multicluster.weights import divide, moved
from tests.unit.multicluster.builders import NOW

ELIGIBLE = ("eu", "us", "asia")


def carbon(eu: float = 100.0, us: float = 400.0, asia: float = 600.0, *, live: bool = True):
    return {
        "eu": ClusterCarbon(eu, live),
        "us": ClusterCarbon(us, True),
        "asia": ClusterCarbon(asia, True),
    }


def run(**overrides):  # type: ignore[no-untyped-def]
    arguments = {
        "eligible": ELIGIBLE,
        "carbon": carbon(),
        "current": {},
        "workloads": [12],
        "last_change": None,
        "now": NOW,
        "rules": Rules(max_moved_share=1.0),
    }
    arguments.update(overrides)
    return decide(**arguments)


def test_a_new_policy_is_weighed_greenest_first_and_emits_less_than_equal_weights() -> None:
    decision = run()

    assert decision.verdict is Verdict.WEIGH
    assert decision.weights == {"asia": 1, "eu": 100, "us": 1}
    assert decision.replicas_after["eu"] > decision.replicas_before["eu"]
    assert decision.intensity_after is not None
    assert decision.intensity_equal is not None
    assert decision.intensity_after < 0.5 * decision.intensity_equal


def test_weights_already_at_the_target_are_left_alone() -> None:
    target = run().weights

    assert run(current=target).verdict is Verdict.UNCHANGED


def test_a_gain_within_the_margin_is_not_worth_a_re_division() -> None:
    target = run().weights
    # us a little greener: its weight rises from 1 to 4, but not one replica would move.
    decision = run(current=target, carbon=carbon(us=230.0))

    assert decision.verdict is Verdict.MARGIN
    assert decision.weights == target


def test_a_policy_is_re_weighed_at_most_once_per_dwell() -> None:
    first = run()
    swapped = carbon(eu=600.0, asia=100.0)

    held = run(current=first.weights, carbon=swapped, last_change=NOW - timedelta(minutes=30))
    later = run(current=first.weights, carbon=swapped, last_change=NOW - timedelta(hours=1))

    assert held.verdict is Verdict.DWELL
    assert later.verdict is Verdict.WEIGH
    assert later.weights["asia"] == 100


def test_data_that_is_not_live_freezes_the_weights_held() -> None:
    held = {"eu": 100, "us": 3, "asia": 1}

    decision = run(current=held, carbon=carbon(eu=900.0, live=False))

    assert decision.verdict is Verdict.FROZEN
    assert decision.weights == held
    assert "eu" in decision.reason


def test_no_data_and_no_clusters_change_nothing() -> None:
    assert run(carbon={}).verdict is Verdict.NO_DATA
    assert run(eligible=()).verdict is Verdict.NO_CLUSTERS


def test_at_most_the_allowed_share_of_replicas_moves_per_change() -> None:
    decision = run(rules=Rules(max_moved_share=0.25), workloads=[40])

    assert decision.verdict is Verdict.WEIGH
    assert moved(decision.replicas_before, decision.replicas_after) <= 10
    assert decision.weights != run(workloads=[40]).weights


def test_clusters_without_data_keep_the_floor_and_are_never_preferred() -> None:
    decision = run(
        eligible=("eu", "us", "lab"),
        carbon={"eu": ClusterCarbon(100, True), "us": ClusterCarbon(300, True)},
    )

    assert decision.weights["lab"] == 1


def test_held_weights_default_to_equal_when_the_list_names_no_eligible_cluster() -> None:
    assert held_weights({"gone": 5}, ["eu", "us"]) == {"eu": 1, "us": 1}


values = st.floats(min_value=10, max_value=1000, allow_nan=False)


@given(
    st.dictionaries(st.sampled_from(["a", "b", "c", "d", "e"]), values, min_size=1),
    st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f"]), min_size=1, unique=True),
    st.dictionaries(st.sampled_from(["a", "b", "x"]), st.integers(0, 100)),
    st.integers(1, 50),
    st.integers(0, 5),
    st.floats(min_value=0.05, max_value=1.0),
)
def test_written_weights_never_widen_and_keep_every_eligible_cluster_at_the_floor(
    expected: dict[str, float],
    eligible: list[str],
    current: dict[str, int],
    replicas: int,
    floor: int,
    share: float,
) -> None:
    decision = run(
        eligible=tuple(eligible),
        carbon={name: ClusterCarbon(v, True) for name, v in expected.items()},
        current=current,
        workloads=[replicas],
        rules=Rules(floor=floor, max_moved_share=share),
    )

    if decision.writes:
        assert set(decision.weights) <= set(eligible)
        if floor:
            assert set(decision.weights) == set(eligible)
            assert min(decision.weights.values()) >= floor
        assert moved(decision.replicas_before, decision.replicas_after) <= max(1, share * replicas)
        assert decision.replicas_after == divide(replicas, decision.weights) | {
            name: 0 for name in decision.replicas_after if name not in decision.weights
        }

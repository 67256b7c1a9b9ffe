"""The real-scheduler read-pool replay's pure accounting: charging, settling, blame."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.pool_ledger import (
    AFFINITY_MISMATCH,
    Ledger,
    PodState,
    blamed_on_webhook,
    served_nodes,
    settled,
)
from bench.readpool import lives
from bench.replay import Fleet, Node, Region
from bench.traces import Traces
from shared.core.models import Cloud

START = datetime(2024, 1, 15, tzinfo=UTC)
FLEET = Fleet(
    (Region("green", Cloud.AWS, "G", 1.5, 10.0), Region("dirty", Cloud.AWS, "D", 1.0, 10.0)),
    (Node("green-1", "green", 8000, 0), Node("dirty-1", "dirty", 8000, 0)),
)
TRACES = Traces(START, 2, {"G": (100.0, 200.0), "D": (500.0, 500.0)}, {"G": "t", "D": "t"})
NODE_AFFINITY_MESSAGE = (
    "0/42 nodes are available: 2 node(s) didn't match pod topology spread constraints, "
    f"40 node(s) {AFFINITY_MISMATCH}. preemption: 0/42 nodes are available."
)


def bound(uid: str, node: str) -> PodState:
    return PodState(uid, node, unschedulable=False)


def pending(uid: str, message: str = NODE_AFFINITY_MESSAGE) -> PodState:
    return PodState(uid, None, unschedulable=True, message=message)


def test_each_served_replica_hour_is_charged_its_regions_intensity_that_hour() -> None:
    ledger = Ledger(FLEET, TRACES)
    ledger.charge(0, 2, ["green-1", "dirty-1"])
    ledger.charge(1, 2, ["green-1"])

    outcome = ledger.outcome("default", pods=2, never_served=0)

    # 10 W / 1000 × PUE × intensity: green 1.5 × (100 + 200), dirty 1.0 × 500
    assert outcome.grams == pytest.approx(0.01 * (1.5 * 300 + 500))
    assert outcome.served_hours == 3
    assert outcome.unserved_hours == 1
    assert dict(outcome.region_hours) == {"green": 2, "dirty": 1}


def test_an_ordered_ready_pool_is_settled_when_bound_in_order_up_to_an_unschedulable_pod() -> None:
    assert settled({0: bound("a", "n1"), 1: pending("b")}, replicas=4)
    assert settled({0: bound("a", "n1"), 1: bound("b", "n2")}, replicas=2)


def test_a_pool_waiting_for_a_pod_to_be_created_bound_or_scaled_away_is_not_settled() -> None:
    assert not settled({0: bound("a", "n1")}, replicas=2)
    assert not settled({0: bound("a", "n1"), 1: PodState("b", None, False)}, replicas=2)
    assert not settled({0: bound("a", "n1"), 1: bound("b", "n2")}, replicas=1)


def test_only_bound_pods_among_the_wanted_ordinals_serve_the_pool() -> None:
    pods = {0: bound("a", "n1"), 1: pending("b"), 2: bound("c", "n3")}
    assert served_nodes(pods, replicas=2) == ["n1"]


def test_a_pod_pending_on_node_affinity_that_would_fit_without_it_is_the_webhooks() -> None:
    assert blamed_on_webhook(pending("p"), required_regions=True, fits_without=True)


@pytest.mark.parametrize(
    ("pod", "required_regions", "fits_without"),
    [
        (pending("p"), False, True),  # no required region term: nothing of the webhook's
        (pending("p"), True, False),  # no node would take it anyway: the spread's or room's
        (pending("p", "0/42 nodes are available: 42 Insufficient cpu."), True, True),
        (bound("p", "n1"), True, True),
    ],
)
def test_other_pending_pods_are_not_blamed_on_the_webhook(
    pod: PodState, required_regions: bool, fits_without: bool
) -> None:
    assert not blamed_on_webhook(pod, required_regions=required_regions, fits_without=fits_without)


def test_model_and_real_replay_draw_the_same_lives_in_creation_order() -> None:
    first, second, other_pool = lives(6, seed=0), lives(6, seed=0), lives(3, seed=0)
    drawn = [first() for _ in range(50)]
    assert drawn == [second() for _ in range(50)]
    assert all(3 <= life <= 72 for life in drawn)
    assert drawn != [other_pool() for _ in range(50)]

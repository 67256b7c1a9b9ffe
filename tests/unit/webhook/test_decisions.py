"""What the admission path remembers: eligibility per node inventory version, rankings per carbon
snapshot, both bounded, and always the same answer as computing from scratch."""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, timedelta
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo, Taint
from shared.core.clock import fixed
from shared.core.models import Forecast, ForecastPoint, Freshness, Provenance
from shared.scoring.ranking import rank
from tests.unit.webhook.builders import (
    NOW,
    THREE_REGIONS,
    cluster,
    node,
    read_replica_pod,
    review,
    snapshot,
)
from webhook.admission import Admission, Placement, admit
from webhook.decisions import DecisionCache, Lru, choose, constraints_key, restrict
from webhook.eligibility import TOPOLOGY_REGION, eligible_regions
from webhook.errors import MutationError
from webhook.review import review_from_dict
from webhook.settings import Policy

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def forecast_snapshot() -> CarbonSnapshot:
    """Regions whose forecasts reorder them over the horizon, one stale, one without data."""
    base = snapshot(
        {
            "us-west-2": 118.0,
            "europe-west1": 180.0,
            "ap-south-1": 650.0,
            "eu-north-1": (40.0, Freshness.STALE),
            "sa-east-1": None,
        }
    )
    provenance = Provenance(provider="electricitymaps", fetched_at=NOW, freshness=Freshness.LIVE)
    europe = base.regions["europe-west1"]
    forecast = Forecast(
        zone="Z",
        generated_at=NOW,
        points=tuple(
            ForecastPoint(starts_at=NOW + timedelta(hours=hour), g_per_kwh=60.0)
            for hour in range(12, 36)
        ),
        provenance=provenance,
    )
    regions = dict(base.regions)
    regions["europe-west1"] = dataclasses.replace(europe, forecast=forecast)
    return CarbonSnapshot(taken_at=NOW, regions=regions)


def choice_for(
    cache: DecisionCache,
    carbon: CarbonSnapshot,
    nodes: dict[str, NodeInfo],
    *,
    pod: dict[str, Any] | None = None,
    now: datetime = NOW,
) -> Any:
    eligibility, key = cache.eligibility(pod or read_replica_pod(), nodes)
    return cache.choice(
        carbon, eligibility, key, now=now, horizon_hours=24, low_carbon_fraction=0.1
    )


def decide(pod: dict[str, Any], cache: DecisionCache | None, **placement: Any) -> Admission:
    carbon, nodes = forecast_snapshot(), cluster()
    return admit(
        review_from_dict(review(pod, uid="fixed-uid")),
        carbon=lambda: carbon,
        nodes=lambda: nodes,
        placement=Placement(**placement),
        clock=fixed(NOW),
        cache=cache,
    )


@given(
    st.sets(
        st.sampled_from(
            ["us-west-2", "europe-west1", "ap-south-1", "eu-north-1", "sa-east-1", "nowhere-1"]
        )
    )
)
def test_the_full_ranking_restricted_to_a_subset_is_the_ranking_of_that_subset(
    regions: set[str],
) -> None:
    carbon = forecast_snapshot()
    full = rank(carbon, carbon.regions, now=NOW)

    assert restrict(full, regions) == rank(carbon, regions, now=NOW)


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param(read_replica_pod(), id="plain"),
        pytest.param(
            read_replica_pod(spec__nodeSelector={TOPOLOGY_REGION: "europe-west1"}), id="pinned"
        ),
        pytest.param(
            read_replica_pod(metadata__annotations={"stellar.org/carbon-policy": "require"}),
            id="require",
        ),
        pytest.param(
            read_replica_pod(spec__affinity={"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": 1}}}),
            id="malformed",
        ),
    ],
)
def test_a_cached_decision_is_the_decision_computed_from_scratch(pod: dict[str, Any]) -> None:
    cache = DecisionCache()
    warm = decide(pod, cache)

    again = decide(pod, cache)

    assert again == warm == decide(pod, None)
    assert again.ranking == warm.ranking


SHAPES = {
    "no spec": {"apiVersion": "v1", "kind": "Pod", "metadata": read_replica_pod()["metadata"]},
    "no affinity": read_replica_pod(),
    "null affinity": read_replica_pod(spec__affinity=None),
    "pod anti-affinity only": read_replica_pod(
        spec__affinity={"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    ),
    "node affinity": read_replica_pod(
        spec__affinity={"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}}
    ),
    "annotated": read_replica_pod(metadata__annotations={"team": "core"}),
    "null annotations": read_replica_pod(metadata__annotations=None),
    "require": read_replica_pod(metadata__annotations={"stellar.org/carbon-policy": "require"}),
}


@pytest.mark.parametrize("first", list(SHAPES))
def test_pods_of_every_shape_after_one_another_get_the_patch_of_a_cold_decision(
    first: str,
) -> None:
    # One cache sees ``first`` and then every other shape: a patch remembered for one shape
    # must never be handed to a pod of another.
    carbon, nodes, cache = forecast_snapshot(), cluster(), DecisionCache()
    for name in [first, *(shape for shape in SHAPES if shape != first)]:
        pod = SHAPES[name]

        warm = admit(
            review_from_dict(review(pod, uid="fixed-uid")),
            carbon=lambda: carbon,
            nodes=lambda: nodes,
            placement=Placement(),
            clock=fixed(NOW),
            cache=cache,
        )

        assert warm == decide(pod, None), name
        assert warm.patch, name
        jsonpatch.apply_patch(pod, list(warm.patch))  # raises if it does not apply


def test_the_same_snapshot_reuses_one_ranking() -> None:
    cache, carbon, nodes = DecisionCache(), forecast_snapshot(), cluster()

    first = choice_for(cache, carbon, nodes)
    second = choice_for(cache, carbon, nodes, now=NOW + timedelta(seconds=30))

    assert second is first


def test_a_new_snapshot_gets_a_new_ranking() -> None:
    cache, nodes = DecisionCache(), cluster()
    before = choice_for(cache, snapshot(THREE_REGIONS), nodes)

    after = choice_for(cache, snapshot({**THREE_REGIONS, "ap-south-1": 20.0}), nodes)

    assert before.ranking.regions[0] == "us-west-2"
    assert after.ranking.regions[0] == "ap-south-1"


def test_an_equal_but_new_snapshot_is_ranked_again() -> None:
    cache, nodes = DecisionCache(), cluster()
    before = choice_for(cache, snapshot(THREE_REGIONS), nodes)

    after = choice_for(cache, snapshot(THREE_REGIONS), nodes)

    assert after is not before
    assert after == before


@pytest.mark.parametrize(
    "moved",
    [
        pytest.param(timedelta(seconds=60), id="a-refresh-interval-later"),
        pytest.param(timedelta(hours=5), id="hours-later"),
        pytest.param(timedelta(seconds=-1), id="clock-went-back"),
    ],
)
def test_a_ranking_is_not_reused_once_the_clock_has_moved_on(moved: timedelta) -> None:
    cache, carbon, nodes = DecisionCache(), forecast_snapshot(), cluster()
    before = choice_for(cache, carbon, nodes)

    after = choice_for(cache, carbon, nodes, now=NOW + moved)

    assert after is not before
    assert after.ranking == restrict(
        rank(carbon, carbon.regions, now=NOW + moved), after.ranking.regions
    )
    assert after.ranking.computed_at == NOW + moved


def test_the_forecast_moves_the_ranking_when_the_clock_moves() -> None:
    cache, carbon, nodes = DecisionCache(), forecast_snapshot(), cluster()

    now_ranking = choice_for(cache, carbon, nodes).ranking
    later_ranking = choice_for(cache, carbon, nodes, now=NOW + timedelta(hours=5)).ranking

    assert now_ranking.regions.index("europe-west1") > later_ranking.regions.index("europe-west1")


def test_the_same_nodes_mapping_reuses_one_eligibility() -> None:
    cache, nodes = DecisionCache(), cluster()

    first, _ = cache.eligibility(read_replica_pod(), nodes)
    second, _ = cache.eligibility(read_replica_pod(), nodes)

    assert second is first


def test_a_new_nodes_mapping_gets_a_new_eligibility() -> None:
    cache, nodes = DecisionCache(), cluster()
    before, _ = cache.eligibility(read_replica_pod(), nodes)
    cordoned = {**nodes, "aps1-a": dataclasses.replace(nodes["aps1-a"], unschedulable=True)}

    after, _ = cache.eligibility(read_replica_pod(), cordoned)

    assert "ap-south-1" in before.regions
    assert "ap-south-1" not in after.regions
    assert dict(after.regions) == eligible_regions(read_replica_pod(), cordoned.values()).regions


def test_pods_with_other_constraints_get_their_own_eligibility() -> None:
    cache, nodes = DecisionCache(), cluster()
    tainted = {
        **nodes,
        "aps1-a": dataclasses.replace(
            nodes["aps1-a"], taints=(Taint("stellar.org/archive", "NoSchedule"),)
        ),
    }
    tolerating = read_replica_pod(
        spec__tolerations=[{"key": "stellar.org/archive", "operator": "Exists"}]
    )

    plain, _ = cache.eligibility(read_replica_pod(), tainted)
    tolerant, _ = cache.eligibility(tolerating, tainted)

    assert "ap-south-1" not in plain.regions
    assert "ap-south-1" in tolerant.regions


def test_constraint_keys_ignore_member_order_and_everything_but_the_constraints() -> None:
    pod = read_replica_pod(spec__nodeSelector={"a": "1", "b": "2"})
    reordered = read_replica_pod(
        spec__nodeSelector={"b": "2", "a": "1"}, metadata__name="another-name"
    )
    other = read_replica_pod(spec__nodeSelector={"a": "1", "b": "3"})

    assert constraints_key(pod) == constraints_key(reordered)
    assert constraints_key(pod) != constraints_key(other)


def test_constraints_that_are_not_plain_json_are_computed_but_not_remembered() -> None:
    cache, nodes = DecisionCache(), cluster()
    pod = read_replica_pod(spec__nodeSelector={TOPOLOGY_REGION: "us-west-2", 1: "one"})

    eligibility, _ = cache.eligibility(pod, nodes)

    assert constraints_key(pod) is None
    assert dict(eligibility.regions) == {}
    assert cache.sizes == (0, 0)


def test_malformed_constraints_raise_and_are_not_remembered() -> None:
    cache = DecisionCache()
    pod = read_replica_pod(spec__tolerations={"key": "x"})

    for _ in range(2):
        with pytest.raises(MutationError, match="tolerations is dict"):
            cache.eligibility(pod, cluster())
    assert cache.sizes == (0, 0)


def test_a_flood_of_distinct_pods_keeps_only_the_most_recent_entries() -> None:
    cache, carbon, nodes = DecisionCache(max_entries=2), forecast_snapshot(), cluster()
    pods = [
        read_replica_pod(
            spec__nodeSelector={TOPOLOGY_REGION: region},
            spec__tolerations=[{"key": f"flood-{index}", "operator": "Exists"}],
        )
        for index, region in enumerate(["us-west-2", "europe-west1", "ap-south-1"] * 20)
    ]

    for pod in pods:
        choice_for(cache, carbon, nodes, pod=pod)

    assert cache.sizes == (2, 2)


def test_the_least_recently_used_entry_goes_first() -> None:
    lru: Lru[str, int] = Lru(2)
    lru.put("a", 1)
    lru.put("b", 2)
    assert lru.get("a") == 1

    lru.put("c", 3)

    assert (lru.get("a"), lru.get("b"), lru.get("c")) == (1, None, 3)
    assert len(lru) == 2


def test_node_counts_are_part_of_the_ranking_key() -> None:
    cache, carbon = DecisionCache(), forecast_snapshot()
    small = cluster()
    large = {**small, "usw2-c": node("usw2-c", "us-west-2")}

    choice_for(cache, carbon, small)
    choice_for(cache, carbon, large)

    assert cache.sizes == (1, 2)


@pytest.mark.parametrize("size", [0, -1])
def test_a_cache_must_hold_at_least_one_entry(size: int) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        DecisionCache(max_entries=size)
    with pytest.raises(ValueError, match="at least 1"):
        Lru[str, int](size)


def test_a_placed_pod_is_not_logged_above_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)

    admission = decide(read_replica_pod(), DecisionCache(), default_policy=Policy.REQUIRE)

    assert admission.outcome == "mutated"
    assert caplog.records == []


def test_the_decision_time_is_stamped_to_the_second() -> None:
    cache = DecisionCache()

    stamps = [
        cache.decided_at(NOW + timedelta(seconds=offset)) for offset in (0, 0.4, 0.999, 1, -0.5)
    ]

    assert stamps == [
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:00:00Z",
        "2026-11-26T12:00:01Z",
        "2026-11-26T11:59:59Z",
    ]


def test_choose_sizes_the_low_carbon_set_from_the_pool_when_told_what_holds_it() -> None:
    carbon = forecast_snapshot()
    ranking = rank(carbon, carbon.regions, now=NOW)
    regions = ranking.regions
    eligible = dict.fromkeys(regions, 3)
    needs_two: set[str] = set(regions[:2])
    sized = choose(ranking, eligible, low_carbon_fraction=0.1, holds=needs_two.issubset)
    assert sized.low_carbon == regions[:2]
    nothing = choose(ranking, eligible, low_carbon_fraction=0.1, holds=lambda _: False)
    assert nothing.low_carbon == ()


@pytest.mark.parametrize("when_unsatisfiable", ["DoNotSchedule", "ScheduleAnyway"])
def test_pool_rules_read_from_one_pod_serve_another_only_with_its_own_labels(
    when_unsatisfiable: str,
) -> None:
    # The pods of a StatefulSet share their rules and differ in their labels: the rules are
    # read once, the labels of each pod every time.
    spread = {
        "maxSkew": 1,
        "topologyKey": TOPOLOGY_REGION,
        "whenUnsatisfiable": when_unsatisfiable,
        "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "mainnet-core"}},
    }
    first = read_replica_pod(spec__topologySpreadConstraints=[spread])
    other = read_replica_pod(spec__topologySpreadConstraints=[spread])
    other["metadata"]["labels"] = {"app.kubernetes.io/instance": "testnet-core"}
    junk = read_replica_pod(spec__topologySpreadConstraints=[spread])
    junk["metadata"]["labels"] = ["not", "an", "object"]
    cache = DecisionCache()

    rules = [cache.pool_rules(pod) for pod in (first, other)]

    assert rules == [DecisionCache().pool_rules(pod) for pod in (first, other)]
    if when_unsatisfiable == "DoNotSchedule":
        assert [r.labels["app.kubernetes.io/instance"] for r in rules if r] == [
            "mainnet-core",
            "testnet-core",
        ]
    else:
        assert rules == [None, None]
    with pytest.raises(MutationError):
        cache.pool_rules(junk)

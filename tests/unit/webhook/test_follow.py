"""Read replicas that follow the grid: terms on the carbon tier label instead of region names."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from typing import Any

from shared.cluster.inventory import NodeInfo
from shared.cluster.workloads import REQUIRED_REGIONS_ANNOTATION, Workloads
from shared.core.clock import fixed
from shared.scoring.tiers import TIER_LABEL, TierPolicy
from tests.unit.webhook.builders import (
    NOW,
    THREE_REGIONS,
    apply_and_validate,
    node,
    read_replica_pod,
    review,
    snapshot,
)
from tests.unit.webhook.test_pools import ZONE, operator_pod, read_pod_bound, workloads
from webhook.admission import Admission, Placement, admit
from webhook.decisions import DecisionCache
from webhook.eligibility import TOPOLOGY_REGION
from webhook.follow import (
    FOLLOW_ANNOTATION,
    FOLLOWING_LABEL,
    pool_tiers,
    share_tiers,
    tier_terms,
)
from webhook.review import review_from_dict

PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
CONSTRAINT = "stellar.org/carbon-constraint"
TIERS = {"us-west-2": 0, "europe-west1": 1, "ap-south-1": 5}


def tiered_cluster(tiers: Mapping[str, int] | None = TIERS) -> dict[str, NodeInfo]:
    """Two nodes in us-west-2, one each in europe-west1 and ap-south-1, tiered by region."""
    nodes = []
    for name, region in (
        ("usw2-a", "us-west-2"),
        ("usw2-b", "us-west-2"),
        ("euw1-a", "europe-west1"),
        ("aps1-a", "ap-south-1"),
    ):
        labels = {TIER_LABEL: str(tiers[region])} if tiers and region in tiers else {}
        nodes.append(node(name, region, labels=labels))
    return {n.name: n for n in nodes}


def zoned_tiered_cluster(tiers: Mapping[str, int] = TIERS) -> dict[str, NodeInfo]:
    """test_pools' zoned cluster (us-west-2 one node per zone, the others two), tiered."""
    nodes = []
    for region, per_zone in (("us-west-2", 1), ("europe-west1", 2), ("ap-south-1", 2)):
        for zone in "abc":
            for index in range(per_zone):
                labels = {ZONE: f"{region}{zone}", TIER_LABEL: str(tiers[region])}
                nodes.append(node(f"{region}{zone}-{index}", region, labels=labels))
    return {n.name: n for n in nodes}


def decide(
    pod: Mapping[str, Any],
    nodes: Mapping[str, NodeInfo],
    *,
    state: Workloads | None = None,
    placement: Placement | None = None,
    cache: DecisionCache | None = None,
) -> Admission:
    data = snapshot(THREE_REGIONS)
    return admit(
        review_from_dict(review(pod)),
        carbon=lambda: data,
        nodes=lambda: nodes,
        workloads=(lambda: state) if state is not None else (lambda: workloads(synced=True)),
        placement=placement or Placement(),
        clock=fixed(NOW),
        cache=cache,
    )


def preferred_keys(patched: Mapping[str, Any]) -> set[str]:
    return {
        expression["key"]
        for term in patched["spec"]["affinity"]["nodeAffinity"].get(PREFERRED, [])
        for expression in term["preference"]["matchExpressions"]
    }


def tier_weights(patched: Mapping[str, Any]) -> dict[str, int]:
    weights = {}
    for term in patched["spec"]["affinity"]["nodeAffinity"][PREFERRED]:
        (expression,) = term["preference"]["matchExpressions"]
        assert expression["key"] == TIER_LABEL
        for value in expression["values"]:
            weights[value] = term["weight"]
    return weights


def required_expressions(patched: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    required = patched["spec"]["affinity"]["nodeAffinity"][REQUIRED]
    return [term.get("matchExpressions", []) for term in required["nodeSelectorTerms"]]


def test_a_read_replica_in_a_cluster_with_tier_labels_gets_terms_on_tiers_not_regions() -> None:
    pod = read_replica_pod()

    admission = decide(pod, tiered_cluster())
    patched = apply_and_validate(pod, list(admission.patch))

    assert admission.outcome == "mutated"
    assert preferred_keys(patched) == {TIER_LABEL}
    # The dirtiest tier present (5) gets no term, like the dirtiest region.
    assert tier_weights(patched) == {"0": 100, "1": TierPolicy().weight(1)}
    annotations = patched["metadata"]["annotations"]
    assert annotations["stellar.org/carbon-ranking"].startswith("us-west-2=118")
    assert "stellar.org/carbon-decided-at" in annotations
    assert "stellar.org/carbon-source" in annotations
    assert REQUIRED not in patched["spec"]["affinity"]["nodeAffinity"]
    # What the descheduler profile selects: only pods that follow the tiers are ever evicted.
    assert patched["metadata"]["labels"][FOLLOWING_LABEL] == "true"


def test_without_tier_labels_it_gets_region_terms_as_before() -> None:
    pod = read_replica_pod()

    admission = decide(pod, tiered_cluster(tiers=None))
    patched = apply_and_validate(pod, list(admission.patch))

    assert preferred_keys(patched) == {TOPOLOGY_REGION}


def test_tier_labels_only_on_nodes_the_pod_cannot_use_keep_region_terms() -> None:
    nodes = tiered_cluster(tiers={"ap-south-1": 0})
    pod = read_replica_pod()
    pod["spec"]["affinity"] = {
        "nodeAffinity": {
            REQUIRED: {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": TOPOLOGY_REGION, "operator": "NotIn", "values": ["ap-south-1"]}
                        ]
                    }
                ]
            }
        }
    }

    patched = apply_and_validate(pod, list(decide(pod, nodes).patch))

    assert preferred_keys(patched) == {TOPOLOGY_REGION}


def test_carbon_follow_false_keeps_region_terms_and_stays_out_of_the_descheduler_s_reach() -> None:
    pod = read_replica_pod(metadata__annotations={FOLLOW_ANNOTATION: "false"})

    patched = apply_and_validate(pod, list(decide(pod, tiered_cluster()).patch))

    assert preferred_keys(patched) == {TOPOLOGY_REGION}
    assert FOLLOWING_LABEL not in patched["metadata"]["labels"]


def test_a_pod_opted_in_by_annotation_without_the_read_replica_label_keeps_region_terms() -> None:
    pod = read_replica_pod()
    del pod["metadata"]["labels"]["stellar.org/role"]
    pod["metadata"]["annotations"] = {"stellar.org/carbon-aware": "enabled"}

    patched = apply_and_validate(pod, list(decide(pod, tiered_cluster()).patch))

    assert preferred_keys(patched) == {TOPOLOGY_REGION}


def test_a_second_pass_yields_no_patch() -> None:
    pod = read_replica_pod()
    patched = apply_and_validate(pod, list(decide(pod, tiered_cluster()).patch))

    again = decide(patched, tiered_cluster())

    assert again.patch == ()
    assert again.outcome == "skipped:already-decided"


def test_a_copy_with_the_tier_terms_but_no_annotations_yields_no_patch() -> None:
    pod = read_replica_pod()
    patched = apply_and_validate(pod, list(decide(pod, tiered_cluster()).patch))
    del patched["metadata"]["annotations"]

    assert decide(patched, tiered_cluster()).patch == ()


def test_an_operator_pool_pod_gets_a_required_tier_prefix_that_holds_its_statefulset() -> None:
    pod = operator_pod()
    nodes = zoned_tiered_cluster()

    three = decide(pod, nodes, state=workloads(replicas=3))
    five = decide(pod, nodes, state=workloads(replicas=5))

    # us-west-2 (tier 0) has one node per zone: three pods fit, five need tier 1 as well.
    for admission, values, regions in (
        (three, ["0"], "us-west-2"),
        (five, ["0", "1"], "europe-west1,us-west-2"),
    ):
        patched = apply_and_validate(pod, list(admission.patch))
        assert required_expressions(patched) == [
            [{"key": TIER_LABEL, "operator": "In", "values": values}]
        ]
        assert preferred_keys(patched) == {TIER_LABEL}
        annotations = patched["metadata"]["annotations"]
        assert annotations[REQUIRED_REGIONS_ANNOTATION] == regions
        assert admission.warnings == ()


def test_pool_pods_already_bound_in_tier_0_leave_room_for_fewer() -> None:
    bound = (read_pod_bound(0, "us-west-2a-0"), read_pod_bound(1, "us-west-2b-0"))
    pod = operator_pod(2)

    admission = decide(pod, zoned_tiered_cluster(), state=workloads(replicas=3, bound=bound))
    patched = apply_and_validate(pod, list(admission.patch))

    assert required_expressions(patched) == [
        [{"key": TIER_LABEL, "operator": "In", "values": ["0"]}]
    ]


def test_a_pool_no_tier_prefix_holds_gets_preferred_tier_terms_and_the_constraint() -> None:
    pod = operator_pod()

    admission = decide(pod, zoned_tiered_cluster(), state=workloads(replicas=40))
    patched = apply_and_validate(pod, list(admission.patch))

    assert REQUIRED not in patched["spec"]["affinity"]["nodeAffinity"]
    assert preferred_keys(patched) == {TIER_LABEL}
    assert patched["metadata"]["annotations"][CONSTRAINT]
    assert REQUIRED_REGIONS_ANNOTATION not in patched["metadata"]["annotations"]
    (warning,) = admission.warnings
    assert warning.startswith("carbon-policy require: no tier set holds 40 more pool pods")


def test_hosts_without_a_tier_label_are_in_no_required_set() -> None:
    nodes = zoned_tiered_cluster()
    # Only one us-west-2 node keeps its tier: the pool must reach into tier 1.
    for name in ("us-west-2b-0", "us-west-2c-0"):
        labels = {k: v for k, v in nodes[name].labels.items() if k != TIER_LABEL}
        nodes[name] = dataclasses.replace(nodes[name], labels=labels)
    pod = operator_pod()

    patched = apply_and_validate(pod, list(decide(pod, nodes, state=workloads(3)).patch))

    assert required_expressions(patched) == [
        [{"key": TIER_LABEL, "operator": "In", "values": ["0", "1"]}]
    ]


def test_tier_terms_compose_with_the_users_required_terms() -> None:
    user_terms = [
        {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["ssd"]}]},
        {"matchExpressions": [{"key": "disktype", "operator": "In", "values": ["nvme"]}]},
        {"matchExpressions": []},  # matches nothing: must keep matching nothing
    ]
    pod = operator_pod()
    pod["spec"]["affinity"]["nodeAffinity"] = {REQUIRED: {"nodeSelectorTerms": user_terms}}
    nodes = {
        name: dataclasses.replace(n, labels={**n.labels, "disktype": "ssd"})
        for name, n in zoned_tiered_cluster().items()
    }

    admission = decide(pod, nodes, state=workloads(replicas=3))
    patched = apply_and_validate(pod, list(admission.patch))

    tier = {"key": TIER_LABEL, "operator": "In", "values": ["0"]}
    assert required_expressions(patched) == [
        [user_terms[0]["matchExpressions"][0], tier],
        [user_terms[1]["matchExpressions"][0], tier],
        [],
    ]
    assert preferred_keys(patched) == {TIER_LABEL}


def test_require_on_a_plain_read_replica_restricts_to_tiers_with_a_third_of_the_nodes() -> None:
    pod = read_replica_pod(metadata__annotations={"stellar.org/carbon-policy": "require"})

    patched = apply_and_validate(pod, list(decide(pod, tiered_cluster()).patch))

    assert required_expressions(patched) == [
        [{"key": TIER_LABEL, "operator": "In", "values": ["0"]}]
    ]
    assert patched["metadata"]["annotations"][REQUIRED_REGIONS_ANNOTATION] == "us-west-2"


def test_a_read_replica_keeps_its_place_in_a_cluster_of_one_tier() -> None:
    pod = read_replica_pod()
    nodes = tiered_cluster(tiers=dict.fromkeys(TIERS, 0))

    patched = apply_and_validate(pod, list(decide(pod, nodes).patch))

    # Nothing to prefer between tiers, and no region term to anchor the pod either.
    assert PREFERRED not in patched["spec"].get("affinity", {}).get("nodeAffinity", {})
    assert "stellar.org/carbon-ranking" in patched["metadata"]["annotations"]


def test_the_decision_cache_gives_what_a_cold_decision_gives() -> None:
    pod = read_replica_pod()
    cache = DecisionCache()
    nodes = tiered_cluster()

    warm = [decide(pod, nodes, cache=cache).patch for _ in range(2)]

    assert warm[0] == warm[1] == decide(pod, nodes).patch


def test_tier_terms_weigh_each_tier_by_the_tier_policy() -> None:
    terms = tier_terms([3, 0, 7, 0])

    assert [(t.weight, t.regions) for t in terms] == [(100, ("0",)), (26, ("3",))]
    assert tier_terms([2]) == ()


def test_the_tier_prefix_is_the_smallest_that_holds() -> None:
    asked: list[frozenset[str]] = []

    def holds(tiers: Collection[str]) -> bool:
        asked.append(frozenset(tiers))
        return "2" in asked[-1]

    assert pool_tiers([0, 4, 2], holds) == 2
    assert asked == [frozenset({"0"}), frozenset({"0", "1", "2"})]
    assert pool_tiers([0], lambda _: False) is None
    assert share_tiers({0: 1, 1: 1, 5: 4}) == 1
    assert share_tiers({0: 2, 1: 1, 5: 1}) == 0

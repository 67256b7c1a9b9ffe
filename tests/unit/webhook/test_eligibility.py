"""Eligible regions: nodeSelector, required affinity (operators, OR-ed terms), taints, readiness."""

from __future__ import annotations

from typing import Any

import pytest

from shared.cluster.inventory import NodeInfo, Taint
from tests.unit.webhook.builders import node, read_replica_pod
from webhook.eligibility import (
    LEGACY_REGION,
    TOPOLOGY_REGION,
    eligible_regions,
    region_key,
    term_matches,
    tolerated,
)
from webhook.errors import MutationError

REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"

NODES = [
    node("usw2-a", "us-west-2", labels={"disk": "ssd", "cores": "16"}),
    node("usw2-b", "us-west-2", labels={"disk": "hdd", "cores": "4"}),
    node("euw1-a", "europe-west1", labels={"disk": "ssd", "cores": "8"}),
    node(
        "aps1-a",
        "ap-south-1",
        labels={"disk": "ssd", "cores": "32"},
        taints=(Taint("stellar.org/dedicated", "NoSchedule", "archive"),),
    ),
]


def required(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": list(terms)}}}


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    e: dict[str, Any] = {"key": key, "operator": operator}
    if values:
        e["values"] = list(values)
    return e


def regions_for(pod: dict[str, Any], nodes: list[NodeInfo] = NODES) -> dict[str, int]:
    return dict(eligible_regions(pod, nodes).regions)


def test_untainted_ready_nodes_count_per_region() -> None:
    eligibility = eligible_regions(read_replica_pod(), NODES)

    assert dict(eligibility.regions) == {"us-west-2": 2, "europe-west1": 1}
    assert eligibility.region_key == TOPOLOGY_REGION


def test_node_selector_must_match_every_label() -> None:
    pod = read_replica_pod(spec__nodeSelector={"disk": "ssd"})

    assert regions_for(pod) == {"us-west-2": 1, "europe-west1": 1}


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        (expr("disk", "In", "hdd"), {"us-west-2": 1}),
        (expr("disk", "NotIn", "ssd"), {"us-west-2": 1}),
        (expr("disk", "Exists"), {"us-west-2": 2, "europe-west1": 1}),
        (expr("gpu", "DoesNotExist"), {"us-west-2": 2, "europe-west1": 1}),
        (expr("gpu", "Exists"), {}),
        (expr("cores", "Gt", "6"), {"us-west-2": 1, "europe-west1": 1}),
        (expr("cores", "Lt", "6"), {"us-west-2": 1}),
        (expr("cores", "Gt", "many"), {}),
        (expr("disk", "Like", "ssd"), {}),
    ],
    ids=["In", "NotIn", "Exists", "DoesNotExist", "Exists-absent", "Gt", "Lt", "Gt-nan", "unknown"],
)
def test_required_expression_operators(
    expression: dict[str, Any], expected: dict[str, int]
) -> None:
    pod = read_replica_pod(spec__affinity=required({"matchExpressions": [expression]}))

    assert regions_for(pod) == expected


def test_expressions_within_a_term_are_and_ed() -> None:
    term = {"matchExpressions": [expr("disk", "In", "ssd"), expr("cores", "Lt", "10")]}

    assert regions_for(read_replica_pod(spec__affinity=required(term))) == {"europe-west1": 1}


def test_required_terms_are_or_ed() -> None:
    pod = read_replica_pod(
        spec__affinity=required(
            {"matchExpressions": [expr("disk", "In", "hdd")]},
            {"matchExpressions": [expr(TOPOLOGY_REGION, "In", "europe-west1")]},
        )
    )

    assert regions_for(pod) == {"us-west-2": 1, "europe-west1": 1}


def test_match_fields_select_by_node_name() -> None:
    term = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["euw1-a"]}]}

    assert regions_for(read_replica_pod(spec__affinity=required(term))) == {"europe-west1": 1}


def test_an_empty_term_matches_no_node() -> None:
    assert not term_matches({}, NODES[0])
    assert regions_for(read_replica_pod(spec__affinity=required({}))) == {}


def test_pod_with_nodeselector_and_affinity_needs_both() -> None:
    pod = read_replica_pod(
        spec__nodeSelector={"disk": "ssd"},
        spec__affinity=required({"matchExpressions": [expr("cores", "Gt", "10")]}),
    )

    assert regions_for(pod) == {"us-west-2": 1}


def test_tolerated_taint_makes_the_region_eligible() -> None:
    pod = read_replica_pod(
        spec__tolerations=[
            {
                "key": "stellar.org/dedicated",
                "operator": "Equal",
                "value": "archive",
                "effect": "NoSchedule",
            }
        ]
    )

    assert regions_for(pod)["ap-south-1"] == 1


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"operator": "Exists"}, True),
        ({"key": "stellar.org/dedicated", "operator": "Exists"}, True),
        ({"key": "stellar.org/dedicated", "value": "archive"}, True),
        ({"key": "stellar.org/dedicated", "operator": "Equal", "value": "other"}, False),
        ({"key": "stellar.org/dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
    ids=[
        "exists-all",
        "exists-key",
        "equal-default",
        "equal-wrong-value",
        "wrong-effect",
        "wrong-key",
    ],
)
def test_toleration_matching(toleration: dict[str, Any], expected: bool) -> None:
    taint = Taint("stellar.org/dedicated", "NoSchedule", "archive")

    assert tolerated([toleration], taint) is expected


def test_prefer_no_schedule_taints_do_not_exclude_nodes() -> None:
    soft = [node("n", "eu-north-1", taints=(Taint("spot", "PreferNoSchedule"),))]

    assert regions_for(read_replica_pod(), soft) == {"eu-north-1": 1}


def test_no_execute_taints_exclude_nodes_unless_tolerated() -> None:
    hard = [node("n", "eu-north-1", taints=(Taint("maintenance", "NoExecute"),))]
    tolerant = read_replica_pod(spec__tolerations=[{"key": "maintenance", "operator": "Exists"}])

    assert regions_for(read_replica_pod(), hard) == {}
    assert regions_for(tolerant, hard) == {"eu-north-1": 1}


def test_unready_and_cordoned_nodes_are_not_counted() -> None:
    nodes = [
        node("a", "us-west-2", ready=False),
        node("b", "us-west-2", unschedulable=True),
        node("c", "europe-west1"),
    ]

    assert regions_for(read_replica_pod(), nodes) == {"europe-west1": 1}


def test_nodes_without_a_region_count_as_eligible_but_in_no_region() -> None:
    eligibility = eligible_regions(read_replica_pod(), [node("a", None), node("b", "us-west-2")])

    assert dict(eligibility.regions) == {"us-west-2": 1}
    assert eligibility.nodes == 2


def test_no_regioned_node_means_no_region_key() -> None:
    eligibility = eligible_regions(read_replica_pod(), [node("a", None)])

    assert eligibility.region_key is None
    assert not eligibility.regions


def test_legacy_region_label_is_used_when_nodes_only_carry_it() -> None:
    nodes = [node("a", "us-east-1", key=LEGACY_REGION), node("b", "eu-west-1", key=LEGACY_REGION)]

    assert region_key(nodes) == LEGACY_REGION


def test_configured_region_label_is_used_when_nodes_only_carry_it() -> None:
    nodes = [
        node("a", "dc-berlin", key="example.com/site"),
        node("b", "dc-oslo", key="example.com/site"),
    ]

    eligibility = eligible_regions(read_replica_pod(), nodes)

    assert eligibility.region_key == "example.com/site"
    assert dict(eligibility.regions) == {"dc-berlin": 1, "dc-oslo": 1}


def test_mixed_keys_prefer_one_every_node_carries() -> None:
    both = {LEGACY_REGION: "us-west-2"}
    nodes = [
        node("a", "us-west-2", key=TOPOLOGY_REGION, labels=both),
        node("b", "europe-west1", key=LEGACY_REGION),
    ]

    assert region_key(nodes) == LEGACY_REGION


def test_constraints_of_the_wrong_type_raise() -> None:
    with pytest.raises(MutationError, match="nodeSelector"):
        eligible_regions(read_replica_pod(spec__nodeSelector=["disk=ssd"]), NODES)

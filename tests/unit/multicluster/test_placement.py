"""Which member clusters a policy allows, matched as the Karmada scheduler matches them."""

from __future__ import annotations

from typing import Any

import pytest

from multicluster.members import MemberCluster, cluster_from_manifest
from multicluster.placement import Placement, PolicyError, eligible_clusters, limit_groups
from tests.unit.multicluster.builders import cluster, policy

FLEET = [
    cluster_from_manifest(cluster("aws-eu", "eu-central-1", labels={"env": "prod"}, zones=["a"])),
    cluster_from_manifest(cluster("aws-us", "us-east-1", labels={"env": "prod"}, zones=["b"])),
    cluster_from_manifest(cluster("gcp-eu", "europe-west1", provider="gcp", labels={"env": "dev"})),
    cluster_from_manifest(
        cluster(
            "tainted",
            "eu-west-2",
            taints=[{"key": "maintenance", "value": "yes", "effect": "NoExecute"}],
        )
    ),
]


def allowed(**placement: Any) -> tuple[str, ...]:
    spec = policy(**placement)["spec"]
    return eligible_clusters(Placement.from_manifest(spec), FLEET).clusters


def test_without_affinity_every_untainted_cluster_is_allowed() -> None:
    assert allowed() == ("aws-eu", "aws-us", "gcp-eu")


def test_names_exclude_and_label_selector_all_have_to_hold() -> None:
    assert allowed(clusterAffinity={"clusterNames": ["aws-eu", "gcp-eu"]}) == ("aws-eu", "gcp-eu")
    assert allowed(clusterAffinity={"exclude": ["aws-us"]}) == ("aws-eu", "gcp-eu")
    affinity = {"labelSelector": {"matchLabels": {"env": "prod"}}, "exclude": ["aws-eu"]}
    assert allowed(clusterAffinity=affinity) == ("aws-us",)


def test_the_field_selector_matches_provider_region_and_zones() -> None:
    def field(key: str, operator: str, *values: str) -> dict[str, Any]:
        expression = {"key": key, "operator": operator, "values": list(values)}
        return {"fieldSelector": {"matchExpressions": [expression]}}

    assert allowed(clusterAffinity=field("provider", "In", "gcp")) == ("gcp-eu",)
    assert allowed(clusterAffinity=field("region", "NotIn", "us-east-1")) == ("aws-eu", "gcp-eu")
    assert allowed(clusterAffinity=field("zone", "In", "b")) == ("aws-us",)
    assert allowed(clusterAffinity=field("zone", "DoesNotExist")) == ("gcp-eu",)


def test_the_first_affinity_group_with_a_cluster_is_the_one_ranked() -> None:
    groups = [
        {"affinityName": "nowhere", "clusterNames": ["gone"]},
        {"affinityName": "prod", "labelSelector": {"matchLabels": {"env": "prod"}}},
        {"affinityName": "all"},
    ]
    eligibility = eligible_clusters(
        Placement.from_manifest(policy(clusterAffinities=groups)["spec"]), FLEET
    )

    assert eligibility.clusters == ("aws-eu", "aws-us")
    assert eligibility.affinity_name == "prod"
    assert eligibility.excluded["gcp-eu"] == "not in clusterAffinities group prod"


def test_a_taint_keeps_a_cluster_out_until_the_policy_tolerates_it() -> None:
    assert "tainted" not in allowed()
    tolerations = [{"key": "maintenance", "operator": "Equal", "value": "yes"}]
    assert "tainted" in allowed(clusterTolerations=tolerations)


def test_only_divided_weighted_policies_without_dynamic_weights_are_weighable() -> None:
    def weighable(scheduling: dict[str, Any]) -> str | None:
        return Placement.from_manifest(policy(scheduling=scheduling)["spec"]).weighable

    assert (
        weighable({"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Weighted"})
        is None
    )
    assert "Duplicated" in (weighable({"replicaSchedulingType": "Duplicated"}) or "")
    aggregated = {"replicaSchedulingType": "Divided", "replicaDivisionPreference": "Aggregated"}
    assert "Aggregated" in (weighable(aggregated) or "")
    dynamic = {
        "replicaSchedulingType": "Divided",
        "replicaDivisionPreference": "Weighted",
        "weightPreference": {"dynamicWeight": "AvailableReplicas"},
    }
    assert "dynamicWeight" in (weighable(dynamic) or "")


def test_the_current_list_gives_each_cluster_its_highest_matching_weight() -> None:
    spec = policy(weights={"aws-eu": 3})["spec"]
    spec["placement"]["replicaScheduling"]["weightPreference"]["staticWeightList"].append(
        {"targetCluster": {"labelSelector": {"matchLabels": {"env": "prod"}}}, "weight": 2}
    )

    assert Placement.from_manifest(spec).current_weights(FLEET) == {"aws-eu": 3, "aws-us": 2}


@pytest.mark.parametrize(
    ("placement", "message"),
    [
        (
            {
                "clusterAffinity": {
                    "fieldSelector": {"matchExpressions": [{"key": "name", "operator": "In"}]}
                }
            },
            "not provider, region or zone",
        ),
        ({"clusterAffinity": {"clusterNames": "aws-eu"}}, "clusterNames is str, expected an array"),
        ({"spreadConstraints": [{"spreadByField": "region", "maxGroups": -1}]}, "maxGroups"),
    ],
)
def test_a_policy_it_cannot_read_is_refused_naming_the_field(
    placement: dict[str, Any], message: str
) -> None:
    with pytest.raises(PolicyError, match=message):
        Placement.from_manifest(policy(**placement)["spec"])


def test_member_cluster_fields_leave_out_what_is_not_set() -> None:
    assert MemberCluster("x", {}).fields == {}


def test_max_groups_keeps_the_greenest_groups_only() -> None:
    spec = policy(spreadConstraints=[{"spreadByField": "provider", "maxGroups": 1}])["spec"]
    placement = Placement.from_manifest(spec)
    eligibility = eligible_clusters(placement, FLEET)
    members = {member.name: member for member in FLEET}

    limited = limit_groups(
        eligibility, members, placement.spreads, {"gcp-eu": 100.0, "aws-eu": 300.0}
    )

    assert limited.clusters == ("gcp-eu",)
    assert limited.excluded["aws-us"] == "beyond maxGroups 1 by provider"

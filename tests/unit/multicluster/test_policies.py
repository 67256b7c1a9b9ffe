"""Which policies are the controller's, and the apply body that owns only the weights."""

from __future__ import annotations

from multicluster.placement import PolicyKind
from multicluster.policies import (
    Annotations,
    PolicyRef,
    apply_body,
    binding_policy,
    binding_replicas,
    policy_from_manifest,
)
from tests.unit.multicluster.builders import NOW, policy

MANAGER = "stellar-carbon-karmada"
ANNOTATIONS = Annotations("eu=52,us=380", NOW, "electricitymaps", {"eu": 100, "us": 1})


def read(manifest: dict, kind: PolicyKind = PolicyKind.PROPAGATION):  # type: ignore[no-untyped-def,type-arg]
    return policy_from_manifest(manifest, kind, manager=MANAGER)


def test_a_policy_without_the_annotation_is_never_the_controllers() -> None:
    assert read(policy(annotated=False)) is None
    disabled = policy()
    disabled["metadata"]["annotations"]["stellar.org/carbon-aware"] = "disabled"
    assert read(disabled) is None


def test_an_unreadable_placement_is_kept_with_the_problem() -> None:
    watched = read(policy(clusterAffinity={"clusterNames": "eu"}))

    assert watched is not None
    assert watched.placement is None
    assert "clusterNames" in (watched.problem or "")


def test_the_apply_body_holds_only_the_weight_list_and_the_decision_annotations() -> None:
    manifest = policy(clusterAffinity={"clusterNames": ["eu", "us"]})
    manifest["metadata"]["resourceVersion"] = "42"
    watched = read(manifest)
    assert watched is not None

    body = apply_body(watched, ANNOTATIONS, weights={"us": 1, "eu": 100})

    assert body == {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy",
        "metadata": {
            "name": "read-pool",
            "namespace": "stellar",
            "resourceVersion": "42",
            "annotations": {
                "stellar.org/carbon-ranking": "eu=52,us=380",
                "stellar.org/carbon-decided-at": "2026-11-26T12:00:00Z",
                "stellar.org/carbon-source": "electricitymaps",
                "stellar.org/carbon-weights": "eu=100,us=1",
            },
        },
        "spec": {
            "placement": {
                "replicaScheduling": {
                    "weightPreference": {
                        "staticWeightList": [
                            {"targetCluster": {"clusterNames": ["eu"]}, "weight": 100},
                            {"targetCluster": {"clusterNames": ["us"]}, "weight": 1},
                        ]
                    }
                }
            }
        },
    }


def test_a_dry_run_body_proposes_and_keeps_a_list_this_manager_owns() -> None:
    cluster_policy = policy(namespace=None, weights={"eu": 7})
    cluster_policy["metadata"]["managedFields"] = [
        {
            "manager": MANAGER,
            "operation": "Apply",
            "fieldsV1": {
                "f:spec": {
                    "f:placement": {
                        "f:replicaScheduling": {"f:weightPreference": {"f:staticWeightList": {}}}
                    }
                }
            },
        }
    ]
    watched = read(cluster_policy, PolicyKind.CLUSTER_PROPAGATION)
    assert watched is not None
    assert watched.ref == PolicyRef(PolicyKind.CLUSTER_PROPAGATION, "", "read-pool")

    body = apply_body(watched, ANNOTATIONS, weights=None)

    assert "namespace" not in body["metadata"]
    assert body["metadata"]["annotations"]["stellar.org/carbon-proposed-weights"] == "eu=100,us=1"
    weights = body["spec"]["placement"]["replicaScheduling"]["weightPreference"]
    assert weights["staticWeightList"] == [{"targetCluster": {"clusterNames": ["eu"]}, "weight": 7}]


def test_a_dry_run_body_leaves_a_list_owned_by_others_alone() -> None:
    watched = read(policy(weights={"eu": 7}))
    assert watched is not None

    assert "spec" not in apply_body(watched, ANNOTATIONS, weights=None)


def test_the_decided_at_annotation_keeps_the_dwell_across_restarts() -> None:
    manifest = policy()
    manifest["metadata"]["annotations"]["stellar.org/carbon-decided-at"] = "2026-11-26T11:00:00Z"
    watched = read(manifest)

    assert watched is not None
    assert watched.last_change == NOW.replace(hour=11)


def test_bindings_name_their_policy_and_replicas() -> None:
    binding = {
        "metadata": {
            "namespace": "stellar",
            "annotations": {
                "propagationpolicy.karmada.io/name": "read-pool",
                "propagationpolicy.karmada.io/namespace": "stellar",
            },
        },
        "spec": {"replicas": 6},
    }
    cluster_binding = {
        "metadata": {"annotations": {"clusterpropagationpolicy.karmada.io/name": "global"}},
        "spec": {},
    }

    assert binding_policy(binding, cluster_scoped=False) == PolicyRef(
        PolicyKind.PROPAGATION, "stellar", "read-pool"
    )
    assert binding_replicas(binding) == 6
    assert binding_policy(cluster_binding, cluster_scoped=True) == PolicyRef(
        PolicyKind.CLUSTER_PROPAGATION, "", "global"
    )
    assert binding_replicas(cluster_binding) == 0

"""Read pools with hard spread rules: the upstream operator's template, end to end through
``admit`` with the StatefulSets, namespaces and bound pods the webhook watches."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from shared.cluster.inventory import NodeInfo
from shared.cluster.workloads import (
    BoundPod,
    NamespaceInfo,
    Workloads,
    statefulset_from_manifest,
)
from shared.core.clock import fixed
from tests.unit.webhook.builders import (
    NOW,
    THREE_REGIONS,
    apply_and_validate,
    node,
    review,
    snapshot,
)
from webhook.admission import Admission, Placement, admit
from webhook.decisions import DecisionCache
from webhook.review import review_from_dict

FIXTURES = Path(__file__).parents[2] / "fixtures" / "operator-read-pool"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
ZONE = "topology.kubernetes.io/zone"
CONSTRAINT = "stellar.org/carbon-constraint"
AWARE = "stellar.org/carbon-aware"
MAIN_POD_LABELS = {  # the StellarNode's own pod: its labels match the pool's selectors
    "app.kubernetes.io/name": "stellar-node",
    "app.kubernetes.io/component": "validator",
    "app.kubernetes.io/instance": "carbon-validator",
    "stellar-network": "testnet",
}


def statefulset(replicas: int = 20, carbon_aware: str | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((FIXTURES / "read-statefulset.yaml").read_text())
    loaded["spec"]["replicas"] = replicas
    if carbon_aware is not None:
        loaded["metadata"]["annotations"][AWARE] = carbon_aware
    return loaded


def operator_pod(
    ordinal: int = 0, *, owned: bool = True, annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """The pod the StatefulSet controller creates from the template, as the webhook sees it."""
    owner = statefulset()
    template = copy.deepcopy(owner["spec"]["template"])
    name = f"carbon-validator-read-{ordinal}"
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "stellar",
        "labels": {
            **template["metadata"]["labels"],
            "apps.kubernetes.io/pod-index": str(ordinal),
            "controller-revision-hash": "carbon-validator-read-6d5f8b7c9",
            "statefulset.kubernetes.io/pod-name": name,
        },
    }
    if owned:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "StatefulSet",
                "name": "carbon-validator-read",
                "uid": "5f0c6b7e-2a51-4c4b-9d0e-6f1f7d8f9a01",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    if annotations:
        metadata["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def zoned_cluster() -> dict[str, NodeInfo]:
    """us-west-2 (greenest): three zones of one node; europe-west1 and ap-south-1: three zones
    of two nodes."""
    nodes = []
    for region, per_zone in (("us-west-2", 1), ("europe-west1", 2), ("ap-south-1", 2)):
        for zone in "abc":
            for index in range(per_zone):
                nodes.append(
                    node(f"{region}{zone}-{index}", region, labels={ZONE: f"{region}{zone}"})
                )
    return {n.name: n for n in nodes}


def workloads(
    replicas: int = 3,
    *,
    bound: tuple[BoundPod, ...] = (),
    synced: bool = True,
    namespace: str | None = None,
    owner_aware: str | None = None,
) -> Workloads:
    owner = statefulset_from_manifest(statefulset(replicas, owner_aware))
    main = BoundPod("stellar", "carbon-validator-0", "ap-south-1a-0", MAIN_POD_LABELS)
    pods = {(p.namespace, p.name): p for p in (main, *bound)}
    return Workloads(
        statefulsets={(owner.namespace, owner.name): owner},
        namespaces={"stellar": NamespaceInfo("stellar", namespace)},
        pods=pods,
        synced=synced,
    )


def read_pod_bound(ordinal: int, node_name: str) -> BoundPod:
    labels = operator_pod(ordinal)["metadata"]["labels"]
    return BoundPod("stellar", f"carbon-validator-read-{ordinal}", node_name, labels)


DATA, NODES = snapshot(THREE_REGIONS), zoned_cluster()


def decide(
    pod: dict[str, Any],
    state: Workloads,
    *,
    cache: DecisionCache | None = None,
    uid: str | None = None,
) -> Admission:
    return admit(
        review_from_dict(review(pod, uid=uid)),
        carbon=lambda: DATA,
        nodes=lambda: NODES,
        workloads=lambda: state,
        placement=Placement(),
        clock=fixed(NOW),
        cache=cache,
    )


def required_regions(pod: dict[str, Any], admission: Admission) -> list[str] | None:
    patched = apply_and_validate(pod, list(admission.patch))
    affinity = patched["spec"]["affinity"].get("nodeAffinity", {})
    if REQUIRED not in affinity:
        return None
    (term,) = affinity[REQUIRED]["nodeSelectorTerms"]
    (expression,) = term["matchExpressions"]
    assert expression["key"] == "topology.kubernetes.io/region"
    values: list[str] = expression["values"]
    return values


def test_an_operator_read_pod_gets_a_required_set_that_holds_its_statefulsets_replicas() -> None:
    pod = operator_pod()

    three = decide(pod, workloads(replicas=3))
    five = decide(pod, workloads(replicas=5))

    # One node per zone in us-west-2: its three hosts take three pods, not five.
    assert required_regions(pod, three) == ["us-west-2"]
    assert required_regions(pod, five) == ["europe-west1", "us-west-2"]
    assert three.outcome == five.outcome == "mutated"
    assert three.warnings == five.warnings == ()


def test_the_pool_keeps_its_own_and_every_other_required_term() -> None:
    pod = operator_pod()

    patched = apply_and_validate(pod, list(decide(pod, workloads()).patch))

    assert (
        patched["spec"]["affinity"]["podAntiAffinity"] == pod["spec"]["affinity"]["podAntiAffinity"]
    )
    assert patched["spec"]["topologySpreadConstraints"] == pod["spec"]["topologySpreadConstraints"]
    assert patched["spec"]["affinity"]["nodeAffinity"][PREFERRED]


def test_pool_pods_already_bound_are_not_wanted_again() -> None:
    bound = (read_pod_bound(0, "europe-west1a-0"), read_pod_bound(1, "europe-west1b-0"))
    pod = operator_pod(2)

    admission = decide(pod, workloads(replicas=5, bound=bound))

    assert required_regions(pod, admission) == ["us-west-2"]


def test_the_owner_is_found_by_name_and_selector_without_owner_references() -> None:
    pod = operator_pod(owned=False)

    admission = decide(pod, workloads(replicas=5))

    assert required_regions(pod, admission) == ["europe-west1", "us-west-2"]


def test_a_statefulset_annotated_disabled_leaves_its_pods_unchanged() -> None:
    admission = decide(operator_pod(), workloads(owner_aware="disabled"))

    assert admission.outcome == "skipped:opted-out"
    assert admission.patch == ()


def test_a_namespace_annotated_disabled_leaves_its_read_pods_unchanged() -> None:
    # The operator writes carbon-aware: enabled on the StatefulSet; the namespace still wins.
    admission = decide(operator_pod(), workloads(namespace="disabled"))

    assert admission.outcome == "skipped:opted-out"
    assert admission.patch == ()


def test_a_statefulset_annotated_enabled_selects_pods_without_the_role_label() -> None:
    pod = operator_pod()
    del pod["metadata"]["labels"]["stellar.org/role"]
    state = workloads()
    assert next(iter(state.statefulsets.values())).carbon_aware == "enabled"

    admission = decide(pod, state)

    assert admission.outcome == "mutated"
    apply_and_validate(pod, list(admission.patch))


def test_the_pods_own_annotation_wins_over_its_statefulsets() -> None:
    enabled = operator_pod(annotations={AWARE: "enabled"})
    disabled = operator_pod(annotations={AWARE: "disabled"})

    against_owner = decide(enabled, workloads(owner_aware="disabled"))
    against_namespace = decide(enabled, workloads(namespace="disabled"))
    opted_out = decide(disabled, workloads())

    assert against_owner.outcome == against_namespace.outcome == "mutated"
    assert required_regions(enabled, against_owner) == ["us-west-2"]
    assert opted_out.outcome == "skipped:opted-out"


def test_when_no_region_set_holds_the_pool_the_pod_gets_preferred_terms_and_a_warning() -> None:
    pod = operator_pod()

    # Fifteen nodes, one pool pod per node (required anti-affinity): twenty cannot fit.
    admission = decide(pod, workloads(replicas=20))

    patched = apply_and_validate(pod, list(admission.patch))
    assert REQUIRED not in patched["spec"]["affinity"]["nodeAffinity"]
    assert patched["spec"]["affinity"]["nodeAffinity"][PREFERRED]
    assert patched["metadata"]["annotations"][CONSTRAINT] == (
        "podAntiAffinity:kubernetes.io/hostname"
    )
    assert admission.warnings == (
        "carbon-policy require: no region set holds 20 more pool pods"
        " under podAntiAffinity:kubernetes.io/hostname",
    )
    assert all(len(warning) <= 120 for warning in admission.warnings)


def test_an_explicit_prefer_policy_keeps_a_read_pod_on_preferred_terms() -> None:
    pod = operator_pod(annotations={"stellar.org/carbon-policy": "prefer"})

    admission = decide(pod, workloads(replicas=3))

    assert required_regions(pod, admission) is None


def test_before_the_workloads_are_listed_a_read_pod_gets_preferred_terms_only() -> None:
    pod = operator_pod()

    admission = decide(pod, workloads(synced=False))

    assert required_regions(pod, admission) is None
    assert admission.warnings == ("read pool state not listed yet; preferred terms only",)


def test_a_scaled_statefulset_is_sized_anew_with_the_same_decision_cache() -> None:
    cache = DecisionCache()
    pod = operator_pod()

    before = decide(pod, workloads(replicas=3), cache=cache)
    after = decide(pod, workloads(replicas=5), cache=cache)

    assert required_regions(pod, before) == ["us-west-2"]
    assert required_regions(pod, after) == ["europe-west1", "us-west-2"]


def test_a_second_pass_over_a_mutated_read_pod_yields_no_patch() -> None:
    pod = operator_pod()
    patched = apply_and_validate(pod, list(decide(pod, workloads()).patch))

    again = decide(patched, workloads())

    assert again.outcome == "skipped:already-decided"
    assert again.patch == ()


def test_pool_pods_decided_one_after_another_as_the_pool_changes_match_cold_decisions() -> None:
    # One cache across a pool whose size and bound pods change between its pods: what it
    # remembers for the last pool pod must never answer for a pool that has since changed.
    cache = DecisionCache()
    in_europe = (read_pod_bound(0, "europe-west1a-0"), read_pod_bound(1, "europe-west1b-0"))
    # Same hosts and as many pods wanted as the first state; two us-west-2 hosts taken.
    in_us = (read_pod_bound(0, "us-west-2a-0"), read_pod_bound(1, "us-west-2b-0"))
    states = [
        workloads(replicas=3),
        workloads(replicas=5, bound=in_us),
        workloads(replicas=3),
        workloads(replicas=5),
        workloads(replicas=5, bound=in_europe),
        workloads(replicas=5, bound=in_europe[:1]),
    ]
    answers = []
    for ordinal, state in enumerate(states):
        pod = operator_pod(ordinal)

        warm = decide(pod, state, cache=cache, uid=f"uid-{ordinal}")

        assert warm == decide(pod, state, uid=f"uid-{ordinal}"), ordinal
        answers.append(required_regions(pod, warm))
    assert answers == [
        ["us-west-2"],
        ["europe-west1", "us-west-2"],
        ["us-west-2"],
        ["europe-west1", "us-west-2"],
        ["us-west-2"],
        ["europe-west1", "us-west-2"],
    ]

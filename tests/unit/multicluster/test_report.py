"""``/api/v1/policies`` says per policy and cluster what the metrics say: weight, replicas, region
intensity, and the estimated intensity under carbon weights against equal weights."""

from __future__ import annotations

from multicluster.decide import ClusterCarbon, Rules, decide
from multicluster.placement import PolicyKind
from multicluster.policies import PolicyRef
from multicluster.report import PolicyView, policies_document, policy_json
from multicluster.settings import KarmadaMode
from tests.unit.multicluster.builders import NOW

REF = PolicyRef(PolicyKind.PROPAGATION, "stellar", "read-pool")
REGIONS = {"member-be": "europe-west1", "member-us": "us-east-1"}


def view(*, live: bool = True) -> PolicyView:
    carbon = {"member-be": ClusterCarbon(120.0, live), "member-us": ClusterCarbon(400.0, True)}
    decision = decide(
        eligible=("member-be", "member-us", "member-xx"),
        carbon=carbon,
        current={},
        workloads=[12],
        last_change=None,
        now=NOW,
        rules=Rules(max_moved_share=1.0),
    )
    return PolicyView(
        REF,
        decision,
        {"member-be": 120.0, "member-us": 400.0},
        decided_at=NOW,
        source="electricitymaps",
        regions=REGIONS,
    )


def test_a_weighed_policy_shows_each_cluster_and_its_saving_against_equal_weights() -> None:
    body = policy_json(view())

    assert (body["kind"], body["namespace"], body["name"]) == (
        "PropagationPolicy",
        "stellar",
        "read-pool",
    )
    assert (body["verdict"], body["frozen"], body["frozenReason"]) == ("weigh", False, None)
    assert (body["decidedAt"], body["source"]) == ("2026-11-26T12:00:00Z", "electricitymaps")
    clusters = {each["name"]: each for each in body["clusters"]}
    assert clusters["member-be"] == {
        "name": "member-be",
        "region": "europe-west1",
        "weight": 100,
        "estimatedReplicas": clusters["member-be"]["estimatedReplicas"],
        "regionIntensity": 120.0,
    }
    assert clusters["member-be"]["estimatedReplicas"] > 4
    # A cluster without carbon data keeps the floor weight and shows no region or intensity.
    assert clusters["member-xx"]["region"] is None
    assert clusters["member-xx"]["regionIntensity"] is None
    assert clusters["member-xx"]["weight"] == 1
    assert sum(each["estimatedReplicas"] for each in body["clusters"]) == 12
    pool = body["estimatedIntensity"]
    assert pool["carbonWeights"] < pool["equalWeights"]
    expected = (pool["equalWeights"] - pool["carbonWeights"]) / pool["equalWeights"]
    assert abs(pool["relativeSaving"] - expected) < 1e-3
    assert pool["relativeSaving"] > 0.1


def test_a_frozen_policy_says_why() -> None:
    body = policy_json(view(live=False))

    assert body["frozen"] is True
    assert body["verdict"] == "frozen"
    assert "member-be" in body["frozenReason"]
    # Frozen: the weights held (equal, by Karmada's default) are the basis, so nothing is saved.
    assert body["estimatedIntensity"]["relativeSaving"] == 0.0


def test_the_document_names_the_mode_and_the_leader_and_a_cluster_policy_has_no_namespace() -> None:
    cluster_wide = PolicyView(
        PolicyRef(PolicyKind.CLUSTER_PROPAGATION, "", "everywhere"),
        view().decision,
        {},
        decided_at=NOW,
        source="none",
    )
    document = policies_document([view(), cluster_wide], mode=KarmadaMode.APPLY, leader=True)

    assert (document["mode"], document["leader"]) == ("apply", True)
    assert [p["name"] for p in document["policies"]] == ["read-pool", "everywhere"]
    assert document["policies"][1]["namespace"] is None
    assert policies_document([], mode=KarmadaMode.DRY_RUN, leader=False) == {
        "mode": "dry-run",
        "leader": False,
        "policies": [],
    }

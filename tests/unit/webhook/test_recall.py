"""Answers given again: a pod whose decision view equals one already decided, with the same data
in the same second, gets that answer (with its own uid); any other pod gets what a cold decision
gives it."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import jsonpatch
import orjson
import pytest
from hypothesis import given

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import NodeInfo, Taint
from shared.cluster.workloads import EMPTY, NamespaceInfo, Workloads
from shared.core.clock import fixed
from tests.unit.webhook.builders import (
    NOW,
    THREE_REGIONS,
    cluster,
    node,
    read_replica_pod,
    review,
    snapshot,
)
from tests.unit.webhook.test_hostile_reviews import pods
from tests.unit.webhook.test_pools import DATA, NODES, operator_pod, read_pod_bound, workloads
from webhook import admission
from webhook.admission import Admission, Placement, Recalled, admit
from webhook.decisions import DecisionCache
from webhook.recall import MAX_KEY_BYTES, Recall, decision_view
from webhook.review import AdmissionRequest, decode_patch, encode_review, review_from_dict

CARBON, CLUSTER = snapshot(THREE_REGIONS), cluster()
POLICY = "stellar.org/carbon-policy"


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The uid of each request decided (rather than answered again) from now on."""
    decided: list[str] = []
    decide = admission._decide

    def counted(request: AdmissionRequest, **kwargs: Any) -> Admission:
        decided.append(request.uid)
        return decide(request, **kwargs)

    monkeypatch.setattr(admission, "_decide", counted)
    return decided


@dataclasses.dataclass
class Memory:
    """What a server keeps between requests."""

    cache: DecisionCache = dataclasses.field(default_factory=DecisionCache)
    recall: Recall[Recalled] = dataclasses.field(default_factory=Recall)


def answer(
    pod: dict[str, Any],
    memory: Memory | None,
    *,
    uid: str = "uid-1",
    operation: str = "CREATE",
    namespace: str = "stellar",
    carbon: CarbonSnapshot = CARBON,
    nodes: Mapping[str, NodeInfo] = CLUSTER,
    state: Workloads = EMPTY,
    seconds: float = 0.0,
) -> Admission:
    sent = review(pod, uid=uid, operation=operation)
    sent["request"]["namespace"] = namespace
    return admit(
        review_from_dict(sent),
        carbon=lambda: carbon,
        nodes=lambda: nodes,
        workloads=lambda: state,
        placement=Placement(),
        clock=fixed(NOW + timedelta(seconds=seconds)),
        cache=memory.cache if memory is not None else None,
        recall=memory.recall if memory is not None else None,
    )


def nameless(pod: dict[str, Any]) -> dict[str, Any]:
    """``pod`` as a controller that names its pods by ``generateName`` creates it: only such
    pods can have equals (a named pod is always decided)."""
    pod = copy.deepcopy(pod)
    metadata = pod.get("metadata")
    if isinstance(metadata, dict) and "name" in metadata:
        metadata.setdefault("generateName", f"{metadata.pop('name')}-")
    return pod


def replica_set_pod(token: str) -> dict[str, Any]:
    """A ReplicaSet's pod after the API server's admission plugins: its token volume's name is
    random."""
    pod = nameless(read_replica_pod())
    pod["spec"]["volumes"] = [{"name": f"kube-api-access-{token}", "projected": {"sources": []}}]
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": f"kube-api-access-{token}", "mountPath": "/var/run/secrets/kubernetes.io"}
    ]
    return pod


@given(first=pods(), second=pods())
def test_a_pod_gets_the_answer_of_a_cold_decision_whatever_pod_came_before(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    first, second = nameless(first), nameless(second)
    memory = Memory()
    answer(first, memory, uid="first")
    sent = copy.deepcopy(second)

    warm = answer(second, memory, uid="second")

    assert warm == answer(second, None, uid="second")
    assert warm.response["response"]["uid"] == "second"
    assert orjson.loads(warm.encoded()) == warm.response
    jsonpatch.apply_patch(sent, decode_patch(warm.response))  # raises if it does not apply


@given(pod=pods())
def test_a_pod_asked_about_twice_gets_the_same_answer_with_its_own_uid(
    pod: dict[str, Any],
) -> None:
    pod = nameless(pod)
    memory = Memory()
    first = answer(pod, memory, uid="first")

    again = answer(pod, memory, uid="again")

    assert again == answer(pod, None, uid="again")
    assert dataclasses.replace(again, response=first.response) == first
    assert again.encoded() == encode_review(again.response)


def test_a_replica_sets_pods_are_decided_once_while_nothing_changes(
    decisions: list[str],
) -> None:
    memory = Memory()
    first = answer(replica_set_pod("x7k2p"), memory, uid="uid-1")

    others = [answer(replica_set_pod(token), memory, uid=token) for token in ("b9c4d", "q1w2e")]

    assert decisions == ["uid-1"]
    assert first.outcome == "mutated"
    for other in others:
        assert other.response["response"]["patch"] == first.response["response"]["patch"]
    assert [o.response["response"]["uid"] for o in others] == ["b9c4d", "q1w2e"]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"seconds": 1.0}, id="the next second"),
        pytest.param({"carbon": snapshot(THREE_REGIONS)}, id="a new carbon snapshot"),
        pytest.param({"nodes": cluster()}, id="a new node inventory"),
        pytest.param(
            {"state": Workloads(namespaces={"stellar": NamespaceInfo("stellar", None)})},
            id="new namespaces",
        ),
    ],
)
def test_new_data_or_a_new_second_gets_a_new_decision(
    change: dict[str, Any], decisions: list[str]
) -> None:
    memory = Memory()
    pod = nameless(read_replica_pod())
    answer(pod, memory, uid="first")

    later = answer(pod, memory, uid="later", **change)

    assert decisions == ["first", "later"]
    assert later == answer(pod, None, uid="later", **change)


def test_the_decision_time_moves_on_with_the_second() -> None:
    memory = Memory()
    pod = nameless(read_replica_pod())

    stamps = [
        jsonpatch.apply_patch(pod, list(answer(pod, memory, seconds=s).patch))["metadata"][
            "annotations"
        ]["stellar.org/carbon-decided-at"]
        for s in (0.2, 0.9, 1.1)
    ]

    assert stamps == ["2026-11-26T12:00:00Z", "2026-11-26T12:00:00Z", "2026-11-26T12:00:01Z"]


def test_a_namespace_that_opts_out_gets_its_own_answer() -> None:
    memory = Memory()
    state = Workloads(namespaces={"quiet": NamespaceInfo("quiet", "disabled")})
    pod = nameless(read_replica_pod())
    assert answer(pod, memory, namespace="stellar", state=state).outcome == "mutated"

    elsewhere = answer(pod, memory, namespace="quiet", state=state)

    assert elsewhere.outcome == "skipped:opted-out"
    assert not elsewhere.patch


def test_only_pod_creations_are_answered_again() -> None:
    memory = Memory()
    pod = nameless(read_replica_pod())
    assert answer(pod, memory).outcome == "mutated"

    update = answer(pod, memory, operation="UPDATE")

    assert update.outcome == "skipped:not-create"


def test_a_pool_pod_is_decided_again_once_its_pool_has_changed() -> None:
    memory = Memory()
    pod = nameless(operator_pod(3))
    empty = workloads(replicas=5)
    in_europe = {
        **empty.pods,
        **{
            (p.namespace, p.name): p
            for p in (read_pod_bound(0, "europe-west1a-0"), read_pod_bound(1, "europe-west1b-0"))
        },
    }
    # As the watches publish them: the same StatefulSets and namespaces, other pods.
    states = [
        empty,
        empty.updated(empty.statefulsets, empty.namespaces, in_europe, synced=True, restricted={}),
        empty,
    ]

    answers = [answer(pod, memory, carbon=DATA, nodes=NODES, state=s) for s in states]

    cold = [answer(pod, None, carbon=DATA, nodes=NODES, state=s) for s in states]
    assert answers == cold
    assert answers[0].patch != answers[1].patch  # the bound pods moved the required set


def test_a_pod_without_pool_rules_is_answered_again_while_only_bound_pods_change(
    decisions: list[str],
) -> None:
    # A burst of read replicas binds pods between admissions; they change nothing such a pod's
    # decision reads.
    memory = Memory()
    before = workloads(replicas=3)
    bound = {**before.pods, ("stellar", "carbon-validator-read-0"): read_pod_bound(0, "x")}
    # As the watches publish it: only the pods are new.
    after = before.updated(
        before.statefulsets, before.namespaces, bound, synced=True, restricted={}
    )
    pod = nameless(read_replica_pod())
    first = answer(pod, memory, uid="first", carbon=DATA, nodes=NODES, state=before)

    again = answer(pod, memory, uid="again", carbon=DATA, nodes=NODES, state=after)

    assert decisions == ["first"]
    assert after.pods != before.pods
    assert dataclasses.replace(again, response=first.response) == first


def test_a_view_too_large_to_keep_is_decided_every_time(decisions: list[str]) -> None:
    memory = Memory()
    pod = nameless(
        read_replica_pod(metadata__annotations={"example.com/notes": "n" * MAX_KEY_BYTES})
    )

    first, again = answer(pod, memory, uid="first"), answer(pod, memory, uid="again")

    assert decisions == ["first", "again"]
    assert len(memory.recall) == 0
    assert first.outcome == again.outcome == "mutated"


def test_the_view_keeps_what_decisions_read_and_leaves_the_rest() -> None:
    pod = replica_set_pod("x7k2p")
    pod["spec"]["affinity"] = None
    pod["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "2"}}

    view = decision_view(pod)

    assert set(view) == {"metadata", "spec"}
    assert "annotations" not in view["metadata"]  # missing stays missing
    assert view["metadata"]["labels"] == pod["metadata"]["labels"]
    assert view["spec"]["affinity"] is None  # null stays null
    assert view["spec"]["containers"] == [{"resources": {"requests": {"cpu": "2"}}}]
    assert "volumes" not in view["spec"]


TAINT = Taint("dedicated", "NoSchedule", "ledger")
TAINTED = {**CLUSTER, "eun1-a": node("eun1-a", "eu-north-1", taints=(TAINT,))}
"""The greenest region's only node is tainted: tolerations decide whether a pod may go there."""
GREENEST_TAINTED = snapshot({**THREE_REGIONS, "eu-north-1": 40.0})
TOLERATION = {"key": "dedicated", "operator": "Equal", "value": "ledger", "effect": "NoSchedule"}
ZONE_SPREAD = {
    "maxSkew": 1,
    "topologyKey": "topology.kubernetes.io/region",
    "whenUnsatisfiable": "DoNotSchedule",
    "labelSelector": {"matchLabels": {"app.kubernetes.io/instance": "mainnet-core"}},
}


def _changed(pod: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(pod)
    *parents, last = path.split(".")
    target = changed
    for part in parents:
        target = target[part][0] if part == "containers" else target[part]
    target[last] = value
    return changed


OWNED_BY_DISABLED = workloads(owner_aware="disabled")
"""Its StatefulSet opts out; a pod without owner references is its by name."""
NAMELESS = operator_pod(0, owned=False)
NAMELESS["metadata"]["generateName"] = NAMELESS["metadata"].pop("name")
HUNGRY = {"requests": {"cpu": "64", "memory": "1Ti"}}
ROOMY = {
    name: dataclasses.replace(n, cpu_millis=16_000, memory_bytes=64 * 2**30)
    for name, n in NODES.items()
}
"""The zoned cluster with 16 CPUs and 64 GiB a node: room for the pool, not for a hungry pod."""


@pytest.mark.parametrize(
    ("pod", "path", "value", "carbon", "nodes", "state"),
    [
        (read_replica_pod(), "metadata.labels", {"app": "other"}, None, None, None),
        (
            read_replica_pod(),
            "metadata.annotations",
            {"stellar.org/carbon-policy": "require"},
            None,
            None,
            None,
        ),
        (
            read_replica_pod(),
            "metadata.ownerReferences",
            [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "d", "uid": "u"}],
            None,
            None,
            None,
        ),
        (NAMELESS, "metadata.generateName", "x", DATA, NODES, OWNED_BY_DISABLED),
        (read_replica_pod(), "spec.nodeName", "usw2-a", None, None, None),
        (
            read_replica_pod(),
            "spec.affinity",
            {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}},
            None,
            None,
            None,
        ),
        (
            read_replica_pod(),
            "spec.nodeSelector",
            {"topology.kubernetes.io/region": "europe-west1"},
            None,
            None,
            None,
        ),
        (read_replica_pod(), "spec.tolerations", [TOLERATION], GREENEST_TAINTED, TAINTED, None),
        (read_replica_pod(), "spec.topologySpreadConstraints", [ZONE_SPREAD], None, None, None),
        (operator_pod(0), "spec.containers.resources", HUNGRY, DATA, ROOMY, workloads()),
    ],
    ids=lambda value: value if isinstance(value, str) and "." in value else "",
)
def test_a_pod_that_differs_in_anything_a_decision_reads_is_decided_on_its_own(
    pod: dict[str, Any],
    path: str,
    value: Any,
    carbon: CarbonSnapshot | None,
    nodes: Mapping[str, NodeInfo] | None,
    state: Workloads | None,
) -> None:
    data: dict[str, Any] = {
        "carbon": carbon or CARBON,
        "nodes": nodes or CLUSTER,
        "state": state or EMPTY,
    }
    pod = nameless(pod)
    memory = Memory()
    first = answer(pod, memory, uid="first", **data)
    other = _changed(pod, path, value)

    warm = answer(other, memory, uid="other", **data)

    assert warm == answer(other, None, uid="other", **data)
    assert dataclasses.replace(warm, response=first.response) != first, "the change matters"


def test_a_pod_with_a_name_of_its_own_is_decided_every_time(decisions: list[str]) -> None:
    # A StatefulSet names each pod: none has an equal to share an answer with.
    memory = Memory()
    pod = read_replica_pod()

    answers = [answer(pod, memory, uid=uid) for uid in ("first", "again")]

    assert decisions == ["first", "again"]
    assert len(memory.recall) == 0
    assert answers[0] == dataclasses.replace(answers[1], response=answers[0].response)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"seconds": 1.0}, id="the next second"),
        pytest.param({"carbon": snapshot(THREE_REGIONS)}, id="a new carbon snapshot"),
    ],
)
def test_answers_of_an_earlier_second_or_older_data_are_forgotten(change: dict[str, Any]) -> None:
    # They can never be given again, and would keep old inventories and snapshots alive.
    memory = Memory()
    plain = nameless(read_replica_pod())
    required = nameless(read_replica_pod(metadata__annotations={POLICY: "require"}))
    answer(plain, memory)
    answer(required, memory)
    assert len(memory.recall) == 2

    answer(plain, memory, **change)

    assert len(memory.recall) == 1

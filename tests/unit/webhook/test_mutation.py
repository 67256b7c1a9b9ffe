"""The pure mutation: pod shapes → exact JSON patches that apply and yield valid Pods."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import pytest

from shared.scoring.ranking import low_carbon_set, preference_terms, rank
from tests.unit.webhook.builders import (
    NOW,
    THREE_REGIONS,
    apply_and_validate,
    read_replica_pod,
    snapshot,
)
from webhook.eligibility import LEGACY_REGION, TOPOLOGY_REGION
from webhook.errors import MutationError
from webhook.mutation import mutate, pointer_token
from webhook.settings import Policy

R = TOPOLOGY_REGION
PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
NA = "/spec/affinity/nodeAffinity"
RANKING = rank(snapshot(THREE_REGIONS), THREE_REGIONS, now=NOW)
TERMS = preference_terms(RANKING)
LOW = low_carbon_set(RANKING)


def term(weight: int, *regions: str, key: str = R) -> dict[str, Any]:
    return {
        "weight": weight,
        "preference": {"matchExpressions": [{"key": key, "operator": "In", "values": [*regions]}]},
    }


T100 = term(100, "us-west-2")
T43 = term(43, "europe-west1")
OURS = [T100, T43]
ANNOTATIONS = {
    "stellar.org/carbon-ranking": "us-west-2=118,europe-west1=180,ap-south-1=650",
    "stellar.org/carbon-decided-at": "2026-11-26T12:00:00Z",
    "stellar.org/carbon-source": "electricitymaps",
}
REQUIRE_LOW = {"key": R, "operator": "In", "values": ["us-west-2"]}
USER_TERM = term(20, "eu-north-1")
ZONE_TERM = {
    "matchExpressions": [
        {"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["us-west-2a"]}
    ]
}
NAME_TERM = {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["usw2-a"]}]}
ANTI = {
    "requiredDuringSchedulingIgnoredDuringExecution": [
        {
            "labelSelector": {"matchLabels": {"stellar.org/role": "read-replica"}},
            "topologyKey": "kubernetes.io/hostname",
        }
    ]
}


def add(path: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": path, "value": value}


def annotation_ops() -> list[dict[str, Any]]:
    return [add(f"/metadata/annotations/{pointer_token(k)}", v) for k, v in ANNOTATIONS.items()]


NO_ANNOTATIONS = [add("/metadata/annotations", ANNOTATIONS)]
REQUIRED_ANNOTATIONS = [
    add(
        "/metadata/annotations",
        {**ANNOTATIONS, "stellar.org/carbon-required-regions": "us-west-2"},
    )
]

PREFER_CASES = [
    pytest.param(
        {},
        [add("/spec/affinity", {"nodeAffinity": {PREFERRED: OURS}}), *NO_ANNOTATIONS],
        id="no affinity and no annotations: add both whole",
    ),
    pytest.param(
        {"spec__affinity": None},
        [add("/spec/affinity", {"nodeAffinity": {PREFERRED: OURS}}), *NO_ANNOTATIONS],
        id="null affinity is treated as absent",
    ),
    pytest.param(
        {"spec__affinity": {"podAntiAffinity": ANTI}},
        [add(f"{NA}", {PREFERRED: OURS}), *NO_ANNOTATIONS],
        id="affinity without nodeAffinity keeps pod anti-affinity",
    ),
    pytest.param(
        {"spec__affinity": {"podAntiAffinity": ANTI, "nodeAffinity": None}},
        [add(f"{NA}", {PREFERRED: OURS}), *NO_ANNOTATIONS],
        id="null nodeAffinity is treated as absent",
    ),
    pytest.param(
        {"spec__affinity": {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [ZONE_TERM]}}}},
        [add(f"{NA}/{PREFERRED}", OURS), *NO_ANNOTATIONS],
        id="nodeAffinity with only required terms gets a preferred list",
    ),
    pytest.param(
        {"spec__affinity": {"nodeAffinity": {PREFERRED: None}}},
        [add(f"{NA}/{PREFERRED}", OURS), *NO_ANNOTATIONS],
        id="null preferred list is treated as absent",
    ),
    pytest.param(
        {"spec__affinity": {"nodeAffinity": {PREFERRED: [USER_TERM]}}},
        [add(f"{NA}/{PREFERRED}/-", T100), add(f"{NA}/{PREFERRED}/-", T43), *NO_ANNOTATIONS],
        id="existing preferred list is appended to, user term kept",
    ),
    pytest.param(
        {"metadata__annotations": {"team": "stellar-ops"}},
        [add("/spec/affinity", {"nodeAffinity": {PREFERRED: OURS}}), *annotation_ops()],
        id="existing annotations get one escaped key each",
    ),
    pytest.param(
        {"metadata__annotations": None},
        [add("/spec/affinity", {"nodeAffinity": {PREFERRED: OURS}}), *NO_ANNOTATIONS],
        id="null annotations are treated as absent",
    ),
]


@pytest.mark.parametrize(("shape", "expected"), PREFER_CASES)
def test_prefer_patch_for_each_pod_shape(shape: dict[str, Any], expected: list[Any]) -> None:
    pod = read_replica_pod(**shape)
    received = copy.deepcopy(pod)

    patch = mutate(pod, RANKING, TERMS, policy=Policy.PREFER, region_key=R, now=NOW, low_carbon=LOW)

    assert patch == expected
    assert pod == received, "the mutation must not touch the object it was given"
    patched = apply_and_validate(pod, patch)
    assert patched["metadata"]["annotations"].items() >= ANNOTATIONS.items()
    node_affinity = patched["spec"]["affinity"]["nodeAffinity"]
    assert node_affinity[PREFERRED][-2:] == OURS
    assert REQUIRED not in node_affinity or node_affinity[REQUIRED] == (
        ((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {}).get(REQUIRED)
    )


@pytest.mark.parametrize(("shape", "expected"), PREFER_CASES)
def test_second_pass_over_a_mutated_pod_yields_no_patch(
    shape: dict[str, Any], expected: list[Any]
) -> None:
    pod = read_replica_pod(**shape)
    once = jsonpatch.apply_patch(pod, expected)

    again = mutate(
        once, RANKING, TERMS, policy=Policy.REQUIRE, region_key=R, now=NOW, low_carbon=LOW
    )

    assert again == []


def test_pod_carrying_our_terms_without_annotations_yields_no_patch() -> None:
    pod = read_replica_pod(spec__affinity={"nodeAffinity": {PREFERRED: [USER_TERM, *OURS]}})

    assert mutate(pod, RANKING, TERMS, policy=Policy.PREFER, region_key=R, now=NOW) == []


def test_user_terms_keep_their_order_and_ours_follow() -> None:
    pod = read_replica_pod(spec__affinity={"nodeAffinity": {PREFERRED: [USER_TERM, T100]}})

    patch = mutate(pod, RANKING, TERMS, policy=Policy.PREFER, region_key=R, now=NOW)
    patched = apply_and_validate(pod, patch)

    assert patched["spec"]["affinity"]["nodeAffinity"][PREFERRED] == [USER_TERM, T100, T43]


def test_terms_use_the_region_key_the_nodes_carry() -> None:
    pod = read_replica_pod()

    patch = mutate(pod, RANKING, TERMS, policy=Policy.PREFER, region_key=LEGACY_REGION, now=NOW)

    preferred = patch[0]["value"]["nodeAffinity"][PREFERRED]
    assert preferred == [
        term(100, "us-west-2", key=LEGACY_REGION),
        term(43, "europe-west1", key=LEGACY_REGION),
    ]


REQUIRE_CASES = [
    pytest.param(
        {},
        [
            add(
                "/spec/affinity",
                {
                    "nodeAffinity": {
                        PREFERRED: OURS,
                        REQUIRED: {"nodeSelectorTerms": [{"matchExpressions": [REQUIRE_LOW]}]},
                    }
                },
            ),
            *REQUIRED_ANNOTATIONS,
        ],
        id="no affinity: one new required term",
    ),
    pytest.param(
        {"spec__affinity": {"nodeAffinity": {PREFERRED: [USER_TERM]}}},
        [
            add(f"{NA}/{PREFERRED}/-", T100),
            add(f"{NA}/{PREFERRED}/-", T43),
            add(f"{NA}/{REQUIRED}", {"nodeSelectorTerms": [{"matchExpressions": [REQUIRE_LOW]}]}),
            *REQUIRED_ANNOTATIONS,
        ],
        id="preferred only: required added next to it",
    ),
    pytest.param(
        {
            "spec__affinity": {
                "nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [ZONE_TERM, NAME_TERM]}}
            }
        },
        [
            add(f"{NA}/{PREFERRED}", OURS),
            add(f"{NA}/{REQUIRED}/nodeSelectorTerms/0/matchExpressions/-", REQUIRE_LOW),
            add(f"{NA}/{REQUIRED}/nodeSelectorTerms/1/matchExpressions", [REQUIRE_LOW]),
            *REQUIRED_ANNOTATIONS,
        ],
        id="OR-ed required terms: AND-ed into every one",
    ),
    pytest.param(
        {"spec__affinity": {"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": None}}}},
        [
            add(f"{NA}/{PREFERRED}", OURS),
            add(f"{NA}/{REQUIRED}/nodeSelectorTerms", [{"matchExpressions": [REQUIRE_LOW]}]),
            *REQUIRED_ANNOTATIONS,
        ],
        id="required without terms: terms created",
    ),
    pytest.param(
        {"spec__affinity": {"podAffinity": None, "nodeAffinity": {REQUIRED: None}}},
        [
            add(f"{NA}/{PREFERRED}", OURS),
            add(f"{NA}/{REQUIRED}", {"nodeSelectorTerms": [{"matchExpressions": [REQUIRE_LOW]}]}),
            *REQUIRED_ANNOTATIONS,
        ],
        id="null required is treated as absent",
    ),
]


@pytest.mark.parametrize(("shape", "expected"), REQUIRE_CASES)
def test_require_patch_for_each_pod_shape(shape: dict[str, Any], expected: list[Any]) -> None:
    pod = read_replica_pod(**shape)

    patch = mutate(
        pod, RANKING, TERMS, policy=Policy.REQUIRE, region_key=R, now=NOW, low_carbon=LOW
    )

    assert patch == expected
    patched = apply_and_validate(pod, patch)
    terms = patched["spec"]["affinity"]["nodeAffinity"][REQUIRED]["nodeSelectorTerms"]
    assert all(REQUIRE_LOW in t["matchExpressions"] for t in terms)
    assert (
        mutate(
            patched, RANKING, TERMS, policy=Policy.REQUIRE, region_key=R, now=NOW, low_carbon=LOW
        )
        == []
    )


def test_require_keeps_each_terms_own_expressions() -> None:
    pod = read_replica_pod(
        spec__affinity={"nodeAffinity": {REQUIRED: {"nodeSelectorTerms": [ZONE_TERM, NAME_TERM]}}}
    )

    patch = mutate(
        pod, RANKING, TERMS, policy=Policy.REQUIRE, region_key=R, now=NOW, low_carbon=LOW
    )
    terms = apply_and_validate(pod, patch)["spec"]["affinity"]["nodeAffinity"][REQUIRED][
        "nodeSelectorTerms"
    ]

    assert terms[0]["matchExpressions"] == [*ZONE_TERM["matchExpressions"], REQUIRE_LOW]
    assert terms[1] == {**NAME_TERM, "matchExpressions": [REQUIRE_LOW]}


def test_require_without_low_carbon_regions_only_prefers() -> None:
    pod = read_replica_pod()

    patch = mutate(pod, RANKING, TERMS, policy=Policy.REQUIRE, region_key=R, now=NOW, low_carbon=())

    assert REQUIRED not in patch[0]["value"]["nodeAffinity"]


def test_single_ranked_region_records_the_decision_without_terms() -> None:
    ranking = rank(snapshot({"us-west-2": 118.0}), ["us-west-2"], now=NOW)
    pod = read_replica_pod()

    patch = mutate(
        pod, ranking, preference_terms(ranking), policy=Policy.PREFER, region_key=R, now=NOW
    )

    assert patch == [
        add(
            "/metadata/annotations",
            {
                "stellar.org/carbon-ranking": "us-west-2=118",
                "stellar.org/carbon-decided-at": "2026-11-26T12:00:00Z",
                "stellar.org/carbon-source": "electricitymaps",
            },
        )
    ]
    apply_and_validate(pod, patch)


def test_empty_ranking_yields_no_patch() -> None:
    ranking = rank(snapshot({"us-west-2": None}), ["us-west-2"], now=NOW)

    assert (
        mutate(read_replica_pod(), ranking, (), policy=Policy.PREFER, region_key=R, now=NOW) == []
    )


@pytest.mark.parametrize(
    "shape",
    [
        pytest.param({"spec__affinity": "anywhere"}, id="affinity is a string"),
        pytest.param({"spec__affinity": {"nodeAffinity": []}}, id="nodeAffinity is a list"),
        pytest.param(
            {"spec__affinity": {"nodeAffinity": {PREFERRED: {}}}}, id="preferred is an object"
        ),
        pytest.param({"metadata__annotations": ["a"]}, id="annotations is a list"),
    ],
)
def test_malformed_shapes_raise_instead_of_emitting_a_patch_that_would_not_apply(
    shape: dict[str, Any],
) -> None:
    with pytest.raises(MutationError):
        mutate(
            read_replica_pod(**shape), RANKING, TERMS, policy=Policy.PREFER, region_key=R, now=NOW
        )


@pytest.mark.parametrize(
    ("key", "token"),
    [
        ("stellar.org/carbon-ranking", "stellar.org~1carbon-ranking"),
        ("a~b/c", "a~0b~1c"),
        ("~/", "~0~1"),
    ],
)
def test_pointer_tokens_escape_tilde_before_slash(key: str, token: str) -> None:
    assert pointer_token(key) == token
    doc = jsonpatch.apply_patch({"m": {}}, [{"op": "add", "path": f"/m/{token}", "value": 1}])
    assert doc == {"m": {key: 1}}

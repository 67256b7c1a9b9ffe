"""Hostile AdmissionReviews, generated: every one is answered, never blocked, and every patch
applies to the pod as sent.

Pods are drawn from the shapes the mutation reads (node affinity in every form the API accepts,
plus nulls, empty lists and wrong types where a hostile client could put them), with and without
the pool rules (hard spread constraints, required anti-affinity) and carbon policies. Reviews
around them are drawn with wrong types, deep nesting and huge values in the fields the parser
quotes. ``admit`` is driven directly for speed; the HTTP edge has its own tests in
``test_app.py``. Example counts come from the Hypothesis profile (``make fuzz`` runs many more).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import jsonpatch
import kubernetes_validate
from hypothesis import given
from hypothesis import strategies as st

from shared.core.clock import fixed
from shared.scoring.tiers import TIER_LABEL
from tests.unit.webhook.builders import (
    K8S_SCHEMA,
    NOW,
    THREE_REGIONS,
    cluster,
    read_replica_pod,
    review,
    snapshot,
)
from webhook.admission import Placement, admit
from webhook.errors import BadReview
from webhook.review import decode_patch, parse_review
from webhook.settings import Policy

REGIONS = ["us-west-2", "europe-west1", "ap-south-1", "nowhere-1"]
KEYS = ["topology.kubernetes.io/region", "kubernetes.io/hostname", "disk"]
NODES = cluster()
TIERED_NODES = {
    name: dataclasses.replace(n, labels={**n.labels, TIER_LABEL: str(tier)})
    for (name, n), tier in zip(NODES.items(), (0, 0, 2, 5), strict=True)
}
"""The same nodes labelled by the tier component: read replicas get terms on tiers."""
CARBON = snapshot(THREE_REGIONS)
JUNK = st.one_of(
    st.integers(-(2**70), 2**70), st.text(max_size=20), st.booleans(), st.lists(st.none())
)
"""Values of the wrong type for any member."""


def _maybe(strategy: st.SearchStrategy[Any], *extra: st.SearchStrategy[Any]) -> Any:
    """``strategy`` most of the time, else null, an empty value or junk of the wrong type."""
    return st.one_of(strategy, strategy, strategy, st.none(), JUNK, *extra)


expressions = st.one_of(
    st.fixed_dictionaries(
        {
            "key": st.sampled_from(KEYS),
            "operator": st.sampled_from(["In", "NotIn"]),
            "values": st.lists(st.sampled_from(REGIONS), min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries(
        {"key": st.sampled_from(KEYS), "operator": st.sampled_from(["Exists", "DoesNotExist"])}
    ),
)
fields = st.fixed_dictionaries(
    {
        "key": st.just("metadata.name"),
        "operator": st.sampled_from(["In", "NotIn"]),
        "values": st.lists(st.sampled_from(list(NODES)), min_size=1, max_size=2),
    }
)
selector_terms = st.fixed_dictionaries(
    {},
    optional={
        "matchExpressions": _maybe(st.lists(_maybe(expressions), max_size=3)),
        "matchFields": _maybe(st.lists(_maybe(fields), max_size=2)),
    },
)
preferred_terms = st.fixed_dictionaries(
    {"weight": st.integers(1, 100), "preference": _maybe(selector_terms)}
)
node_affinity = st.fixed_dictionaries(
    {},
    optional={
        "requiredDuringSchedulingIgnoredDuringExecution": _maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "nodeSelectorTerms": _maybe(st.lists(_maybe(selector_terms), max_size=4))
                },
            )
        ),
        "preferredDuringSchedulingIgnoredDuringExecution": _maybe(
            st.lists(_maybe(preferred_terms), max_size=3)
        ),
    },
)
POOL_LABELS = {"app.kubernetes.io/instance": "mainnet-core"}
spread = st.fixed_dictionaries(
    {
        "maxSkew": st.integers(1, 3),
        "topologyKey": st.sampled_from(["topology.kubernetes.io/region", "kubernetes.io/hostname"]),
        "whenUnsatisfiable": st.sampled_from(["DoNotSchedule", "ScheduleAnyway"]),
        "labelSelector": st.just({"matchLabels": POOL_LABELS}),
    }
)
anti_affinity = st.fixed_dictionaries(
    {
        "requiredDuringSchedulingIgnoredDuringExecution": st.lists(
            st.fixed_dictionaries(
                {
                    "topologyKey": st.sampled_from(
                        ["kubernetes.io/hostname", "topology.kubernetes.io/region"]
                    ),
                    "labelSelector": st.just({"matchLabels": POOL_LABELS}),
                }
            ),
            min_size=1,
            max_size=2,
        )
    }
)
affinity = st.fixed_dictionaries(
    {}, optional={"nodeAffinity": _maybe(node_affinity), "podAntiAffinity": anti_affinity}
)
annotations = st.dictionaries(
    st.sampled_from(
        ["stellar.org/carbon-policy", "stellar.org/carbon-aware", "a~b/c", "example.com/x"]
    ),
    st.sampled_from(["require", "prefer", "enabled", "disabled", "", "x"]),
    max_size=3,
)


required_terms = st.lists(
    st.one_of(st.none(), st.just({}), selector_terms, st.just({"matchExpressions": None})),
    min_size=1,
    max_size=4,
).map(
    # One term every region passes, so the pod stays eligible and the set is AND-ed in.
    lambda terms: [
        *terms,
        {"matchExpressions": [{"key": KEYS[0], "operator": "In", "values": REGIONS}]},
    ]
)


@st.composite
def pods(draw: st.DrawFn) -> dict[str, Any]:
    pod = read_replica_pod()
    spec = pod["spec"]
    if draw(st.booleans()):
        spec["affinity"] = draw(_maybe(affinity))
    elif draw(st.booleans()):
        # Required terms with null and empty elements among well-formed ones: the case a
        # ``require`` decision writes into.
        terms = draw(st.permutations(draw(required_terms)))
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
            }
        }
    if draw(st.booleans()):
        spec["topologySpreadConstraints"] = draw(st.lists(spread, min_size=1, max_size=2))
    if draw(st.booleans()):
        spec["nodeSelector"] = draw(
            _maybe(st.dictionaries(st.sampled_from(KEYS), st.sampled_from(REGIONS), max_size=1))
        )
    metadata = pod["metadata"]
    metadata["labels"].update(POOL_LABELS)
    if draw(st.booleans()):
        metadata["annotations"] = draw(_maybe(annotations))
    for member, parent in (("spec", pod), ("metadata", pod), ("affinity", spec)):
        if draw(st.integers(0, 9)) == 0:
            parent[member] = None
    return pod


def _decide(pod: dict[str, Any], policy: Policy, *, tiered: bool = False) -> Any:
    request = parse_review(json.dumps(review(pod)))
    nodes = TIERED_NODES if tiered else NODES
    return admit(
        request,
        carbon=lambda: CARBON,
        nodes=lambda: nodes,
        placement=Placement(default_policy=policy),
        clock=fixed(NOW),
    )


def _schema_valid(pod: dict[str, Any]) -> bool:
    """The API server would take the pod (its schema, and a spec: the containers are required)."""
    if not isinstance(pod.get("spec"), dict):
        return False
    try:
        kubernetes_validate.validate(pod, K8S_SCHEMA, strict=True)
    except kubernetes_validate.ValidationError:
        return False
    return True


@given(pod=pods(), policy=st.sampled_from(list(Policy)), tiered=st.booleans())
def test_every_pod_is_allowed_and_every_patch_applies_and_keeps_it_a_pod(
    pod: dict[str, Any], policy: Policy, tiered: bool
) -> None:
    sent = copy.deepcopy(pod)
    admission = _decide(pod, policy, tiered=tiered)

    assert admission.response["response"]["allowed"] is True
    assert admission.outcome != "error"
    patch = decode_patch(admission.response)
    patched = jsonpatch.apply_patch(copy.deepcopy(sent), patch)  # raises if it does not apply
    if patch and _schema_valid(sent):
        kubernetes_validate.validate(patched, K8S_SCHEMA, strict=True)


class Raw:
    """JSON written as text, for values the standard library cannot write (or read back)."""

    def __init__(self, text: str) -> None:
        self.text = text

    @classmethod
    def nested(cls, depth: int) -> Raw:
        return cls('{"a":[' * (depth // 2) + "1" + "]}" * (depth // 2))


# Around the interpreter's recursion limit and orjson's 1024 levels is where recursion fails.
depths = st.one_of(st.integers(0, 100), st.integers(900, 1100), st.integers(1100, 3000))
hostile_values = st.one_of(
    st.none(),
    JUNK,
    depths.map(Raw.nested),
    st.text(min_size=1000, max_size=5000),
    st.floats(allow_nan=True),
    st.integers(10**30, 10**31),
    # Beyond 64 bits orjson refuses; beyond 4,300 digits Python's int() refuses too.
    st.integers(4000, 5000).map(lambda digits: Raw("9" * digits)),
)


def _to_json(value: Any) -> str:
    """``json.dumps`` that writes ``Raw`` values as their text."""
    marks: dict[str, str] = {}

    def default(raw: Raw) -> str:
        mark = f"@raw{len(marks)}@"
        marks[mark] = raw.text
        return mark

    text = json.dumps(value, default=default)
    for mark, raw_text in marks.items():
        text = text.replace(json.dumps(mark), raw_text)
    return text


REVIEW_FIELDS = ["apiVersion", "kind", "request"]
REQUEST_FIELDS = ["uid", "kind", "operation", "object", "namespace", "name", "dryRun"]


@given(
    top=st.dictionaries(st.sampled_from(REVIEW_FIELDS), hostile_values, max_size=2),
    inner=st.dictionaries(st.sampled_from(REQUEST_FIELDS), hostile_values, max_size=3),
)
def test_a_hostile_review_is_a_bad_review_or_an_allowed_pod(
    top: dict[str, Any], inner: dict[str, Any]
) -> None:
    body = review(read_replica_pod())
    body["request"].update(inner)
    body.update(top)
    try:
        request = parse_review(_to_json(body))
    except BadReview as e:
        reason = str(e)
    else:
        reason = ""
    if reason:
        assert "\n" not in reason
        assert len(reason) < 300
        return
    admission = admit(
        request,
        carbon=lambda: CARBON,
        nodes=lambda: NODES,
        placement=Placement(),
        clock=fixed(NOW),
    )
    assert admission.response["response"]["allowed"] is True
    patch = decode_patch(admission.response)
    # Only a patch needs the copy: an object nested near orjson's 1,024 levels, which a skipped
    # review may carry, is deeper than ``copy.deepcopy`` can recurse.
    if patch:
        jsonpatch.apply_patch(copy.deepcopy(request.object), patch)

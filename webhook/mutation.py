"""The pure core of the webhook: a pod and a ranking in, a JSON patch out.

The patch is built as explicit ``add`` operations against the pod exactly as received, so it always
applies: each operation targets the nearest member that is missing (``null`` counts as missing), and
existing lists are appended to with ``/-``. Nothing the pod already has is replaced: user terms,
required terms and pod (anti-)affinity stay as they are. A patch that fails to apply would make the
API server reject the pod even with ``failurePolicy: Ignore``, which is why this module is careful.

==========================================  ===============================================
observed pod                                operation (``…/preferred`` = ``/spec/affinity/
                                            nodeAffinity/preferredDuringScheduling…``)
==========================================  ===============================================
no ``spec.affinity``                        add ``/spec/affinity`` {nodeAffinity: {…}}
affinity without ``nodeAffinity``           add ``/spec/affinity/nodeAffinity`` {…}
nodeAffinity without a preferred list       add ``…/preferred`` [T…]
a preferred list                            add ``…/preferred/-`` T, once per term
no ``metadata.annotations``                 add ``/metadata/annotations`` {all three}
==========================================  ===============================================

Under ``require``, the low-carbon region set is AND-ed into every existing required
``nodeSelectorTerm`` (the terms are OR-ed, so it has to go into each), or becomes the only term.
A null or empty term matches no node and is left as it is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.cluster.workloads import REQUIRED_REGIONS_ANNOTATION
from shared.core.clock import rfc3339
from shared.core.shapes import array_reader, object_reader
from shared.scoring.ranking import PreferenceTerm, Ranking
from webhook.errors import MutationError
from webhook.review import JsonPatchOp
from webhook.settings import Policy

# A wrong type anywhere the decision reads makes the pod unsupported (admitted unchanged).
_object = object_reader(MutationError)
_array = array_reader(MutationError)

RANKING_ANNOTATION = "stellar.org/carbon-ranking"
DECIDED_AT_ANNOTATION = "stellar.org/carbon-decided-at"
SOURCE_ANNOTATION = "stellar.org/carbon-source"
DECISION_ANNOTATIONS = (RANKING_ANNOTATION, DECIDED_AT_ANNOTATION, SOURCE_ANNOTATION)

PREFERRED = "preferredDuringSchedulingIgnoredDuringExecution"
REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_NODE_AFFINITY_PATH = "/spec/affinity/nodeAffinity"


def mutate(
    pod: Mapping[str, Any],
    ranking: Ranking,
    terms: Sequence[PreferenceTerm],
    *,
    policy: Policy,
    region_key: str,
    now: datetime,
    low_carbon: Sequence[str] = (),
    annotations: Mapping[str, str] | None = None,
) -> list[JsonPatchOp]:
    """The JSON patch that applies a placement decision to ``pod``; ``[]`` when there is none.

    ``terms`` become preferred node-affinity terms on ``region_key``. Under ``Policy.REQUIRE`` a
    non-empty ``low_carbon`` (regions the caller checked have schedulable eligible nodes) also
    becomes a required constraint, recorded in ``stellar.org/carbon-required-regions``. A pod
    that already carries the decision annotations, or all of the terms this call would add,
    yields no patch: the mutation is idempotent. ``annotations`` are
    ``decision_annotations(ranking, now)`` when the caller has the texts at hand already.
    """
    if already_decided(pod) or not ranking.scores:
        return []
    requirement = (
        region_requirement(region_key, low_carbon)
        if policy is Policy.REQUIRE and low_carbon
        else None
    )
    if annotations is None:
        annotations = decision_annotations(ranking, now)
    return patch_for(
        pod,
        [preferred_term(term, region_key) for term in terms],
        requirement,
        annotations,
        required_regions=requirement["values"] if requirement is not None else (),
    )


def patch_for(
    pod: Mapping[str, Any],
    preferred: Sequence[dict[str, Any]],
    requirement: dict[str, Any] | None,
    annotations: Mapping[str, str],
    *,
    required_regions: Sequence[str] = (),
) -> list[JsonPatchOp]:
    """The patch that adds ``preferred`` terms, AND-s ``requirement`` (a ``matchExpression``)
    into the required terms and sets ``annotations``; ``[]`` for a pod already decided or
    already carrying all of ``preferred``.

    With a requirement, ``required_regions`` (the regions it lets the pod into) go into
    ``stellar.org/carbon-required-regions``."""
    if already_decided(pod):
        return []
    our_terms = list(preferred)
    node_affinity = _member(pod, "spec", "affinity", "nodeAffinity")
    existing_preferred = _array(node_affinity.get(PREFERRED), f"nodeAffinity.{PREFERRED}")
    if our_terms and existing_preferred and all(term in existing_preferred for term in our_terms):
        return []
    ops = _affinity_ops(pod, our_terms, requirement)
    if requirement is not None:
        # Says the pod is restricted, so a pod the set leaves Pending can be told apart later.
        annotations = {**annotations, REQUIRED_REGIONS_ANNOTATION: ",".join(required_regions)}
    ops.extend(_annotation_ops(pod, annotations))
    return ops


PatchShape = tuple[int, int]
"""What a patch for a pod without node affinity depends on in the pod (``patch_shape``)."""


def patch_shape(pod: Mapping[str, Any]) -> PatchShape | None:
    """All ``patch_for`` reads of ``pod`` when the pod has no node affinity yet: how many members
    of ``spec.affinity.nodeAffinity`` and of ``metadata.annotations`` it has (0 to 2 each; ``null``
    counts as missing). Two pods of one shape get the same patch for the same decision.

    None when the pod has node affinity (the patch then depends on its terms) or a member on
    those paths that is not an object (``patch_for`` says what is wrong with it)."""
    affinity_depth = _reach(pod, ("spec", "affinity", "nodeAffinity"))
    annotations_depth = _reach(pod, ("metadata", "annotations"))
    if affinity_depth is None or affinity_depth > 2 or annotations_depth is None:
        return None
    return affinity_depth, annotations_depth


def _reach(obj: Mapping[str, Any], keys: Sequence[str]) -> int | None:
    """How many of ``keys`` lead from ``obj`` through objects (``null`` ends the path); None when
    one leads to something else."""
    depth = 0
    for key in keys:
        value = obj.get(key)
        if value is None:
            break
        if type(value) is not dict:
            return None
        obj, depth = value, depth + 1
    return depth


def already_decided(pod: Mapping[str, Any]) -> bool:
    """The pod carries the annotations of an earlier decision (reinvocation, or a copied pod)."""
    metadata = _object(pod.get("metadata"), "metadata")
    annotations = _object(metadata.get("annotations"), "metadata.annotations")
    return RANKING_ANNOTATION in annotations or DECIDED_AT_ANNOTATION in annotations


def preferred_term(term: PreferenceTerm, region_key: str) -> dict[str, Any]:
    """A ``PreferredSchedulingTerm`` for one weight group."""
    if not 1 <= term.weight <= 100:
        raise MutationError(f"preference weight {term.weight} is outside 1..100")
    return {
        "weight": term.weight,
        "preference": {
            "matchExpressions": [
                {"key": region_key, "operator": "In", "values": list(term.regions)}
            ]
        },
    }


def region_requirement(region_key: str, regions: Sequence[str]) -> dict[str, Any]:
    """The ``matchExpression`` the require policy AND-s into the required terms."""
    return {"key": region_key, "operator": "In", "values": sorted(set(regions))}


def decision_annotations(ranking: Ranking, now: datetime) -> dict[str, str]:
    """What the decision was based on: the ranking, when, and which sources."""
    return annotations_from(ranking.annotation(), ",".join(ranking.sources()), rfc3339(now))


def annotations_from(ranking_text: str, sources_text: str, decided_at: str) -> dict[str, str]:
    """``decision_annotations`` from its texts (``Ranking.annotation``, the sources joined by
    commas, ``rfc3339(now)``), for callers that keep them with a ranking they reuse."""
    return {
        RANKING_ANNOTATION: ranking_text,
        DECIDED_AT_ANNOTATION: decided_at,
        SOURCE_ANNOTATION: sources_text,
    }


def pointer_token(key: str) -> str:
    """Escape a map key for a JSON Pointer (RFC 6901 §3): ``~`` first, then ``/``."""
    return key.replace("~", "~0").replace("/", "~1")


def _affinity_ops(
    pod: Mapping[str, Any],
    our_terms: list[dict[str, Any]],
    requirement: dict[str, Any] | None,
) -> list[JsonPatchOp]:
    additions: dict[str, Any] = {}
    if our_terms:
        additions[PREFERRED] = our_terms
    if requirement is not None:
        additions[REQUIRED] = {"nodeSelectorTerms": [{"matchExpressions": [requirement]}]}
    if not additions:
        return []

    # Walk down as far as the pod goes; the first missing member receives the rest as one value.
    spec = _object(pod.get("spec"), "spec")
    if pod.get("spec") is None:
        return [_add("/spec", {"affinity": {"nodeAffinity": additions}})]
    affinity = _object(spec.get("affinity"), "spec.affinity")
    if spec.get("affinity") is None:
        return [_add("/spec/affinity", {"nodeAffinity": additions})]
    node_affinity = _object(affinity.get("nodeAffinity"), "spec.affinity.nodeAffinity")
    if affinity.get("nodeAffinity") is None:
        return [_add(_NODE_AFFINITY_PATH, additions)]

    ops: list[JsonPatchOp] = []
    if our_terms:
        preferred_path = f"{_NODE_AFFINITY_PATH}/{PREFERRED}"
        if node_affinity.get(PREFERRED) is None:
            ops.append(_add(preferred_path, our_terms))
        else:
            existing = _array(node_affinity.get(PREFERRED), f"nodeAffinity.{PREFERRED}")
            ops.extend(_add(f"{preferred_path}/-", t) for t in our_terms if t not in existing)
    if requirement is not None:
        ops.extend(_required_ops(node_affinity, requirement))
    return ops


def _required_ops(
    node_affinity: Mapping[str, Any], requirement: dict[str, Any]
) -> list[JsonPatchOp]:
    """AND ``requirement`` into every required term, or create the one term."""
    required_path = f"{_NODE_AFFINITY_PATH}/{REQUIRED}"
    new_term = {"matchExpressions": [requirement]}
    if node_affinity.get(REQUIRED) is None:
        return [_add(required_path, {"nodeSelectorTerms": [new_term]})]
    required = _object(node_affinity.get(REQUIRED), f"nodeAffinity.{REQUIRED}")
    terms_path = f"{required_path}/nodeSelectorTerms"
    if required.get("nodeSelectorTerms") is None:
        return [_add(terms_path, [new_term])]
    terms = _array(required.get("nodeSelectorTerms"), "nodeSelectorTerms")
    if not terms:
        return [_add(f"{terms_path}/-", new_term)]
    ops: list[JsonPatchOp] = []
    for index, raw_term in enumerate(terms):
        term = _object(raw_term, f"nodeSelectorTerms[{index}]")
        if not term.get("matchExpressions") and not term.get("matchFields"):
            # A null or empty term matches no node (the API server decodes a null element as an
            # empty term) and must keep matching none: AND-ing the set in would widen the pod's
            # placement, and an ``add`` under a null element would not apply.
            continue
        expressions_path = f"{terms_path}/{index}/matchExpressions"
        if term.get("matchExpressions") is None:
            ops.append(_add(expressions_path, [requirement]))
            continue
        expressions = _array(term.get("matchExpressions"), f"nodeSelectorTerms[{index}]")
        if requirement not in expressions:
            ops.append(_add(f"{expressions_path}/-", requirement))
    return ops


def _annotation_ops(pod: Mapping[str, Any], annotations: Mapping[str, str]) -> list[JsonPatchOp]:
    if pod.get("metadata") is None:
        return [_add("/metadata", {"annotations": dict(annotations)})]
    metadata = _object(pod.get("metadata"), "metadata")
    if metadata.get("annotations") is None:
        return [_add("/metadata/annotations", dict(annotations))]
    return [
        _add(_ANNOTATION_PATHS.get(key) or _annotation_path(key), value)
        for key, value in annotations.items()
    ]


def _annotation_path(key: str) -> str:
    return f"/metadata/annotations/{pointer_token(key)}"


_ANNOTATION_PATHS = {
    key: _annotation_path(key) for key in (*DECISION_ANNOTATIONS, REQUIRED_REGIONS_ANNOTATION)
}


def _add(path: str, value: Any) -> JsonPatchOp:
    return {"op": "add", "path": path, "value": value}


def _member(obj: Mapping[str, Any], *keys: str) -> Mapping[str, Any]:
    """The object at ``keys``; a missing or ``null`` member reads as empty."""
    current: Mapping[str, Any] = obj
    for depth, key in enumerate(keys, start=1):
        value = current.get(key)
        # The dotted path is only spelled out for the error a wrong type raises.
        current = value if type(value) is dict else _object(value, ".".join(keys[:depth]))
    return current

"""Which regions could run a pod at all: the scheduler's hard filters, applied to the inventory.

Pure. A region is eligible when at least one schedulable node there satisfies the pod's
``nodeSelector``, its required node affinity and has no NoSchedule/NoExecute taint the pod does not
tolerate. Only eligible regions are ranked, so the webhook never prefers (or requires) a region the
pod cannot land in. Matching follows kube-scheduler (component-helpers ``nodeaffinity`` and
``ToleratesTaint``): terms are OR-ed, expressions within a term AND-ed, an empty term matches
nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.cluster.inventory import NodeInfo
from shared.cluster.topology import tolerated
from shared.core.shapes import array_reader, object_reader
from shared.scoring.tiers import TIER_LABEL, tier_value
from webhook.errors import MutationError

# A wrong type anywhere the decision reads makes the pod unsupported (admitted unchanged).
_object = object_reader(MutationError)
_array = array_reader(MutationError)

TOPOLOGY_REGION = "topology.kubernetes.io/region"
LEGACY_REGION = "failure-domain.beta.kubernetes.io/region"
REGION_LABELS = (TOPOLOGY_REGION, LEGACY_REGION)
"""Well-known region label keys, preferred in this order over any configured key."""

_HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


@dataclass(frozen=True, slots=True)
class Eligibility:
    """Eligible regions and the label key that names them on the nodes."""

    regions: Mapping[str, int]
    """Region → number of nodes there that could run the pod."""
    region_key: str | None
    """Label key carrying the region on those nodes; None when no eligible node has a region."""
    nodes: int = 0
    """Eligible nodes in total, including those without a region label."""
    tiers: Mapping[int, int] = field(default_factory=dict)
    """Carbon tier (``carbon.stellar.org/tier``) → regioned eligible nodes carrying it."""
    tier_regions: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """Carbon tier → the regions (sorted) of the regioned eligible nodes carrying it."""


@dataclass(frozen=True, slots=True)
class Constraints:
    """A pod's hard placement constraints, read once from its spec."""

    node_selector: Mapping[str, str]
    required_terms: tuple[Mapping[str, Any], ...] | None
    """``nodeSelectorTerms`` of the required node affinity; None when the pod has none."""
    tolerations: tuple[Mapping[str, Any], ...]

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any]) -> Constraints:
        spec = _object(pod.get("spec"), "spec")
        selector = _object(spec.get("nodeSelector"), "spec.nodeSelector")
        affinity = _object(spec.get("affinity"), "spec.affinity")
        node_affinity = _object(affinity.get("nodeAffinity"), "spec.affinity.nodeAffinity")
        required = node_affinity.get(_REQUIRED)
        terms: tuple[Mapping[str, Any], ...] | None = None
        if required is not None:
            required = _object(required, f"nodeAffinity.{_REQUIRED}")
            terms = tuple(
                _object(term, "nodeSelectorTerms[]")
                for term in _array(required.get("nodeSelectorTerms"), "nodeSelectorTerms")
            )
        tolerations = tuple(
            _object(t, "spec.tolerations[]") for t in _array(spec.get("tolerations"), "tolerations")
        )
        return cls(
            node_selector={str(k): str(v) for k, v in selector.items()},
            required_terms=terms,
            tolerations=tolerations,
        )

    def admits(self, node: NodeInfo) -> bool:
        """The scheduler's filters for this pod would let it onto ``node``."""
        if not node.schedulable or not self.selects(node):
            return False
        # Plain loops rather than any()/all() over generators: this runs once per node, and a
        # cluster has thousands.
        for taint in node.taints:
            if taint.effect in _HARD_EFFECTS and not tolerated(self.tolerations, taint):
                return False
        return True

    def selects(self, node: NodeInfo) -> bool:
        """The pod's node selector and required node affinity match ``node``, whatever its taints
        and schedulability."""
        labels = node.labels
        for key, value in self.node_selector.items():
            if labels.get(key) != value:
                return False
        return self.required_terms is None or any(
            term_matches(term, node) for term in self.required_terms
        )


def eligible_regions(pod: Mapping[str, Any], nodes: Iterable[NodeInfo]) -> Eligibility:
    """Count, per region, the nodes that could run ``pod``. Raises ``MutationError`` on a spec
    whose constraints have the wrong JSON types (the API server would reject it anyway)."""
    constraints = Constraints.from_pod(pod)
    eligible = [node for node in nodes if constraints.admits(node)]
    key = region_key(eligible)
    if key is None:
        return Eligibility(regions={}, region_key=None, nodes=len(eligible))
    counts = Counter(node.labels[key] for node in eligible if node.labels.get(key))
    tiers: Counter[int] = Counter()
    tier_regions: dict[int, set[str]] = {}
    for node in eligible:
        region = node.labels.get(key)
        tier = tier_value(node.labels.get(TIER_LABEL))
        if region and tier is not None:
            tiers[tier] += 1
            tier_regions.setdefault(tier, set()).add(region)
    return Eligibility(
        regions=dict(counts),
        region_key=key,
        nodes=len(eligible),
        tiers=dict(tiers),
        tier_regions={tier: tuple(sorted(names)) for tier, names in tier_regions.items()},
    )


def region_key(nodes: Sequence[NodeInfo]) -> str | None:
    """The region label key to write affinity terms with.

    Prefer a key every regioned node carries (well-known keys first, then the configured ones the
    inventory reported); in a cluster mid-migration between keys, the key most nodes carry.
    """
    regioned = [node for node in nodes if node.region_label]
    if not regioned:
        return None
    reported = {node.region_label for node in regioned if node.region_label}
    candidates = [*REGION_LABELS, *sorted(k for k in reported if k not in REGION_LABELS)]
    carried = dict.fromkeys(candidates, 0)
    for node in regioned:
        labels = node.labels
        for key in candidates:
            if labels.get(key):
                carried[key] += 1
    for key in candidates:
        if carried[key] == len(regioned):
            return key
    return max(candidates, key=lambda key: carried[key])


def term_matches(term: Mapping[str, Any], node: NodeInfo) -> bool:
    """One nodeSelectorTerm: all expressions and fields must hold; an empty term matches nothing."""
    expressions = _array(term.get("matchExpressions"), "matchExpressions")
    fields = _array(term.get("matchFields"), "matchFields")
    if not expressions and not fields:
        return False
    return all(
        _expression_matches(_object(e, "matchExpressions[]"), node.labels) for e in expressions
    ) and all(_field_matches(_object(f, "matchFields[]"), node) for f in fields)


def _expression_matches(expression: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key = expression.get("key")
    operator = expression.get("operator")
    values = [str(v) for v in _array(expression.get("values"), "values")]
    if not isinstance(key, str):
        return False
    present = key in labels
    value = labels.get(key)
    match operator:
        case "In":
            return present and value in values
        case "NotIn":
            return not present or value not in values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case "Gt" | "Lt":
            if not present or len(values) != 1:
                return False
            try:
                have, bound = int(str(value)), int(values[0])
            except ValueError:
                return False
            return have > bound if operator == "Gt" else have < bound
        case _:
            # The API server rejects unknown operators; a term using one selects nothing.
            return False


def _field_matches(requirement: Mapping[str, Any], node: NodeInfo) -> bool:
    if requirement.get("key") != "metadata.name":
        return False  # the only field selector node affinity supports
    values = [str(v) for v in _array(requirement.get("values"), "values")]
    match requirement.get("operator"):
        case "In":
            return node.name in values
        case "NotIn":
            return node.name not in values
        case _:
            return False

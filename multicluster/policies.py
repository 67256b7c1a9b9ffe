"""The policies the controller weighs, the workloads they place, and what it writes on them.

Pure. A PropagationPolicy or ClusterPropagationPolicy is the controller's when it carries the
annotation ``stellar.org/carbon-aware: "enabled"`` (or ``"true"``); every other policy is never
read further, let alone written. The replicas a policy divides come from Karmada's
ResourceBindings (``work.karmada.io/v1alpha2``), which name their policy in annotations.

What is written is a server-side apply body holding only
``spec.placement.replicaScheduling.weightPreference.staticWeightList`` and the decision
annotations, with the policy's ``resourceVersion`` so a policy changed since it was read answers
409 instead of taking weights decided for its old placement. Dry-run bodies hold the annotations
only, plus the list as it is when this field manager already owns it: an apply that left out a
field it owns would delete that field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from multicluster.placement import Placement, PolicyError, PolicyKind
from shared.cluster.manifest import mapping, object_name, string_map
from shared.core.clock import rfc3339

API_VERSION: Final = "policy.karmada.io/v1alpha1"
OPT_IN_ANNOTATION: Final = "stellar.org/carbon-aware"
# The decision annotations say on a policy what the webhook's say on a pod.
RANKING_ANNOTATION: Final = "stellar.org/carbon-ranking"
DECIDED_AT_ANNOTATION: Final = "stellar.org/carbon-decided-at"
SOURCE_ANNOTATION: Final = "stellar.org/carbon-source"
WEIGHTS_ANNOTATION: Final = "stellar.org/carbon-weights"
"""The weights this controller wrote (apply mode)."""
PROPOSED_ANNOTATION: Final = "stellar.org/carbon-proposed-weights"
"""The weights it would write (dry-run mode)."""
POLICY_NAME_ANNOTATION: Final = "propagationpolicy.karmada.io/name"
POLICY_NAMESPACE_ANNOTATION: Final = "propagationpolicy.karmada.io/namespace"
CLUSTER_POLICY_ANNOTATION: Final = "clusterpropagationpolicy.karmada.io/name"
_ENABLED = frozenset({"enabled", "true"})
_WEIGHTS_PATH: Final = ("f:spec", "f:placement", "f:replicaScheduling", "f:weightPreference")


@dataclass(frozen=True, slots=True, order=True)
class PolicyRef:
    """Which policy: kind, namespace (empty for a ClusterPropagationPolicy) and name."""

    kind: PolicyKind
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{where}{self.name}"


@dataclass(frozen=True, slots=True)
class WatchedPolicy:
    """An opted-in policy as the controller last read it."""

    ref: PolicyRef
    resource_version: str
    annotations: Mapping[str, str]
    placement: Placement | None
    """None when the placement cannot be read (``problem`` says why)."""
    problem: str | None = None
    owned_weights: tuple[Mapping[str, Any], ...] | None = None
    """The ``staticWeightList`` as it is, when this controller's field manager owns it."""

    @property
    def last_change(self) -> datetime | None:
        """When the weights were last decided, from the policy's own annotation (so a restart or
        the other replica keeps the dwell)."""
        text = self.annotations.get(DECIDED_AT_ANNOTATION)
        if not text:
            return None
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None


def opted_in(manifest: Mapping[str, Any]) -> bool:
    metadata = mapping(manifest.get("metadata"), "metadata")
    annotations = mapping(metadata.get("annotations"), "metadata.annotations")
    value = annotations.get(OPT_IN_ANNOTATION)
    return isinstance(value, str) and value.strip().casefold() in _ENABLED


def policy_from_manifest(
    manifest: Mapping[str, Any], kind: PolicyKind, *, manager: str
) -> WatchedPolicy | None:
    """The policy, or None when it has not opted in. A placement it cannot read is kept with the
    problem, so it is reported rather than silently skipped."""
    if not opted_in(manifest):
        return None
    metadata = mapping(manifest.get("metadata"), "metadata")
    name = object_name(metadata, kind.value)
    namespace = str(metadata.get("namespace") or "") if kind is PolicyKind.PROPAGATION else ""
    ref = PolicyRef(kind, namespace, name)
    annotations = string_map(metadata.get("annotations"), f"{ref}: metadata.annotations")
    spec = mapping(manifest.get("spec"), f"{ref}: spec")
    placement: Placement | None = None
    problem = None
    try:
        placement = Placement.from_manifest(spec)
    except PolicyError as e:
        problem = str(e)
    owned = None
    if _owns_weights(metadata.get("managedFields"), manager):
        scheduling = mapping(
            mapping(spec.get("placement"), "placement").get("replicaScheduling"), "scheduling"
        )
        preference = mapping(scheduling.get("weightPreference"), "weightPreference")
        items = preference.get("staticWeightList")
        owned = tuple(item for item in items if isinstance(item, Mapping)) if items else ()
    return WatchedPolicy(
        ref=ref,
        resource_version=str(metadata.get("resourceVersion") or ""),
        annotations=annotations,
        placement=placement,
        problem=problem,
        owned_weights=owned,
    )


def _owns_weights(managed: object, manager: str) -> bool:
    """Whether ``manager`` applied ``staticWeightList`` (``metadata.managedFields``)."""
    if not isinstance(managed, list):
        return False
    for entry in managed:
        if not isinstance(entry, Mapping) or entry.get("manager") != manager:
            continue
        if entry.get("operation") != "Apply":
            continue
        fields: object = entry.get("fieldsV1")
        for step in _WEIGHTS_PATH:
            fields = fields.get(step) if isinstance(fields, Mapping) else None
        if isinstance(fields, Mapping) and "f:staticWeightList" in fields:
            return True
    return False


def binding_policy(manifest: Mapping[str, Any], cluster_scoped: bool) -> PolicyRef | None:
    """The policy a ResourceBinding (or ClusterResourceBinding) was made by, from its
    annotations; None when it names none."""
    metadata = mapping(manifest.get("metadata"), "metadata")
    annotations = mapping(metadata.get("annotations"), "metadata.annotations")
    cluster_policy = annotations.get(CLUSTER_POLICY_ANNOTATION)
    name = annotations.get(POLICY_NAME_ANNOTATION)
    if isinstance(name, str) and name and not cluster_scoped:
        namespace = annotations.get(POLICY_NAMESPACE_ANNOTATION) or metadata.get("namespace")
        return PolicyRef(PolicyKind.PROPAGATION, str(namespace or ""), name)
    if isinstance(cluster_policy, str) and cluster_policy:
        return PolicyRef(PolicyKind.CLUSTER_PROPAGATION, "", cluster_policy)
    return None


def binding_replicas(manifest: Mapping[str, Any]) -> int:
    """``spec.replicas`` of a binding (0 for a resource without replicas)."""
    spec = mapping(manifest.get("spec"), "spec")
    replicas = spec.get("replicas")
    return replicas if type(replicas) is int and replicas > 0 else 0


@dataclass(frozen=True, slots=True)
class Annotations:
    """The decision annotations of one write."""

    ranking: str
    """``cluster=gCO2eq/kWh`` greenest first."""
    decided_at: datetime
    source: str
    weights: Mapping[str, int] = field(default_factory=dict)

    def as_dict(self, *, proposed: bool) -> dict[str, str]:
        return {
            RANKING_ANNOTATION: self.ranking,
            DECIDED_AT_ANNOTATION: rfc3339(self.decided_at),
            SOURCE_ANNOTATION: self.source,
            PROPOSED_ANNOTATION if proposed else WEIGHTS_ANNOTATION: weights_text(self.weights),
        }


def weights_text(weights: Mapping[str, int]) -> str:
    """``eu=100,us=4``: heaviest first, then by name."""
    return ",".join(f"{n}={w}" for n, w in sorted(weights.items(), key=lambda i: (-i[1], i[0])))


def static_weight_list(weights: Mapping[str, int]) -> list[dict[str, Any]]:
    """One entry per cluster, by name, so each weight targets exactly that cluster."""
    return [
        {"targetCluster": {"clusterNames": [name]}, "weight": weight}
        for name, weight in sorted(weights.items())
    ]


def apply_body(
    policy: WatchedPolicy,
    annotations: Annotations,
    *,
    weights: Mapping[str, int] | None,
) -> dict[str, Any]:
    """The server-side apply body: the weights (None: dry-run) and the annotations, nothing else.

    ``weightPreference.staticWeightList`` is an atomic list in Karmada's CRD, so the field manager
    owns the list as a whole and none of the fields around it.
    """
    metadata: dict[str, Any] = {
        "name": policy.ref.name,
        "resourceVersion": policy.resource_version,
        "annotations": annotations.as_dict(proposed=weights is None),
    }
    if policy.ref.namespace:
        metadata["namespace"] = policy.ref.namespace
    body: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": policy.ref.kind.value,
        "metadata": metadata,
    }
    entries: Iterable[Mapping[str, Any]] | None = (
        static_weight_list(weights) if weights is not None else policy.owned_weights
    )
    if entries is not None:
        body["spec"] = {
            "placement": {
                "replicaScheduling": {"weightPreference": {"staticWeightList": list(entries)}}
            }
        }
    return body

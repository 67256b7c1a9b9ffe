"""What a node manifest says about placement: region, cloud, instance type, capacity, taints.

Pure functions over the JSON dicts the Kubernetes API returns (and the static inventory file holds),
so the same conversion serves ``shared.cluster.kube`` (list + watch) and ``shared.cluster.demo``
(a file). Pods are read by ``shared.cluster.pods``.

Conventions read from nodes:

- Region: ``topology.kubernetes.io/region``, then ``failure-domain.beta.kubernetes.io/region``,
  then a configured key (for on-prem clusters that label nodes their own way). Empty values do not
  count.
- Cloud: the ``stellar.org/cloud`` label when it names one of ``aws``, ``gcp``, ``azure`` or
  ``onprem`` (set it on on-prem nodes, or anywhere the detection below would be wrong); else the
  providerID scheme (``aws://``, ``gce://``, ``azure://``); else a well-known managed-node-pool
  label (EKS, GKE, AKS; see ``CLOUD_LABELS``). Anything else is unknown (None).
- Instance type: ``node.kubernetes.io/instance-type``, then ``beta.kubernetes.io/instance-type``.
- CPU and memory: ``status.allocatable``, falling back per resource to ``status.capacity``.
- Ready: the ``Ready`` condition is ``"True"``. No such condition means not ready, as the node
  lifecycle controller would also treat it.
- When the carbon tier label was written: the time of the ``metadata.managedFields`` entry that
  owns it. The API server moves that time whenever the owner changes one of its fields, and the
  tier component's field manager owns that one label alone, so the time is that of the last tier
  change; it lives in the node object, so it survives restarts of whoever reads it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final

from shared.cluster.inventory import NodeInfo, Taint
from shared.cluster.manifest import ManifestError, mapping, object_name, sequence, string_map
from shared.cluster.quantities import parse_quantity_bytes, parse_quantity_cpu
from shared.core.models import TIER_LABEL, Cloud

REGION_LABELS: Final = (
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/region",
)
ZONE_LABELS: Final = (
    "topology.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/zone",
)
INSTANCE_TYPE_LABELS: Final = (
    "node.kubernetes.io/instance-type",
    "beta.kubernetes.io/instance-type",
)
CLOUD_LABEL: Final = "stellar.org/cloud"
"""Explicit cloud of a node: ``aws``, ``gcp``, ``azure`` or ``onprem``. Wins over detection."""

CLOUD_LABELS: Final[Mapping[str, Cloud]] = {
    "eks.amazonaws.com/nodegroup": Cloud.AWS,
    "eks.amazonaws.com/compute-type": Cloud.AWS,
    "karpenter.k8s.aws/instance-family": Cloud.AWS,
    "alpha.eksctl.io/nodegroup-name": Cloud.AWS,
    "cloud.google.com/gke-nodepool": Cloud.GCP,
    "cloud.google.com/machine-family": Cloud.GCP,
    "kubernetes.azure.com/agentpool": Cloud.AZURE,
    "kubernetes.azure.com/cluster": Cloud.AZURE,
}
"""Labels that managed node pools carry, for nodes whose providerID is missing or unfamiliar."""

_CLOUD_VALUES: Final = frozenset(cloud.value for cloud in Cloud)
_PROVIDER_ID_SCHEMES: Final[Mapping[str, Cloud]] = {
    "aws://": Cloud.AWS,
    "gce://": Cloud.GCP,
    "azure://": Cloud.AZURE,
}


# --- regions and clouds -------------------------------------------------------------------------


def node_region(
    labels: Mapping[str, str], extra_key: str | None = None
) -> tuple[str | None, str | None]:
    """The node's region and the label key it came from; ``(None, None)`` when it has none."""
    keys = (*REGION_LABELS, extra_key) if extra_key else REGION_LABELS
    for key in keys:
        value = labels.get(key)
        if value:
            return value, key
    return None, None


def node_cloud(labels: Mapping[str, str], provider_id: str | None) -> Cloud | None:
    """Which cloud runs the node, or None when nothing says so."""
    explicit = labels.get(CLOUD_LABEL, "").strip().lower()
    if explicit in _CLOUD_VALUES:
        return Cloud(explicit)
    if provider_id:
        for scheme, cloud in _PROVIDER_ID_SCHEMES.items():
            if provider_id.startswith(scheme):
                return cloud
    for key, cloud in CLOUD_LABELS.items():
        if key in labels:
            return cloud
    return None


def node_instance_type(labels: Mapping[str, str]) -> str | None:
    for key in INSTANCE_TYPE_LABELS:
        value = labels.get(key)
        if value:
            return value
    return None


def tolerated(tolerations: Iterable[Mapping[str, Any]], taint: Taint) -> bool:
    """Some toleration matches ``taint`` (kube's ``Toleration.ToleratesTaint``)."""
    for toleration in tolerations:
        effect = toleration.get("effect") or ""
        if effect and effect != taint.effect:
            continue
        key = toleration.get("key") or ""
        if key and key != taint.key:
            continue
        operator = toleration.get("operator") or "Equal"
        if operator == "Exists":
            return True
        if operator == "Equal" and (toleration.get("value") or "") == (taint.value or ""):
            return True
    return False


# --- nodes --------------------------------------------------------------------------------------


def read_taint(raw: object, where: str) -> Taint:
    """One ``spec.taints[]`` entry (a Node's, or any object that carries taints the same way)."""
    taint = mapping(raw, where)
    key, effect, value = taint.get("key"), taint.get("effect"), taint.get("value")
    if not isinstance(key, str) or not key or not isinstance(effect, str) or not effect:
        raise ManifestError(f"{where} needs a key and an effect")
    if value is not None and not isinstance(value, str):
        raise ManifestError(f"{where}.value must be a string")
    return Taint(key=key, effect=effect, value=value or None)


def _ready(conditions: list[Any]) -> bool:
    for condition in conditions:
        if isinstance(condition, Mapping) and condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def _resource(status: Mapping[str, Any], name: str, node: str, parse: Callable[[Any], int]) -> int:
    for section in ("allocatable", "capacity"):
        resources = mapping(status.get(section), f"status.{section}")
        if name in resources:
            try:
                return parse(resources[name])
            except ValueError as e:
                raise ManifestError(f"node {node}: status.{section}.{name}: {e}") from e
    return 0


def label_written_at(metadata: Mapping[str, Any], key: str) -> datetime | None:
    """When label ``key`` was last written: the latest ``time`` of the ``managedFields`` entries
    that own it (two appliers can share a field). None when no entry owns it; entries the API
    server would never send (wrong types, no time) are skipped rather than refused, since the
    rest of the node does not depend on them."""
    entries = metadata.get("managedFields")
    if not isinstance(entries, list):
        return None
    field_name = f"f:{key}"
    latest: datetime | None = None
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("time"), str):
            continue
        fields = entry.get("fieldsV1")
        meta = fields.get("f:metadata") if isinstance(fields, Mapping) else None
        labels = meta.get("f:labels") if isinstance(meta, Mapping) else None
        if not isinstance(labels, Mapping) or field_name not in labels:
            continue
        try:
            at = datetime.fromisoformat(entry["time"])
        except ValueError:
            continue
        if at.tzinfo is not None and (latest is None or at > latest):
            latest = at
    return latest


def node_from_manifest(obj: Mapping[str, Any], extra_region_key: str | None = None) -> NodeInfo:
    """A ``NodeInfo`` from a Node as the API returns it. Raises ``ManifestError`` on bad input."""
    manifest = mapping(obj, "node")
    metadata = mapping(manifest.get("metadata"), "metadata")
    name = object_name(metadata, "node")
    labels = string_map(metadata.get("labels"), f"node {name}: metadata.labels")
    spec = mapping(manifest.get("spec"), f"node {name}: spec")
    status = mapping(manifest.get("status"), f"node {name}: status")

    provider_id = spec.get("providerID")
    if provider_id is not None and not isinstance(provider_id, str):
        raise ManifestError(f"node {name}: spec.providerID must be a string")
    unschedulable = spec.get("unschedulable", False)
    if not isinstance(unschedulable, bool):
        raise ManifestError(f"node {name}: spec.unschedulable must be a boolean")
    taints = tuple(
        read_taint(raw, f"node {name}: spec.taints[{i}]")
        for i, raw in enumerate(sequence(spec.get("taints"), f"node {name}: spec.taints"))
    )
    region, region_label = node_region(labels, extra_region_key)
    return NodeInfo(
        name=name,
        labels=labels,
        region=region,
        region_label=region_label,
        cloud=node_cloud(labels, provider_id),
        ready=_ready(sequence(status.get("conditions"), f"node {name}: status.conditions")),
        unschedulable=unschedulable,
        taints=taints,
        cpu_millis=_resource(status, "cpu", name, parse_quantity_cpu),
        memory_bytes=_resource(status, "memory", name, parse_quantity_bytes),
        instance_type=node_instance_type(labels),
        tier_set_at=label_written_at(metadata, TIER_LABEL) if TIER_LABEL in labels else None,
    )

"""What a node or pod manifest says about placement: region, cloud, capacity, taints, Stellar role.

Pure functions over the JSON dicts the Kubernetes API returns (and the static inventory file holds),
so the same conversion serves ``shared.cluster.kube`` (list + watch) and ``shared.cluster.demo``
(a file).

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

Stellar roles read from pods (first match wins, values compared case-insensitively):

1. ``stellar.org/role`` (what the Stellar-K8s operator puts on read-pool pods):
   ``validator``, ``horizon``, ``soroban-rpc``, ``read-replica``, and the aliases in
   ``_ROLE_ALIASES``.
2. ``stellar.org/node-type`` (the operator's ``Validator`` | ``Horizon`` | ``SorobanRpc``).
3. ``app.kubernetes.io/name``: ``stellar-core`` → validator, ``horizon`` / ``stellar-horizon`` →
   horizon, ``soroban-rpc`` / ``stellar-rpc`` → soroban-rpc.
4. ``app.kubernetes.io/component`` with the same values, or — only together with the operator's
   ``app.kubernetes.io/name: stellar-node`` — ``validator``, ``horizon``, ``sorobanrpc``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, Final, Literal

from shared.cluster.inventory import NodeInfo, PodInfo, Taint
from shared.core.errors import CarbonError
from shared.core.models import Cloud

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

StellarRole = Literal["validator", "horizon", "soroban-rpc", "read-replica"]

ROLE_LABEL: Final = "stellar.org/role"
NODE_TYPE_LABEL: Final = "stellar.org/node-type"
APP_NAME_LABEL: Final = "app.kubernetes.io/name"
APP_COMPONENT_LABEL: Final = "app.kubernetes.io/component"
STELLAR_ROLE_LABELS: Final = (ROLE_LABEL, NODE_TYPE_LABEL, APP_NAME_LABEL, APP_COMPONENT_LABEL)
"""Pod label keys ``pod_role`` reads, in the order it reads them."""

_ROLE_ALIASES: Final[Mapping[str, StellarRole]] = {
    "validator": "validator",
    "read-replica": "read-replica",
    "readreplica": "read-replica",
    "read-pool": "read-replica",
    "horizon": "horizon",
    "soroban-rpc": "soroban-rpc",
    "sorobanrpc": "soroban-rpc",
    "soroban": "soroban-rpc",
    "stellar-rpc": "soroban-rpc",
}
_APP_NAMES: Final[Mapping[str, StellarRole]] = {
    "stellar-core": "validator",
    "horizon": "horizon",
    "stellar-horizon": "horizon",
    "soroban-rpc": "soroban-rpc",
    "stellar-rpc": "soroban-rpc",
    "stellar-soroban-rpc": "soroban-rpc",
}
# Stellar-K8s labels every pod app.kubernetes.io/name=stellar-node and puts the lower-cased node
# type in the component label; "validator" alone is too generic to trust without that name.
_OPERATOR_APP_NAME: Final = "stellar-node"
_OPERATOR_COMPONENTS: Final[Mapping[str, StellarRole]] = {
    "validator": "validator",
    "horizon": "horizon",
    "sorobanrpc": "soroban-rpc",
}


class ManifestError(CarbonError, ValueError):
    """A node or pod manifest cannot be read (missing name, malformed field, bad quantity)."""


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


# --- quantities ---------------------------------------------------------------------------------

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?P<suffix>[eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?"
)
_BINARY: Final[Mapping[str, int]] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
}
_DECIMAL: Final[Mapping[str, Fraction]] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "": Fraction(1),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}
# Kubernetes stores quantities in an int64 (in the unit asked for); anything larger is not a
# real node or pod. Bounding the exponent also keeps "1e999999" from building a giant integer.
_MAX_VALUE: Final = 2**63 - 1
_MAX_EXPONENT: Final = 30
_MAX_TEXT: Final = 64


def _quantity(value: str | int | float) -> Fraction:
    """Exact value of a Kubernetes quantity (``500m``, ``8``, ``31Gi``, ``1.5e3``)."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, int):
        number = Fraction(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a quantity: {value!r}")
        number = Fraction(value)
    elif isinstance(value, str):
        number = _parse_quantity_text(value)
    else:
        raise ValueError(f"not a quantity: {type(value).__name__}")
    if number < 0:
        raise ValueError(f"quantity must not be negative: {value!r}")
    return number


def _parse_quantity_text(text: str) -> Fraction:
    text = text.strip()
    if len(text) > _MAX_TEXT:
        raise ValueError(f"quantity too long: {text[:_MAX_TEXT]!r}…")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"not a quantity: {text!r}")
    number = Fraction(match["number"])
    suffix = match["suffix"] or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix in _DECIMAL:
        return number * _DECIMAL[suffix]
    exponent = int(suffix[1:])
    if abs(exponent) > _MAX_EXPONENT:
        raise ValueError(f"quantity out of range: {text!r}")
    return number * Fraction(10) ** exponent


def _bounded(result: int, value: object) -> int:
    if result > _MAX_VALUE:
        raise ValueError(f"quantity out of range: {value!r}")
    return result


def parse_quantity_cpu(value: str | int | float) -> int:
    """CPU quantity in millicores, rounded up like Kubernetes: ``"250m"`` → 250, ``"2"`` → 2000."""
    return _bounded(math.ceil(_quantity(value) * 1000), value)


def parse_quantity_bytes(value: str | int | float) -> int:
    """Memory or storage quantity in bytes, rounded up: ``"1Gi"`` → 1073741824, ``"1k"`` → 1000."""
    return _bounded(math.ceil(_quantity(value)), value)


# --- manifests ----------------------------------------------------------------------------------


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ManifestError(f"{where} must be an object")
    return value


def _string_map(value: object, where: str) -> dict[str, str]:
    mapping = _mapping(value, where)
    out: dict[str, str] = {}
    for key, item in mapping.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise ManifestError(f"{where} must map strings to strings (see {key!r})")
        out[key] = item
    return out


def _list(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ManifestError(f"{where} must be a list")
    return value


def _name(metadata: Mapping[str, Any], kind: str) -> str:
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{kind} without metadata.name")
    return name


def _taint(raw: object, where: str) -> Taint:
    taint = _mapping(raw, where)
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
        resources = _mapping(status.get(section), f"status.{section}")
        if name in resources:
            try:
                return parse(resources[name])
            except ValueError as e:
                raise ManifestError(f"node {node}: status.{section}.{name}: {e}") from e
    return 0


def node_from_manifest(obj: Mapping[str, Any], extra_region_key: str | None = None) -> NodeInfo:
    """A ``NodeInfo`` from a Node as the API returns it. Raises ``ManifestError`` on bad input."""
    manifest = _mapping(obj, "node")
    metadata = _mapping(manifest.get("metadata"), "metadata")
    name = _name(metadata, "node")
    labels = _string_map(metadata.get("labels"), f"node {name}: metadata.labels")
    spec = _mapping(manifest.get("spec"), f"node {name}: spec")
    status = _mapping(manifest.get("status"), f"node {name}: status")

    provider_id = spec.get("providerID")
    if provider_id is not None and not isinstance(provider_id, str):
        raise ManifestError(f"node {name}: spec.providerID must be a string")
    unschedulable = spec.get("unschedulable", False)
    if not isinstance(unschedulable, bool):
        raise ManifestError(f"node {name}: spec.unschedulable must be a boolean")
    taints = tuple(
        _taint(raw, f"node {name}: spec.taints[{i}]")
        for i, raw in enumerate(_list(spec.get("taints"), f"node {name}: spec.taints"))
    )
    region, region_label = node_region(labels, extra_region_key)
    return NodeInfo(
        name=name,
        labels=labels,
        region=region,
        region_label=region_label,
        cloud=node_cloud(labels, provider_id),
        ready=_ready(_list(status.get("conditions"), f"node {name}: status.conditions")),
        unschedulable=unschedulable,
        taints=taints,
        cpu_millis=_resource(status, "cpu", name, parse_quantity_cpu),
        memory_bytes=_resource(status, "memory", name, parse_quantity_bytes),
        instance_type=node_instance_type(labels),
    )


def _cpu_request(container: object, where: str) -> int:
    resources = _mapping(_mapping(container, where).get("resources"), f"{where}.resources")
    # The API server defaults a missing request to the limit; static files may not have been
    # through it, so do the same here.
    for section in ("requests", "limits"):
        values = _mapping(resources.get(section), f"{where}.resources.{section}")
        if "cpu" in values:
            try:
                return parse_quantity_cpu(values["cpu"])
            except ValueError as e:
                raise ManifestError(f"{where}.resources.{section}.cpu: {e}") from e
    return 0


def _pod_cpu_request(spec: Mapping[str, Any], where: str) -> int:
    """Effective CPU request as the scheduler computes it, init and sidecar containers included."""
    containers = _list(spec.get("containers"), f"{where}.containers")
    app = sum(_cpu_request(c, f"{where}.containers[{i}]") for i, c in enumerate(containers))
    sidecars = 0
    init_peak = 0
    for i, raw in enumerate(_list(spec.get("initContainers"), f"{where}.initContainers")):
        request = _cpu_request(raw, f"{where}.initContainers[{i}]")
        if _mapping(raw, f"{where}.initContainers[{i}]").get("restartPolicy") == "Always":
            # A sidecar keeps running beside everything started after it.
            sidecars += request
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + request)
    overhead = _mapping(spec.get("overhead"), f"{where}.overhead")
    extra = 0
    if "cpu" in overhead:
        try:
            extra = parse_quantity_cpu(overhead["cpu"])
        except ValueError as e:
            raise ManifestError(f"{where}.overhead.cpu: {e}") from e
    return max(app + sidecars, init_peak) + extra


def pod_from_manifest(obj: Mapping[str, Any]) -> PodInfo:
    """A ``PodInfo`` from a Pod as the API returns it. Raises ``ManifestError`` on bad input."""
    manifest = _mapping(obj, "pod")
    metadata = _mapping(manifest.get("metadata"), "metadata")
    name = _name(metadata, "pod")
    namespace = metadata.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise ManifestError(f"pod {name}: metadata.namespace must be a string")
    where = f"pod {namespace}/{name}"
    spec = _mapping(manifest.get("spec"), f"{where}: spec")
    status = _mapping(manifest.get("status"), f"{where}: status")
    node_name = spec.get("nodeName")
    if node_name is not None and not isinstance(node_name, str):
        raise ManifestError(f"{where}: spec.nodeName must be a string")
    phase = status.get("phase") or "Pending"
    if not isinstance(phase, str):
        raise ManifestError(f"{where}: status.phase must be a string")
    return PodInfo(
        namespace=namespace,
        name=name,
        labels=_string_map(metadata.get("labels"), f"{where}: metadata.labels"),
        annotations=_string_map(metadata.get("annotations"), f"{where}: metadata.annotations"),
        node_name=node_name or None,
        phase=phase,
        cpu_request_millis=_pod_cpu_request(spec, f"{where}: spec"),
    )


# --- Stellar roles ------------------------------------------------------------------------------


def _normalise(value: str | None) -> str:
    return (value or "").strip().lower().replace("_", "-")


def pod_role(labels: Mapping[str, str]) -> StellarRole | None:
    """The Stellar role a pod's labels declare, or None for a pod that is not a Stellar node."""
    for key in (ROLE_LABEL, NODE_TYPE_LABEL):
        role = _ROLE_ALIASES.get(_normalise(labels.get(key)))
        if role is not None:
            return role
    app_name = _normalise(labels.get(APP_NAME_LABEL))
    if app_name in _APP_NAMES:
        return _APP_NAMES[app_name]
    component = _normalise(labels.get(APP_COMPONENT_LABEL))
    if component in _APP_NAMES:
        return _APP_NAMES[component]
    if app_name == _OPERATOR_APP_NAME:
        return _OPERATOR_COMPONENTS.get(component)
    return None

"""What a pod manifest says: where it runs, its effective CPU request, and its Stellar role.

Pure functions over the JSON dicts the Kubernetes API returns (and the static inventory file holds),
shared by ``shared.cluster.kube`` and ``shared.cluster.demo``.

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

from collections.abc import Mapping
from typing import Any, Final, Literal

from shared.cluster.inventory import PodInfo
from shared.cluster.manifest import ManifestError, mapping, object_name, sequence, string_map
from shared.cluster.quantities import parse_quantity_cpu

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

STELLAR_POD_SELECTORS: Final = (
    f"{APP_NAME_LABEL} in ({','.join([_OPERATOR_APP_NAME, *_APP_NAMES])})",
    ROLE_LABEL,
)
"""Label selectors (any one matching) for the pods the services watch by default: every pod of
the upstream operator (read replicas and the StellarNode's main pod, which the read pool's spread
and anti-affinity selectors count) and every pod named as a Stellar app, plus any pod declaring
a ``stellar.org/role``. Pods known only by ``stellar.org/node-type`` or
``app.kubernetes.io/component`` are not matched; a selector cannot compare case-insensitively
either."""


# --- manifests ----------------------------------------------------------------------------------


def _cpu_request(container: object, where: str) -> int:
    resources = mapping(mapping(container, where).get("resources"), f"{where}.resources")
    # The API server defaults a missing request to the limit; static files may not have been
    # through it, so do the same here.
    for section in ("requests", "limits"):
        values = mapping(resources.get(section), f"{where}.resources.{section}")
        if "cpu" in values:
            try:
                return parse_quantity_cpu(values["cpu"])
            except ValueError as e:
                raise ManifestError(f"{where}.resources.{section}.cpu: {e}") from e
    return 0


def _pod_cpu_request(spec: Mapping[str, Any], where: str) -> int:
    """Effective CPU request as the scheduler computes it, init and sidecar containers included."""
    containers = sequence(spec.get("containers"), f"{where}.containers")
    app = sum(_cpu_request(c, f"{where}.containers[{i}]") for i, c in enumerate(containers))
    sidecars = 0
    init_peak = 0
    for i, raw in enumerate(sequence(spec.get("initContainers"), f"{where}.initContainers")):
        request = _cpu_request(raw, f"{where}.initContainers[{i}]")
        if mapping(raw, f"{where}.initContainers[{i}]").get("restartPolicy") == "Always":
            # A sidecar keeps running beside everything started after it.
            sidecars += request
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + request)
    overhead = mapping(spec.get("overhead"), f"{where}.overhead")
    extra = 0
    if "cpu" in overhead:
        try:
            extra = parse_quantity_cpu(overhead["cpu"])
        except ValueError as e:
            raise ManifestError(f"{where}.overhead.cpu: {e}") from e
    return max(app + sidecars, init_peak) + extra


def pod_from_manifest(obj: Mapping[str, Any]) -> PodInfo:
    """A ``PodInfo`` from a Pod as the API returns it. Raises ``ManifestError`` on bad input."""
    manifest = mapping(obj, "pod")
    metadata = mapping(manifest.get("metadata"), "metadata")
    name = object_name(metadata, "pod")
    namespace = metadata.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise ManifestError(f"pod {name}: metadata.namespace must be a string")
    where = f"pod {namespace}/{name}"
    spec = mapping(manifest.get("spec"), f"{where}: spec")
    status = mapping(manifest.get("status"), f"{where}: status")
    node_name = spec.get("nodeName")
    if node_name is not None and not isinstance(node_name, str):
        raise ManifestError(f"{where}: spec.nodeName must be a string")
    phase = status.get("phase") or "Pending"
    if not isinstance(phase, str):
        raise ManifestError(f"{where}: status.phase must be a string")
    return PodInfo(
        namespace=namespace,
        name=name,
        labels=string_map(metadata.get("labels"), f"{where}: metadata.labels"),
        annotations=string_map(metadata.get("annotations"), f"{where}: metadata.annotations"),
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

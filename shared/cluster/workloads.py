"""What the admission path needs to know beyond nodes: StatefulSets, namespaces and bound pods.

Pure values and the readers that build them from manifests. ``Workloads`` is one immutable
snapshot of all three, with the derived views a read-pool decision asks for (the pods bound in a
namespace, the resources requested on a node) computed once per snapshot rather than once per
admission. It also holds the unbound pods the webhook restricted to a required region set
(``RestrictedPod``), so a pod that such a set left unschedulable can be noticed.
``shared.cluster.kube.workloads`` keeps a snapshot current by list + watch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from shared.cluster.manifest import ManifestError, mapping, object_name, sequence, string_map
from shared.cluster.quantities import parse_quantity_bytes, parse_quantity_cpu

CARBON_AWARE_ANNOTATION = "stellar.org/carbon-aware"
REQUIRED_REGIONS_ANNOTATION = "stellar.org/carbon-required-regions"
"""Written by the webhook when it adds a required region set: the regions, comma-separated."""
_DONE_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True, slots=True)
class StatefulSetInfo:
    """One StatefulSet as far as sizing its pool and selecting its pods go."""

    namespace: str
    name: str
    replicas: int
    """``spec.replicas`` (the API server defaults a missing one to 1)."""
    selector: Mapping[str, str]
    """``spec.selector.matchLabels`` (the operator's pools use nothing else)."""
    template_labels: Mapping[str, str]
    carbon_aware: str | None = None
    """The StatefulSet's own ``stellar.org/carbon-aware`` annotation, as written."""

    def selects(self, labels: Mapping[str, str]) -> bool:
        """The StatefulSet's selector matches ``labels`` (an empty selector matches nothing, as
        the API server refuses one on a StatefulSet)."""
        return bool(self.selector) and all(labels.get(k) == v for k, v in self.selector.items())


@dataclass(frozen=True, slots=True)
class NamespaceInfo:
    name: str
    carbon_aware: str | None = None
    """The namespace's ``stellar.org/carbon-aware`` annotation, as written."""


@dataclass(frozen=True, slots=True)
class BoundPod:
    """A pod bound to a node and still holding its resources there."""

    namespace: str
    name: str
    node: str
    labels: Mapping[str, str]
    cpu_millis: int = 0
    memory_bytes: int = 0


@dataclass(frozen=True, slots=True)
class RestrictedPod:
    """A pod not bound (and not finished) that the webhook restricted to a required region set."""

    namespace: str
    name: str
    uid: str
    required_regions: tuple[str, ...]
    """From ``stellar.org/carbon-required-regions``."""
    unschedulable: bool = False
    """``PodScheduled`` is ``False`` with reason ``Unschedulable``: no node passes its filters."""
    unschedulable_since: datetime | None = None
    """That condition's ``lastTransitionTime``, when it has one."""


def statefulset_from_manifest(obj: Mapping[str, Any]) -> StatefulSetInfo:
    """Raises ``ManifestError`` on a StatefulSet that cannot be read."""
    metadata = mapping(mapping(obj, "statefulset").get("metadata"), "metadata")
    name = object_name(metadata, "statefulset")
    namespace = _namespace(metadata, name)
    where = f"statefulset {namespace}/{name}"
    spec = mapping(obj.get("spec"), f"{where}: spec")
    replicas = spec.get("replicas", 1)
    if replicas is None:
        replicas = 1
    if type(replicas) is not int or replicas < 0:
        raise ManifestError(f"{where}: spec.replicas must be a non-negative integer")
    selector = mapping(spec.get("selector"), f"{where}: spec.selector")
    template = mapping(spec.get("template"), f"{where}: spec.template")
    template_metadata = mapping(template.get("metadata"), f"{where}: spec.template.metadata")
    annotations = string_map(metadata.get("annotations"), f"{where}: metadata.annotations")
    return StatefulSetInfo(
        namespace=namespace,
        name=name,
        replicas=replicas,
        selector=string_map(selector.get("matchLabels"), f"{where}: spec.selector.matchLabels"),
        template_labels=string_map(
            template_metadata.get("labels"), f"{where}: spec.template.metadata.labels"
        ),
        carbon_aware=annotations.get(CARBON_AWARE_ANNOTATION),
    )


def namespace_from_manifest(obj: Mapping[str, Any]) -> NamespaceInfo:
    metadata = mapping(mapping(obj, "namespace").get("metadata"), "metadata")
    name = object_name(metadata, "namespace")
    annotations = string_map(metadata.get("annotations"), f"namespace {name}: annotations")
    return NamespaceInfo(name=name, carbon_aware=annotations.get(CARBON_AWARE_ANNOTATION))


def bound_pod_from_manifest(obj: Mapping[str, Any]) -> BoundPod | None:
    """The pod when it is bound and not finished (a finished pod frees its room), else None."""
    manifest = mapping(obj, "pod")
    metadata = mapping(manifest.get("metadata"), "metadata")
    name = object_name(metadata, "pod")
    namespace = _namespace(metadata, name)
    where = f"pod {namespace}/{name}"
    spec = mapping(manifest.get("spec"), f"{where}: spec")
    node = spec.get("nodeName")
    if not node:
        return None
    if not isinstance(node, str):
        raise ManifestError(f"{where}: spec.nodeName must be a string")
    if mapping(manifest.get("status"), f"{where}: status").get("phase") in _DONE_PHASES:
        return None
    return BoundPod(
        namespace=namespace,
        name=name,
        node=node,
        labels=string_map(metadata.get("labels"), f"{where}: metadata.labels"),
        cpu_millis=_requests(spec, "cpu", where),
        memory_bytes=_requests(spec, "memory", where),
    )


def watched_pod_from_manifest(obj: Mapping[str, Any]) -> BoundPod | RestrictedPod | None:
    """What the pod watch keeps of a pod: a ``BoundPod``, a ``RestrictedPod``, or nothing.

    Raises ``ManifestError`` on a pod that cannot be read."""
    bound = bound_pod_from_manifest(obj)
    if bound is not None:
        return bound
    metadata = mapping(mapping(obj, "pod").get("metadata"), "metadata")
    annotations = metadata.get("annotations")
    if not isinstance(annotations, Mapping) or REQUIRED_REGIONS_ANNOTATION not in annotations:
        return None
    name = object_name(metadata, "pod")
    namespace = _namespace(metadata, name)
    where = f"pod {namespace}/{name}"
    spec = mapping(obj.get("spec"), f"{where}: spec")
    status = mapping(obj.get("status"), f"{where}: status")
    if spec.get("nodeName") or status.get("phase") in _DONE_PHASES:
        return None
    regions = string_map(annotations, f"{where}: metadata.annotations")[REQUIRED_REGIONS_ANNOTATION]
    uid = metadata.get("uid")
    unschedulable, since = _unschedulable(status, where)
    return RestrictedPod(
        namespace=namespace,
        name=name,
        uid=uid if isinstance(uid, str) else "",
        required_regions=tuple(r for r in regions.split(",") if r),
        unschedulable=unschedulable,
        unschedulable_since=since,
    )


def _unschedulable(status: Mapping[str, Any], where: str) -> tuple[bool, datetime | None]:
    for i, raw in enumerate(sequence(status.get("conditions"), f"{where}: status.conditions")):
        condition = mapping(raw, f"{where}: status.conditions[{i}]")
        if condition.get("type") != "PodScheduled":
            continue
        if condition.get("status") != "False" or condition.get("reason") != "Unschedulable":
            return False, None
        changed = condition.get("lastTransitionTime")
        try:
            since = datetime.fromisoformat(changed) if isinstance(changed, str) else None
        except ValueError:
            since = None  # the time is a detail; the condition itself is what counts
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        return True, since
    return False, None


def _namespace(metadata: Mapping[str, Any], name: str) -> str:
    namespace = metadata.get("namespace") or "default"
    if not isinstance(namespace, str):
        raise ManifestError(f"{name}: metadata.namespace must be a string")
    return namespace


def _request(container: object, resource: str, where: str) -> int:
    resources = mapping(mapping(container, where).get("resources"), f"{where}.resources")
    parse = parse_quantity_cpu if resource == "cpu" else parse_quantity_bytes
    # The API server defaults a missing request to the limit.
    for section in ("requests", "limits"):
        values = mapping(resources.get(section), f"{where}.resources.{section}")
        if resource in values:
            try:
                return parse(values[resource])
            except (TypeError, ValueError) as e:
                raise ManifestError(f"{where}.resources.{section}.{resource}: {e}") from e
    return 0


def _requests(spec: Mapping[str, Any], resource: str, where: str) -> int:
    """The effective request as the scheduler counts it: the app containers (sidecars included)
    or the largest init container, whichever is more."""
    containers = sequence(spec.get("containers"), f"{where}: spec.containers")
    total = sum(
        _request(c, resource, f"{where}: containers[{i}]") for i, c in enumerate(containers)
    )
    sidecars, peak = 0, 0
    for i, raw in enumerate(sequence(spec.get("initContainers"), f"{where}: initContainers")):
        request = _request(raw, resource, f"{where}: initContainers[{i}]")
        if mapping(raw, f"{where}: initContainers[{i}]").get("restartPolicy") == "Always":
            sidecars += request
            peak = max(peak, sidecars)
        else:
            peak = max(peak, sidecars + request)
    return max(total + sidecars, peak)


@dataclass(frozen=True, slots=True)
class Requested:
    cpu_millis: int = 0
    memory_bytes: int = 0


_NOTHING = Requested()


class _PodIndex:
    """Bound pods by namespace and their requests by node, each computed when first asked for:
    a decision without a read pool reads neither."""

    __slots__ = ("_by_namespace", "_by_node", "_pods")

    def __init__(self, pods: Mapping[tuple[str, str], BoundPod]) -> None:
        self._pods = pods
        self._by_namespace: dict[str, tuple[BoundPod, ...]] | None = None
        self._by_node: dict[str, Requested] | None = None

    def by_namespace(self) -> Mapping[str, tuple[BoundPod, ...]]:
        if self._by_namespace is None:
            grouped: dict[str, list[BoundPod]] = {}
            for pod in self._pods.values():
                grouped.setdefault(pod.namespace, []).append(pod)
            self._by_namespace = {ns: tuple(pods) for ns, pods in grouped.items()}
        return self._by_namespace

    def by_node(self) -> Mapping[str, Requested]:
        if self._by_node is None:
            cpu: dict[str, int] = {}
            memory: dict[str, int] = {}
            for pod in self._pods.values():
                cpu[pod.node] = cpu.get(pod.node, 0) + pod.cpu_millis
                memory[pod.node] = memory.get(pod.node, 0) + pod.memory_bytes
            self._by_node = {node: Requested(cpu[node], memory[node]) for node in cpu}
        return self._by_node


@dataclass(frozen=True)
class Workloads:
    """One immutable view of StatefulSets, namespaces and bound pods, with derived indexes.

    ``synced`` is False until every source has listed once; a decision that needs this state
    then knows it is looking at a partial picture. ``restricted`` holds the unbound pods the
    webhook restricted to a required region set; decisions do not read it.
    """

    statefulsets: Mapping[tuple[str, str], StatefulSetInfo] = field(
        default_factory=lambda: MappingProxyType({})
    )
    namespaces: Mapping[str, NamespaceInfo] = field(default_factory=lambda: MappingProxyType({}))
    pods: Mapping[tuple[str, str], BoundPod] = field(default_factory=lambda: MappingProxyType({}))
    synced: bool = True
    restricted: Mapping[tuple[str, str], RestrictedPod] = field(
        default_factory=lambda: MappingProxyType({})
    )
    _index: _PodIndex = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", _PodIndex(self.pods))

    def updated(
        self,
        statefulsets: Mapping[tuple[str, str], StatefulSetInfo],
        namespaces: Mapping[str, NamespaceInfo],
        pods: Mapping[tuple[str, str], BoundPod],
        *,
        synced: bool,
        restricted: Mapping[tuple[str, str], RestrictedPod],
    ) -> Workloads:
        """A view of these contents; when the bound pods are the same as this view's (equal),
        it keeps this view's pods and their indexes instead of indexing them again."""
        if pods == self.pods:
            view = Workloads(statefulsets, namespaces, self.pods, synced, restricted)
            object.__setattr__(view, "_index", self._index)
            return view
        return Workloads(statefulsets, namespaces, pods, synced, restricted)

    def bound_in(self, namespace: str) -> tuple[BoundPod, ...]:
        """Pods bound in ``namespace``: what a pod's spread and anti-affinity selectors see."""
        return self._index.by_namespace().get(namespace, ())

    def requested_on(self, node: str) -> Requested:
        """Resources the pods bound to ``node`` request."""
        return self._index.by_node().get(node, _NOTHING)


@dataclass(frozen=True, slots=True)
class WatchStats:
    """One list + watch loop as health checks and metrics see it."""

    resource: str
    objects: int
    """Objects it keeps."""
    synced: bool
    """It has listed at least once."""
    heard_at: float | None
    """``time.monotonic()`` of its last list or watch event; None before the first list."""


EMPTY = Workloads()
"""No StatefulSets, namespaces or pods known: what a demo or file inventory offers."""

"""A pod's own hard rules about its neighbours: what kube-scheduler enforces between pool pods.

Pure. Reads, from a pod manifest (or a controller's pod template), the constraints that decide
how many pods of one pool a set of nodes can hold: ``DoNotSchedule`` topology spread constraints
(any topology key), required pod anti-affinity terms, and the pod's resource requests. Soft
rules (``ScheduleAnyway``, preferred terms) only score nodes and are left out: they never keep a
pod Pending. Label selectors match as in apimachinery ``labels.Selector``: ``matchLabels`` and
every ``matchExpressions`` requirement AND-ed; an empty selector matches everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.cluster.quantities import parse_quantity_bytes, parse_quantity_cpu
from shared.core.shapes import array_reader, object_reader

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


class ConstraintError(ValueError):
    """A scheduling constraint the scheduler would reject or this model cannot read."""


_object = object_reader(ConstraintError)
_array = array_reader(ConstraintError)


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``matchExpressions`` entry."""

    key: str
    operator: str
    """``In``, ``NotIn``, ``Exists`` or ``DoesNotExist``."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "Exists":
            return self.key in labels
        if self.operator == "DoesNotExist":
            return self.key not in labels
        if self.operator == "In":
            return labels.get(self.key) in self.values
        return labels.get(self.key) not in self.values  # NotIn: an absent key matches


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A ``metav1.LabelSelector``."""

    match_labels: Mapping[str, str] = field(default_factory=dict)
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels.items()) and all(
            requirement.matches(labels) for requirement in self.expressions
        )

    @classmethod
    def from_manifest(cls, value: object, where: str) -> LabelSelector:
        selector = _object(value, where)
        match_labels = _object(selector.get("matchLabels"), f"{where}.matchLabels")
        expressions = []
        for index, item in enumerate(_array(selector.get("matchExpressions"), where)):
            at = f"{where}.matchExpressions[{index}]"
            expression = _object(item, at)
            operator = expression.get("operator")
            if operator not in _OPERATORS:
                raise ConstraintError(f"{at}.operator {operator!r} is not a label operator")
            values = _array(expression.get("values"), f"{at}.values")
            expressions.append(
                Requirement(str(expression.get("key")), operator, frozenset(map(str, values)))
            )
        return cls({str(k): str(v) for k, v in match_labels.items()}, tuple(expressions))


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """A ``DoNotSchedule`` topology spread constraint.

    kube-scheduler's filter: a node passes when ``count(its domain) + 1 - min count over the
    domains <= max_skew``, where the domains are the values of ``topology_key`` on the nodes that
    pass the pod's required node affinity and node selector (``nodeAffinityPolicy: Honor``, the
    default) whatever their taints (``nodeTaintsPolicy: Ignore``): cordoned nodes count.
    """

    topology_key: str
    max_skew: int
    selector: LabelSelector
    honor_node_affinity: bool = True
    """False for ``nodeAffinityPolicy: Ignore``: every node with the key is a domain."""
    min_domains: int = 1
    """Fewer domains than this make the minimum count 0."""


@dataclass(frozen=True, slots=True)
class AntiAffinityTerm:
    """A required pod anti-affinity term: no two matching pods in one ``topology_key`` domain."""

    topology_key: str
    selector: LabelSelector


@dataclass(frozen=True, slots=True)
class PoolConstraints:
    """What kube-scheduler enforces between the pods of one pool, read from one pod."""

    labels: Mapping[str, str]
    """The pod's own labels: whether a new pool pod counts for its own selectors."""
    spreads: tuple[SpreadConstraint, ...]
    anti_affinity: tuple[AntiAffinityTerm, ...]
    cpu_millis: int = 0
    """Requested CPU over all containers."""
    memory_bytes: int = 0

    @classmethod
    def from_pod(cls, pod: Mapping[str, Any]) -> PoolConstraints:
        """From a pod, or a pod template (``metadata`` and ``spec`` alike)."""
        metadata = _object(pod.get("metadata"), "metadata")
        spec = _object(pod.get("spec"), "spec")
        return cls(
            labels=_labels(metadata),
            spreads=_spreads(spec),
            anti_affinity=_anti_affinity(spec),
            cpu_millis=_requests(spec, "cpu"),
            memory_bytes=_requests(spec, "memory"),
        )

    def with_labels_of(self, pod: Mapping[str, Any]) -> PoolConstraints:
        """These rules and requests for another pod of the pool: ``from_pod(pod)`` when ``pod``
        has the same rules and requests as the pod these were read from, reading only its
        labels (a StatefulSet's pods differ in theirs). Raises ``ConstraintError`` alike."""
        labels = _labels(_object(pod.get("metadata"), "metadata"))
        return PoolConstraints(
            labels, self.spreads, self.anti_affinity, self.cpu_millis, self.memory_bytes
        )

    def placement_key(self) -> tuple[object, ...]:
        """All that where the pool's pods fit depends on: its rules, its requests and which of
        its own selectors its pods match, without the rest of ``labels`` (a StatefulSet's pods
        differ in theirs). Pools with equal keys fit alike."""
        return (
            self.spreads,
            self.anti_affinity,
            self.cpu_millis,
            self.memory_bytes,
            tuple(c.selector.matches(self.labels) for c in self.spreads),
            tuple(t.selector.matches(self.labels) for t in self.anti_affinity),
        )

    @classmethod
    def from_controller(cls, workload: Mapping[str, Any]) -> PoolConstraints:
        """From a StatefulSet, Deployment or ReplicaSet: its ``spec.template``."""
        spec = _object(workload.get("spec"), "spec")
        return cls.from_pod(_object(spec.get("template"), "spec.template"))


def _labels(metadata: Mapping[str, Any]) -> dict[str, str]:
    labels = _object(metadata.get("labels"), "metadata.labels")
    return {str(k): str(v) for k, v in labels.items()}


def _spreads(spec: Mapping[str, Any]) -> tuple[SpreadConstraint, ...]:
    found = []
    items = _array(spec.get("topologySpreadConstraints"), "spec.topologySpreadConstraints")
    for index, item in enumerate(items):
        where = f"spec.topologySpreadConstraints[{index}]"
        constraint = _object(item, where)
        if constraint.get("whenUnsatisfiable", "DoNotSchedule") != "DoNotSchedule":
            continue
        skew = constraint.get("maxSkew")
        if type(skew) is not int or skew < 1:
            raise ConstraintError(f"{where}.maxSkew must be a positive integer, got {skew!r}")
        min_domains = constraint.get("minDomains") or 1
        if type(min_domains) is not int or min_domains < 1:
            raise ConstraintError(f"{where}.minDomains must be a positive integer")
        found.append(
            SpreadConstraint(
                topology_key=str(constraint.get("topologyKey")),
                max_skew=skew,
                selector=LabelSelector.from_manifest(
                    constraint.get("labelSelector"), f"{where}.labelSelector"
                ),
                honor_node_affinity=constraint.get("nodeAffinityPolicy", "Honor") != "Ignore",
                min_domains=min_domains,
            )
        )
    return tuple(found)


def _anti_affinity(spec: Mapping[str, Any]) -> tuple[AntiAffinityTerm, ...]:
    affinity = _object(spec.get("affinity"), "spec.affinity")
    anti = _object(affinity.get("podAntiAffinity"), "spec.affinity.podAntiAffinity")
    where = f"spec.affinity.podAntiAffinity.{_REQUIRED}"
    terms = []
    for index, item in enumerate(_array(anti.get(_REQUIRED), where)):
        term = _object(item, f"{where}[{index}]")
        terms.append(
            AntiAffinityTerm(
                topology_key=str(term.get("topologyKey")),
                selector=LabelSelector.from_manifest(
                    term.get("labelSelector"), f"{where}[{index}].labelSelector"
                ),
            )
        )
    return tuple(terms)


def _requests(spec: Mapping[str, Any], resource: str) -> int:
    parse = parse_quantity_cpu if resource == "cpu" else parse_quantity_bytes
    total = 0
    for index, item in enumerate(_array(spec.get("containers"), "spec.containers")):
        container = _object(item, f"spec.containers[{index}]")
        resources = _object(container.get("resources"), f"spec.containers[{index}].resources")
        requests = _object(resources.get("requests"), f"spec.containers[{index}].requests")
        value = requests.get(resource)
        if value is not None:
            try:
                total += parse(value)
            except (TypeError, ValueError) as e:
                raise ConstraintError(f"spec.containers[{index}] {resource} {value!r}") from e
    return total

"""A propagation policy's placement, and the member clusters it allows.

Pure. Reads the parts of a PropagationPolicy or ClusterPropagationPolicy
(``policy.karmada.io/v1alpha1``) that decide where replicas may go, and matches member clusters
against them the way the Karmada scheduler does:

* ``ClusterAffinity`` (Karmada's ``util.ClusterMatches``): ``exclude`` wins; then the
  ``labelSelector``, the ``fieldSelector`` (``provider`` and ``region`` as labels, ``zone`` against
  the cluster's zones: ``In`` needs one common zone, ``NotIn`` none, ``Exists`` some zones,
  ``DoesNotExist`` none), and ``clusterNames``; each part left out matches everything.
* ``clusterAffinities``: ordered groups; the scheduler places into the first group that has a
  feasible cluster, so the clusters eligible are that group's. Overflow groups are not ranked:
  they only take replicas the primary group has no room for.
* ``clusterTolerations`` against the cluster's ``NoSchedule`` and ``NoExecute`` taints.
* ``spreadConstraints``: with static weights Karmada ignores them (its ``spreadconstraint``
  package skips them for a ``Weighted`` static list), so the controller honours the user's
  ``maxGroups`` itself: the weights name clusters of at most that many groups, greenest first.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from multicluster.members import MemberCluster
from shared.cluster.constraints import ConstraintError, LabelSelector, Requirement
from shared.cluster.topology import tolerated
from shared.core.shapes import array_reader, object_reader

_HARD_EFFECTS = frozenset({"NoSchedule", "NoExecute"})
_FIELD_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
_SPREAD_FIELDS = frozenset({"cluster", "region", "zone", "provider"})


class PolicyError(ValueError):
    """A policy this controller cannot read; it is reported and left alone."""


_object = object_reader(PolicyError)
_array = array_reader(PolicyError)


class PolicyKind(enum.StrEnum):
    PROPAGATION = "PropagationPolicy"
    CLUSTER_PROPAGATION = "ClusterPropagationPolicy"

    @property
    def plural(self) -> str:
        return (
            "propagationpolicies"
            if self is PolicyKind.PROPAGATION
            else "clusterpropagationpolicies"
        )


@dataclass(frozen=True, slots=True)
class ClusterAffinity:
    """Karmada's ``ClusterAffinity``: names, exclusions, label and field selectors."""

    names: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    labels: LabelSelector | None = None
    fields: tuple[Requirement, ...] = ()
    """``fieldSelector.matchExpressions`` on ``provider`` and ``region``."""
    zones: tuple[Requirement, ...] = ()
    """``fieldSelector.matchExpressions`` on ``zone``."""

    def matches(self, cluster: MemberCluster) -> bool:
        if cluster.name in self.exclude:
            return False
        if self.labels is not None and not self.labels.matches(cluster.labels):
            return False
        fields = cluster.fields
        if not all(requirement.matches(fields) for requirement in self.fields):
            return False
        if not all(_zones_match(requirement, cluster.zones) for requirement in self.zones):
            return False
        return not self.names or cluster.name in self.names

    @classmethod
    def from_manifest(cls, value: object, where: str) -> ClusterAffinity:
        affinity = _object(value, where)
        labels = None
        if affinity.get("labelSelector") is not None:
            try:
                labels = LabelSelector.from_manifest(
                    affinity["labelSelector"], f"{where}.labelSelector"
                )
            except ConstraintError as e:
                raise PolicyError(str(e)) from e
        fields: list[Requirement] = []
        zones: list[Requirement] = []
        selector = _object(affinity.get("fieldSelector"), f"{where}.fieldSelector")
        expressions = _array(selector.get("matchExpressions"), f"{where}.fieldSelector")
        for index, item in enumerate(expressions):
            at = f"{where}.fieldSelector.matchExpressions[{index}]"
            expression = _object(item, at)
            key, operator = expression.get("key"), expression.get("operator")
            if key not in ("provider", "region", "zone"):
                raise PolicyError(f"{at}.key {key!r} is not provider, region or zone")
            if operator not in _FIELD_OPERATORS:
                raise PolicyError(
                    f"{at}.operator {operator!r} is not In, NotIn, Exists or DoesNotExist"
                )
            values = frozenset(str(v) for v in _array(expression.get("values"), f"{at}.values"))
            (zones if key == "zone" else fields).append(Requirement(key, operator, values))
        return cls(
            names=_names(affinity.get("clusterNames"), f"{where}.clusterNames"),
            exclude=_names(affinity.get("exclude"), f"{where}.exclude"),
            labels=labels,
            fields=tuple(fields),
            zones=tuple(zones),
        )


def _zones_match(requirement: Requirement, zones: Sequence[str]) -> bool:
    if requirement.operator == "In":
        return any(zone in requirement.values for zone in zones)
    if requirement.operator == "NotIn":
        return not any(zone in requirement.values for zone in zones)
    if requirement.operator == "Exists":
        return bool(zones)
    return not zones  # DoesNotExist


def _names(value: object, where: str) -> tuple[str, ...]:
    return tuple(str(name) for name in _array(value, where))


@dataclass(frozen=True, slots=True)
class SpreadLimit:
    """A spread constraint's group field and its ``maxGroups`` (0: no limit)."""

    by: str
    max_groups: int = 0


@dataclass(frozen=True, slots=True)
class Placement:
    """What a policy says about where its replicas may go and how they are divided."""

    affinity: ClusterAffinity | None = None
    affinities: tuple[tuple[str, ClusterAffinity], ...] = ()
    """``clusterAffinities``: (affinityName, affinity) in order."""
    tolerations: tuple[Mapping[str, Any], ...] = ()
    spreads: tuple[SpreadLimit, ...] = ()
    scheduling_type: str = "Duplicated"
    """``Duplicated`` (Karmada's default) or ``Divided``."""
    division: str = ""
    """``Weighted`` or ``Aggregated`` for ``Divided``; empty when not set."""
    dynamic_weight: str = ""
    static_weights: tuple[tuple[ClusterAffinity, int], ...] = ()
    """The ``staticWeightList`` the policy holds now."""

    @classmethod
    def from_manifest(cls, spec: Mapping[str, Any]) -> Placement:
        placement = _object(spec.get("placement"), "spec.placement")
        where = "spec.placement"
        affinity = None
        if placement.get("clusterAffinity") is not None:
            affinity = ClusterAffinity.from_manifest(
                placement["clusterAffinity"], f"{where}.clusterAffinity"
            )
        affinities = []
        for index, item in enumerate(
            _array(placement.get("clusterAffinities"), f"{where}.clusterAffinities")
        ):
            at = f"{where}.clusterAffinities[{index}]"
            name = _object(item, at).get("affinityName")
            affinities.append((str(name or index), ClusterAffinity.from_manifest(item, at)))
        tolerations = tuple(
            _object(item, f"{where}.clusterTolerations[{index}]")
            for index, item in enumerate(
                _array(placement.get("clusterTolerations"), f"{where}.clusterTolerations")
            )
        )
        spreads = []
        for index, item in enumerate(
            _array(placement.get("spreadConstraints"), f"{where}.spreadConstraints")
        ):
            at = f"{where}.spreadConstraints[{index}]"
            spread = _object(item, at)
            by = spread.get("spreadByField") or ""
            max_groups = spread.get("maxGroups") or 0
            if type(max_groups) is not int or max_groups < 0:
                raise PolicyError(f"{at}.maxGroups must be a non-negative integer")
            if by in _SPREAD_FIELDS:
                spreads.append(SpreadLimit(str(by), max_groups))
        scheduling = _object(placement.get("replicaScheduling"), f"{where}.replicaScheduling")
        preference = _object(
            scheduling.get("weightPreference"), f"{where}.replicaScheduling.weightPreference"
        )
        static = []
        weights_at = f"{where}.replicaScheduling.weightPreference.staticWeightList"
        for index, item in enumerate(_array(preference.get("staticWeightList"), weights_at)):
            entry = _object(item, f"{weights_at}[{index}]")
            weight = entry.get("weight")
            if type(weight) is not int or weight < 0:
                raise PolicyError(f"{weights_at}[{index}].weight must be a non-negative integer")
            target = ClusterAffinity.from_manifest(
                entry.get("targetCluster"), f"{weights_at}[{index}].targetCluster"
            )
            static.append((target, weight))
        return cls(
            affinity=affinity,
            affinities=tuple(affinities),
            tolerations=tolerations,
            spreads=tuple(spreads),
            scheduling_type=str(scheduling.get("replicaSchedulingType") or "Duplicated"),
            division=str(scheduling.get("replicaDivisionPreference") or ""),
            dynamic_weight=str(preference.get("dynamicWeight") or ""),
            static_weights=tuple(static),
        )

    def tolerates(self, cluster: MemberCluster) -> bool:
        return all(
            tolerated(self.tolerations, taint)
            for taint in cluster.taints
            if taint.effect in _HARD_EFFECTS
        )

    def current_weights(self, clusters: Iterable[MemberCluster]) -> dict[str, int]:
        """Each cluster's weight under the policy's static list now, as the scheduler reads it:
        the highest weight of the entries that match it; clusters no entry matches get none."""
        weights: dict[str, int] = {}
        for cluster in clusters:
            matched = [weight for target, weight in self.static_weights if target.matches(cluster)]
            if matched and max(matched) > 0:
                weights[cluster.name] = max(matched)
        return weights

    @property
    def weighable(self) -> str | None:
        """None when static weights decide this policy's division; else why they do not."""
        if self.scheduling_type != "Divided":
            return (
                f"replicaSchedulingType is {self.scheduling_type}: every cluster gets all replicas"
            )
        if self.division != "Weighted":
            division = self.division or "not set"
            return f"replicaDivisionPreference is {division}, not Weighted"
        if self.dynamic_weight:
            return f"dynamicWeight {self.dynamic_weight} overrides any static weight list"
        return None


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The clusters a policy lets its replicas go to, and why the others are out."""

    clusters: tuple[str, ...]
    """Sorted names."""
    excluded: Mapping[str, str] = field(default_factory=dict)
    affinity_name: str | None = None
    """The ``clusterAffinities`` group the clusters come from, when the policy has groups."""


def eligible_clusters(placement: Placement, clusters: Iterable[MemberCluster]) -> Eligibility:
    """The clusters ``placement`` allows (affinity, first feasible affinity group, taints)."""
    members = sorted(clusters, key=lambda c: c.name)
    excluded: dict[str, str] = {}
    tolerated_ones = []
    for cluster in members:
        if placement.tolerates(cluster):
            tolerated_ones.append(cluster)
        else:
            excluded[cluster.name] = "has a taint the policy does not tolerate"
    if placement.affinities:
        for name, affinity in placement.affinities:
            chosen = [c.name for c in tolerated_ones if affinity.matches(c)]
            if chosen:
                for cluster in tolerated_ones:
                    if cluster.name not in chosen:
                        excluded[cluster.name] = f"not in clusterAffinities group {name}"
                return Eligibility(tuple(chosen), excluded, name)
        for cluster in tolerated_ones:
            excluded[cluster.name] = "in no clusterAffinities group"
        return Eligibility((), excluded)
    affinity = placement.affinity or ClusterAffinity()
    chosen = []
    for cluster in tolerated_ones:
        if affinity.matches(cluster):
            chosen.append(cluster.name)
        else:
            excluded[cluster.name] = "not selected by clusterAffinity"
    return Eligibility(tuple(chosen), excluded)


def group_of(cluster: MemberCluster, by: str) -> str:
    """The spread group a cluster belongs to for ``spreadByField`` ``by``."""
    if by == "cluster":
        return cluster.name
    if by == "zone":
        return ",".join(sorted(cluster.zones))
    return cluster.fields.get(by, "")


def limit_groups(
    eligibility: Eligibility,
    members: Mapping[str, MemberCluster],
    spreads: Sequence[SpreadLimit],
    expected: Mapping[str, float],
) -> Eligibility:
    """Only the clusters of the ``maxGroups`` greenest groups of each spread constraint.

    A group's place is its greenest cluster's expected intensity; groups without carbon data come
    last, by name. Never adds a cluster.
    """
    kept = list(eligibility.clusters)
    excluded = dict(eligibility.excluded)
    for spread in spreads:
        if spread.max_groups <= 0:
            continue
        groups: dict[str, list[str]] = {}
        for name in kept:
            groups.setdefault(group_of(members[name], spread.by), []).append(name)

        order = sorted((_group_place(g, names, expected) for g, names in groups.items()))
        chosen = {group for _, group in order[: spread.max_groups]}
        for group, names in groups.items():
            if group not in chosen:
                for name in names:
                    excluded[name] = f"beyond maxGroups {spread.max_groups} by {spread.by}"
        kept = [name for name in kept if group_of(members[name], spread.by) in chosen]
    return Eligibility(tuple(kept), excluded, eligibility.affinity_name)


def _group_place(
    group: str, names: Sequence[str], expected: Mapping[str, float]
) -> tuple[float, str]:
    values = [expected[name] for name in names if name in expected]
    return (min(values) if values else float("inf"), group)

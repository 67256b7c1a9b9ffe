"""What the admission path remembers between pods: eligibility and rankings per data state.

Carbon data changes once per refresh and the node inventory only when a node changes, while pods
arrive by the thousand in between. Both sources hand out a new object on every change (the
refresher a new ``CarbonSnapshot``, the inventory a new ``nodes`` mapping), so the identity of that
object is the version of the data: everything derived from it is computed once and reused until
the object is replaced.

* Eligibility depends on the nodes and on the pod's hard constraints only (``nodeSelector``,
  required node affinity, tolerations), keyed by their canonical JSON; at most ``max_entries``
  distinct constraint sets are remembered (least recently used first out), so a flood of unusual
  pods cannot grow memory.
* The ranking of every region the snapshot knows is computed once; the ranking of an eligible
  subset is that ranking restricted to it (expected intensities do not depend on the subset, so
  this is exactly what ``rank`` would return), and its preference terms, low-carbon set and data
  quality warnings are remembered per subset. Expected intensities look ``horizon`` hours ahead
  of the clock, so a ranking is reused for at most ``ranking_reuse`` of clock time (one refresh
  interval by default) even when the snapshot stays the same, e.g. while providers are down.
* A read pool's low-carbon set also depends on the pool's pods (``pool_choice``), which neither
  key follows: it is computed anew for every pod, from the remembered ranking.

Apart from that bounded reuse of the clock, the results are the values a cold computation gives;
``DecisionCache`` only skips work.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Generic, TypeGuard, TypeVar

import orjson

from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.constraints import PoolConstraints
from shared.cluster.inventory import NodeInfo
from shared.cluster.room import Host
from shared.cluster.workloads import BoundPod, Workloads
from shared.core.clock import rfc3339
from shared.core.models import Freshness
from shared.scoring.ranking import PreferenceTerm, Ranking, low_carbon_set, preference_terms, rank
from webhook.eligibility import Eligibility, eligible_regions
from webhook.mutation import annotations_from
from webhook.pools import (
    PoolNeed,
    SpreadDomains,
    hard_rules,
    may_have_hard_rules,
    pool_hosts,
    pool_rules_key,
    same_rules,
    spread_domains,
)
from webhook.review import EncodedPatch

DEFAULT_MAX_ENTRIES = 256
"""Constraint sets (and eligible region sets) remembered per data state."""
DEFAULT_RANKING_REUSE = timedelta(seconds=60)
"""How long a ranking may be reused for an unchanged snapshot: the default refresh interval."""

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"
_LIST_LIMIT = 4
"""Region names spelled out in one warning before it says ``+N more``."""

PATCHES_KEPT = 64
"""Patches a ``RegionChoice`` remembers before it starts over (a few pod shapes times the
seconds its ranking is reused)."""

PatchKey = tuple[object, ...]
"""A patch's pod shape, policy, region label key, decision time and further annotations."""

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class RegionChoice:
    """The ranking of one set of eligible regions and everything a decision derives from it."""

    ranking: Ranking
    terms: tuple[PreferenceTerm, ...]
    """Preferred-affinity terms (``preference_terms``)."""
    low_carbon: tuple[str, ...]
    """Regions the ``require`` policy allows that have eligible nodes (``low_carbon_set``)."""
    warnings: tuple[str, ...]
    """Data quality warnings (``data_quality_warnings``)."""
    ranking_text: str
    """``ranking.annotation()``."""
    sources_text: str
    """``ranking.sources()`` joined by commas."""
    patches: dict[PatchKey, EncodedPatch] = field(default_factory=dict, compare=False, repr=False)
    """Region patches made from this choice (``remembered_patch``)."""

    def remembered_patch(self, key: PatchKey) -> EncodedPatch | None:
        """The patch made from this choice for ``key`` before, if any."""
        return self.patches.get(key)

    def remember_patch(self, key: PatchKey, patch: EncodedPatch) -> None:
        """Keep ``patch`` for pods of ``key``; at most ``PATCHES_KEPT`` are kept."""
        if len(self.patches) >= PATCHES_KEPT:
            self.patches.clear()
        self.patches[key] = patch

    def annotations(self, decided_at: str) -> dict[str, str]:
        """The decision annotations (``webhook.mutation.decision_annotations``), stamped with
        ``decided_at`` (``rfc3339`` of the decision time)."""
        return annotations_from(self.ranking_text, self.sources_text, decided_at)


def choose(
    ranking: Ranking,
    eligible: Mapping[str, int],
    *,
    low_carbon_fraction: float,
    holds: Callable[[Collection[str]], bool] | None = None,
) -> RegionChoice:
    """Everything that follows from ``ranking`` of the ``eligible`` regions (region → nodes).

    With ``holds`` (``shared.cluster.room.holds_pool`` of the pod's pool) the low-carbon set is
    the smallest greenest prefix that holds the pool, or empty when nothing does."""
    chosen = low_carbon_set(
        ranking, fraction=low_carbon_fraction, node_counts=eligible, holds=holds
    )
    low_carbon = tuple(region for region in chosen if eligible.get(region, 0) > 0)
    return RegionChoice(
        ranking=ranking,
        terms=preference_terms(ranking),
        low_carbon=low_carbon,
        warnings=tuple(data_quality_warnings(ranking)),
        ranking_text=ranking.annotation(),
        sources_text=",".join(ranking.sources()),
    )


def data_quality_warnings(ranking: Ranking) -> list[str]:
    """Say when the ranking rests on stale or static data, or leaves regions out."""
    warnings: list[str] = []
    stale = [s.region for s in ranking.scores if s.freshness is Freshness.STALE]
    static = [s.region for s in ranking.scores if s.freshness is Freshness.STATIC]
    if stale:
        warnings.append(f"carbon data is stale (last good values) for {region_list(stale)}")
    if static:
        warnings.append(f"carbon data is a static annual average for {region_list(static)}")
    if ranking.unranked:
        warnings.append(f"no carbon data, not ranked: {region_list(ranking.unranked)}")
    return warnings


def _same(a: tuple[object, ...], b: tuple[object, ...]) -> bool:
    """Each member of ``a`` is the one of ``b``, or equal to it: cheap where identity holds."""
    return all(x is y or x == y for x, y in zip(a, b, strict=True))


def region_list(regions: Iterable[str]) -> str:
    """``a, b, c, d +2 more``: region names short enough for a warning."""
    names = list(regions)
    shown = ", ".join(names[:_LIST_LIMIT])
    return shown if len(names) <= _LIST_LIMIT else f"{shown} +{len(names) - _LIST_LIMIT} more"


def restrict(ranking: Ranking, regions: Collection[str]) -> Ranking:
    """``ranking`` of every known region cut down to ``regions``: what ``rank`` gives for them.

    A region's score does not depend on the other regions ranked, and the order (expected
    intensity, then name) of a subsequence is the subsequence of the order. Regions the full
    ranking has no score for, or never heard of, are unranked.
    """
    scores = tuple(score for score in ranking.scores if score.region in regions)
    ranked = {score.region for score in scores}
    return Ranking(
        scores=scores,
        unranked=tuple(sorted(region for region in regions if region not in ranked)),
        horizon_hours=ranking.horizon_hours,
        computed_at=ranking.computed_at,
    )


def constraints_key(pod: Mapping[str, Any]) -> bytes | None:
    """Canonical JSON of the parts of ``pod`` eligibility depends on; None when they are not
    plain JSON (a pod read from YAML may carry dates or huge integers), which are not cached.

    Members of the wrong JSON type go into the key as they are: ``eligible_regions`` raises on
    them, so such a key is never stored.
    """
    spec = pod.get("spec")
    if not _is_object(spec):
        parts: list[Any] = ["spec", spec]
    else:
        affinity = spec.get("affinity")
        node_affinity = affinity.get("nodeAffinity") if _is_object(affinity) else None
        required = (
            node_affinity.get(_REQUIRED) if _is_object(node_affinity) else ["affinity", affinity]
        )
        parts = [spec.get("nodeSelector"), required, spec.get("tolerations")]
    try:
        return orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        return None


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    # ``dict`` first: it is what JSON decodes to, and the ABC check is several times slower.
    return type(value) is dict or isinstance(value, Mapping)


_ANYWHERE_KEY = constraints_key({})
"""The key of a pod without placement rules, computed once: every decision asks for it."""


class Lru(Generic[K, V]):
    """A mapping that keeps at most ``size`` entries, dropping the least recently used."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True, slots=True)
class _Eligible:
    eligibility: Eligibility
    regions: frozenset[tuple[str, int]]
    """``eligibility.regions`` as a hashable key for the ranking memo."""


class _NodesState:
    """Eligibility memo for one version of the node inventory."""

    def __init__(self, nodes: Mapping[str, NodeInfo], size: int) -> None:
        self.nodes = nodes  # held, so the identity check can never match a recycled id
        self.eligible: Lru[bytes, _Eligible] = Lru(size)
        self.domains: Lru[bytes, tuple[SpreadDomains]] = Lru(size)


class _CarbonState:
    """Ranking memo for one snapshot, one horizon and one point in time."""

    def __init__(
        self, snapshot: CarbonSnapshot, *, now: datetime, horizon_hours: int, size: int
    ) -> None:
        self.snapshot = snapshot  # held, so the identity check can never match a recycled id
        self.horizon_hours = horizon_hours
        self.full = rank(snapshot, snapshot.regions, now=now, horizon_hours=horizon_hours)
        self.choices: Lru[tuple[frozenset[tuple[str, int]], float], RegionChoice] = Lru(size)
        self.excluded: Lru[frozenset[tuple[str, int]], tuple[object, tuple[str, ...]]] = Lru(size)

    def usable(
        self, snapshot: CarbonSnapshot, *, now: datetime, horizon_hours: int, reuse: timedelta
    ) -> bool:
        computed_at = self.full.computed_at
        return (
            snapshot is self.snapshot
            and horizon_hours == self.horizon_hours
            and computed_at <= now < computed_at + reuse
        )


class DecisionCache:
    """Eligibility per node inventory version, rankings per carbon snapshot. Not thread-safe:
    the admission path runs on one event loop."""

    def __init__(
        self,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ranking_reuse: timedelta = DEFAULT_RANKING_REUSE,
    ) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1, got {max_entries}")
        self.max_entries = max_entries
        self.ranking_reuse = ranking_reuse
        self._nodes: _NodesState | None = None
        self._carbon: _CarbonState | None = None
        self._stamp: tuple[float, str] = (float("nan"), "")
        self._pools: Lru[bytes, tuple[PoolConstraints | None]] = Lru(max_entries)
        self._hosts: tuple[SpreadDomains, Mapping[Any, BoundPod], tuple[Host, ...]] | None = None
        self._pool_choice: tuple[tuple[object, ...], RegionChoice] | None = None

    def pool_rules(self, pod: Mapping[str, Any]) -> PoolConstraints | None:
        """``webhook.pools.hard_rules(pod)``, remembered by what it reads besides the pod's own
        labels: a read pool's pods share their template, and parsing its quantities costs more
        than the rest of a decision; a StatefulSet's pods differ only in their labels, read
        anew for each.

        Raises ``MutationError`` like ``hard_rules`` (and remembers nothing then)."""
        if not may_have_hard_rules(pod):
            return None  # most pods: no spread constraint and no pod anti-affinity at all
        key = pool_rules_key(pod)
        found = self._pools.get(key) if key is not None else None
        if found is not None:
            return same_rules(found[0], pod)
        rules = hard_rules(pod)
        if key is not None:
            self._pools.put(key, (rules,))
        return rules

    def spread_domains(
        self, pod: Mapping[str, Any], nodes: Mapping[str, NodeInfo]
    ) -> SpreadDomains:
        """``webhook.pools.spread_domains(pod, nodes.values())``, remembered per node inventory
        by the same constraints as eligibility: a read pool's pods share them.

        Raises ``MutationError`` like ``spread_domains`` (and remembers nothing then)."""
        state = self._nodes_state(nodes)
        key = constraints_key(pod)
        found = state.domains.get(key) if key is not None else None
        if found is None:
            found = (spread_domains(pod, nodes.values()),)
            if key is not None:
                state.domains.put(key, found)
        return found[0]

    def _nodes_state(self, nodes: Mapping[str, NodeInfo]) -> _NodesState:
        state = self._nodes
        if state is None or state.nodes is not nodes:
            state = self._nodes = _NodesState(nodes, self.max_entries)
        return state

    def eligibility(
        self, pod: Mapping[str, Any], nodes: Mapping[str, NodeInfo]
    ) -> tuple[Eligibility, frozenset[tuple[str, int]]]:
        """``eligible_regions(pod, nodes.values())`` and its regions as a memo key.

        Raises ``MutationError`` like ``eligible_regions`` (and remembers nothing then)."""
        state = self._nodes_state(nodes)
        key = constraints_key(pod) if pod else _ANYWHERE_KEY
        entry = state.eligible.get(key) if key is not None else None
        if entry is None:
            computed = eligible_regions(pod, nodes.values())
            entry = _Eligible(
                eligibility=Eligibility(
                    regions=MappingProxyType(dict(computed.regions)),
                    region_key=computed.region_key,
                    nodes=computed.nodes,
                    tiers=MappingProxyType(dict(computed.tiers)),
                    tier_regions=MappingProxyType(dict(computed.tier_regions)),
                ),
                regions=frozenset(computed.regions.items()),
            )
            if key is not None:
                state.eligible.put(key, entry)
        return entry.eligibility, entry.regions

    def choice(
        self,
        snapshot: CarbonSnapshot,
        eligibility: Eligibility,
        regions_key: frozenset[tuple[str, int]],
        *,
        now: datetime,
        horizon_hours: int,
        low_carbon_fraction: float,
    ) -> RegionChoice:
        """The ranking of ``eligibility.regions`` on ``snapshot`` and what follows from it."""
        state = self._carbon_state(snapshot, now=now, horizon_hours=horizon_hours)
        key = (regions_key, low_carbon_fraction)
        found = state.choices.get(key)
        if found is None:
            ranking = restrict(state.full, eligibility.regions.keys())
            found = choose(ranking, eligibility.regions, low_carbon_fraction=low_carbon_fraction)
            state.choices.put(key, found)
        return found

    def excluded_greener(
        self,
        snapshot: CarbonSnapshot,
        eligibility: Eligibility,
        regions_key: frozenset[tuple[str, int]],
        nodes: Mapping[str, NodeInfo],
        *,
        now: datetime,
        horizon_hours: int,
    ) -> tuple[str, ...]:
        """Regions with schedulable nodes that are greener than every region the pod's own rules
        (node selector, required node affinity, tolerations) leave it, greenest first: what those
        rules cost in carbon. Empty when the pod may use the greenest region. ``regions_key`` is
        the memo key ``eligibility`` returned with ``eligibility``."""
        state = self._carbon_state(snapshot, now=now, horizon_hours=horizon_hours)
        anywhere, _ = self.eligibility({}, nodes)
        found = state.excluded.get(regions_key)
        if found is not None and found[0] is anywhere:
            return found[1]
        allowed = eligibility.regions
        ranking = state.full
        best_allowed = next((s for s in ranking.scores if s.region in allowed), None)
        excluded = (
            ()
            if best_allowed is None
            else tuple(
                score.region
                for score in ranking.scores
                if score.expected_g_per_kwh < best_allowed.expected_g_per_kwh
                and score.region in anywhere.regions
                and score.region not in allowed
            )
        )
        # Remembered with the cluster-wide eligibility it was cut against: a new node inventory
        # gives a new one, and the memo no longer matches.
        state.excluded.put(regions_key, (anywhere, excluded))
        return excluded

    def pool_hosts(self, domains: SpreadDomains, workloads: Workloads) -> tuple[Host, ...]:
        """``webhook.pools.pool_hosts(domains, workloads)``, the same tuple again while the
        domains and the bound pods stay the same (a read pool's pods arriving together)."""
        last = self._hosts
        if last is not None and last[0] is domains and last[1] is workloads.pods:
            return last[2]
        hosts = pool_hosts(domains, workloads)
        self._hosts = (domains, workloads.pods, hosts)
        return hosts

    def pool_choice(
        self,
        snapshot: CarbonSnapshot,
        eligibility: Eligibility,
        regions_key: frozenset[tuple[str, int]],
        *,
        now: datetime,
        horizon_hours: int,
        low_carbon_fraction: float,
        need: PoolNeed,
        bound: tuple[BoundPod, ...],
    ) -> RegionChoice:
        """Like ``choice``, with the low-carbon set sized by what ``need`` holds (a pool's room).

        The set depends on the pods placed and wanted, which the memo of ``choice`` does not
        follow: only the last pool choice is remembered, for as long as the ranking, the pool's
        rules (``PoolConstraints.placement_key``), its hosts, the pods bound in its namespace
        (``bound``, where ``need.placed`` comes from) and the pods it wants stay the same."""
        state = self._carbon_state(snapshot, now=now, horizon_hours=horizon_hours)
        key = (
            state,
            regions_key,
            low_carbon_fraction,
            need.pool.placement_key(),
            need.hosts,
            bound,
            need.wanted,
        )
        last = self._pool_choice
        if last is not None and _same(last[0], key):
            return last[1]
        ranking = restrict(state.full, eligibility.regions.keys())
        found = choose(
            ranking,
            eligibility.regions,
            low_carbon_fraction=low_carbon_fraction,
            holds=need.holds(),
        )
        self._pool_choice = (key, found)
        return found

    def _carbon_state(
        self, snapshot: CarbonSnapshot, *, now: datetime, horizon_hours: int
    ) -> _CarbonState:
        state = self._carbon
        if state is None or not state.usable(
            snapshot, now=now, horizon_hours=horizon_hours, reuse=self.ranking_reuse
        ):
            state = self._carbon = _CarbonState(
                snapshot, now=now, horizon_hours=horizon_hours, size=self.max_entries
            )
        return state

    def decided_at(self, now: datetime) -> str:
        """``rfc3339(now)``; the annotation has seconds precision, so pods admitted within the
        same second share one text."""
        second = now.timestamp() // 1
        if second != self._stamp[0]:
            self._stamp = (second, rfc3339(now))
        return self._stamp[1]

    @property
    def sizes(self) -> tuple[int, int]:
        """Remembered (constraint sets, eligible region sets), for tests and debugging."""
        return (
            len(self._nodes.eligible) if self._nodes is not None else 0,
            len(self._carbon.choices) if self._carbon is not None else 0,
        )

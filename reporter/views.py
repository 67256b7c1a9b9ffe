"""Precomputed answers, rebuilt only when the snapshot, the inventory or the CPU usage changes.

Handlers ask ``ViewCache.current()`` and read a ``View``: node footprints (and their JSON) in name
order for bisect pagination, region rows, totals and the read-replica placement. A view is built
synchronously, without awaiting anything, so a burst of concurrent requests builds it once and
never touches a provider. Inventory mappings are immutable snapshots that are replaced on every
change (``shared.cluster.kube`` and the demo inventory both work that way), so "changed" is an
identity test, which costs nothing at 5,000 nodes.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol

from reporter.footprints import NodeFootprint, node_footprints, node_json
from reporter.placement import ReplicaPlacement, replica_placement
from reporter.regions import (
    DEFAULT_HORIZON_HOURS,
    RegionLookup,
    RegionRow,
    region_json,
    region_rows,
)
from reporter.summary import totals
from shared.carbon.snapshot import CarbonSnapshot
from shared.cluster.inventory import Inventory, NodeInfo, PodInfo
from shared.core.clock import Clock

_NO_USAGE: Mapping[str, int] = MappingProxyType({})


class SnapshotSource(Protocol):
    """Anything holding the latest snapshot, e.g. ``shared.carbon.refresh.CarbonRefresher``."""

    @property
    def snapshot(self) -> CarbonSnapshot | None: ...


class NodeUsage(Protocol):
    """Measured CPU usage per node in millicores (metrics.k8s.io), replaced as a whole on change."""

    @property
    def usage_millis(self) -> Mapping[str, int]: ...


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[dict[str, Any]]
    total: int
    remaining: int
    last_name: str | None


@dataclass(frozen=True, slots=True)
class _NodeList:
    names: tuple[str, ...]
    items: tuple[dict[str, Any], ...]

    def page(self, *, after: str | None, limit: int) -> Page:
        start = bisect.bisect_right(self.names, after) if after is not None else 0
        end = min(len(self.names), start + limit)
        return Page(
            items=self.items[start:end],
            total=len(self.names),
            remaining=len(self.names) - end,
            last_name=self.names[end - 1] if end > start else None,
        )


@dataclass(frozen=True, slots=True)
class View:
    """Everything the API answers from, for one (snapshot, inventory, usage) state."""

    snapshot: CarbonSnapshot
    nodes: Mapping[str, NodeInfo]
    pods: Mapping[tuple[str, str], PodInfo]
    usage: Mapping[str, int]
    computed_at: datetime
    footprints: tuple[NodeFootprint, ...]
    regions: tuple[RegionRow, ...]
    region_items: Mapping[str, dict[str, Any]]
    totals: Mapping[str, Any]
    placement: ReplicaPlacement
    _all_nodes: _NodeList
    _by_region: Mapping[str, _NodeList] = field(default_factory=dict)

    def nodes_page(self, *, region: str | None, after: str | None, limit: int) -> Page:
        listing = self._all_nodes if region is None else self._by_region.get(region)
        if listing is None:
            return Page(items=(), total=0, remaining=0, last_name=None)
        return listing.page(after=after, limit=limit)

    def region_names(self) -> tuple[str, ...]:
        return tuple(row.region for row in self.regions)


def build_view(
    snapshot: CarbonSnapshot,
    nodes: Mapping[str, NodeInfo],
    pods: Mapping[tuple[str, str], PodInfo],
    *,
    catalog: RegionLookup,
    extra_regions: Sequence[str],
    usage: Mapping[str, int],
    now: datetime,
    horizon_hours: int = DEFAULT_HORIZON_HOURS,
) -> View:
    footprints = node_footprints(
        nodes.values(), pods.values(), snapshot=snapshot, catalog=catalog, usage_millis=usage
    )
    items = tuple(node_json(fp) for fp in footprints)
    grouped: dict[str, tuple[list[str], list[dict[str, Any]]]] = {}
    for fp, item in zip(footprints, items, strict=True):
        if fp.node.region is not None:
            names, members = grouped.setdefault(fp.node.region, ([], []))
            names.append(fp.node.name)
            members.append(item)
    rows = region_rows(
        snapshot,
        nodes.values(),
        catalog,
        extra_regions=extra_regions,
        now=now,
        horizon_hours=horizon_hours,
    )
    return View(
        snapshot=snapshot,
        nodes=nodes,
        pods=pods,
        usage=usage,
        computed_at=now,
        footprints=footprints,
        regions=rows,
        region_items={row.region: region_json(row) for row in rows},
        totals=totals(footprints),
        placement=replica_placement(
            footprints, pods.values(), snapshot=snapshot, now=now, horizon_hours=horizon_hours
        ),
        _all_nodes=_NodeList(tuple(fp.node.name for fp in footprints), items),
        _by_region={
            region: _NodeList(tuple(names), tuple(members))
            for region, (names, members) in grouped.items()
        },
    )


def _same(a: Mapping[Any, Any], b: Mapping[Any, Any]) -> bool:
    # An inventory without pods may hand out a fresh empty mapping on every read.
    return a is b or (not a and not b)


class ViewCache:
    """Builds a ``View`` when its inputs change and hands out the same one until they do."""

    def __init__(
        self,
        *,
        snapshot_source: SnapshotSource,
        inventory: Inventory,
        catalog: RegionLookup,
        clock: Clock,
        extra_regions: Sequence[str] = (),
        usage: NodeUsage | None = None,
        horizon_hours: int = DEFAULT_HORIZON_HOURS,
    ) -> None:
        self._snapshot_source = snapshot_source
        self._inventory = inventory
        self._catalog = catalog
        self._clock = clock
        self._extra_regions = tuple(extra_regions)
        self._usage = usage
        self._horizon_hours = horizon_hours
        self._view: View | None = None
        self._empty: CarbonSnapshot | None = None
        self.builds = 0
        """How many views were built (observability and tests)."""

    @property
    def inventory(self) -> Inventory:
        return self._inventory

    def ready(self) -> bool:
        """Whether the carbon data has been refreshed once and the inventory listed once: before
        that a view describes nothing real."""
        return self._snapshot_source.snapshot is not None and self._inventory.synced

    def snapshot(self) -> CarbonSnapshot:
        """The source's snapshot; before the first refresh, one stable empty snapshot."""
        snapshot = self._snapshot_source.snapshot
        if snapshot is not None:
            return snapshot
        if self._empty is None:
            self._empty = CarbonSnapshot(taken_at=datetime.fromtimestamp(0, UTC))
        return self._empty

    def current(self) -> View:
        snapshot = self.snapshot()
        nodes, pods = self._inventory.nodes, self._inventory.pods
        usage = self._usage.usage_millis if self._usage is not None else _NO_USAGE
        view = self._view
        if (
            view is not None
            and view.snapshot is snapshot
            and _same(view.nodes, nodes)
            and _same(view.pods, pods)
            and _same(view.usage, usage)
        ):
            return view
        view = build_view(
            snapshot,
            nodes,
            pods,
            catalog=self._catalog,
            extra_regions=self._extra_regions,
            usage=usage,
            now=self._clock(),
            horizon_hours=self._horizon_hours,
        )
        self._view = view
        self.builds += 1
        return view

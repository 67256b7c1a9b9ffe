"""Karmada member clusters and the grid each one draws from.

Pure. A ``Cluster`` (``cluster.karmada.io/v1alpha1``) says where it runs in ``spec.provider`` and
``spec.region``; the region catalog (with the user's overrides for on-prem names) maps that to a
catalog region and its grid zone. ``spec.provider`` only picks the cloud when it names one
(``aws``, ``gcp``/``Google Cloud``, ``azure``, ``onprem``); any other provider text leaves the
choice to the catalog's usual order. A cluster whose region is missing, unknown or has no grid
zone is left out of every ranking, with the reason, so the controller can name it in an event.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.cluster.inventory import Taint
from shared.cluster.manifest import mapping, object_name, sequence, string_map
from shared.cluster.topology import read_taint
from shared.core.models import Cloud, RegionInfo
from shared.regions.overrides import parse_cloud

Resolve = Callable[[str, Cloud | None], RegionInfo | None]
"""``RegionCatalog.resolve``: a region name (and the cloud, when known) to its catalog entry."""


@dataclass(frozen=True, slots=True)
class MemberCluster:
    """One Karmada member cluster, as far as placement and carbon care."""

    name: str
    labels: Mapping[str, str]
    provider: str = ""
    region: str = ""
    zones: tuple[str, ...] = ()
    """``spec.zones``, or ``spec.zone`` alone (the older single-zone field)."""
    taints: tuple[Taint, ...] = ()

    @property
    def fields(self) -> dict[str, str]:
        """What a policy's ``fieldSelector`` matches on (Karmada's ``extractClusterFields``):
        ``provider`` and ``region`` when set; zones are matched apart."""
        found = {"provider": self.provider, "region": self.region}
        return {key: value for key, value in found.items() if value}


def cluster_from_manifest(obj: Mapping[str, Any]) -> MemberCluster:
    """A ``MemberCluster`` from a Cluster object; ``ManifestError`` naming the field when bad."""
    manifest = mapping(obj, "cluster")
    metadata = mapping(manifest.get("metadata"), "metadata")
    name = object_name(metadata, "cluster")
    spec = mapping(manifest.get("spec"), f"cluster {name}: spec")
    texts = {}
    for key in ("provider", "region", "zone"):
        value = spec.get(key)
        texts[key] = value if isinstance(value, str) else ""
    zones = [str(z) for z in sequence(spec.get("zones"), f"cluster {name}: spec.zones") if z]
    if not zones and texts["zone"]:
        zones = [texts["zone"]]
    return MemberCluster(
        name=name,
        labels=string_map(metadata.get("labels"), f"cluster {name}: metadata.labels"),
        provider=texts["provider"],
        region=texts["region"],
        zones=tuple(zones),
        taints=tuple(
            read_taint(raw, f"cluster {name}: spec.taints[{index}]")
            for index, raw in enumerate(
                sequence(spec.get("taints"), f"cluster {name}: spec.taints")
            )
        ),
    )


@dataclass(frozen=True, slots=True)
class ClusterRegions:
    """Each member cluster's catalog region, and the clusters that have none (with why)."""

    regions: Mapping[str, RegionInfo]
    """Cluster name → the catalog region (with a grid zone) it draws power from."""
    unplaced: Mapping[str, str]
    """Cluster name → why it is left out of the ranking."""

    def region_names(self) -> frozenset[str]:
        """The catalog region names to fetch carbon data for."""
        return frozenset(info.region for info in self.regions.values())


def map_regions(clusters: Iterable[MemberCluster], resolve: Resolve) -> ClusterRegions:
    """Map every cluster to its catalog region through ``resolve``."""
    regions: dict[str, RegionInfo] = {}
    unplaced: dict[str, str] = {}
    for cluster in clusters:
        if not cluster.region:
            unplaced[cluster.name] = "spec.region is not set"
            continue
        cloud = parse_cloud(cluster.provider) if cluster.provider else None
        info = resolve(cluster.region, cloud)
        if info is None:
            unplaced[cluster.name] = (
                f"region {cluster.region!r} is not in the region catalog (add it to the "
                "region overrides)"
            )
        elif cloud is not None and info.cloud is not cloud:
            unplaced[cluster.name] = (
                f"provider {cluster.provider!r} has no region {cluster.region!r} in the catalog"
            )
        elif info.zone is None:
            unplaced[cluster.name] = f"region {info.key} has no grid zone in the catalog"
        else:
            regions[cluster.name] = info
    return ClusterRegions(regions, unplaced)

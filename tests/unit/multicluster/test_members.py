"""Member clusters map to catalog regions through spec.provider and spec.region."""

from __future__ import annotations

import pytest

from multicluster.members import cluster_from_manifest, map_regions
from shared.cluster.manifest import ManifestError
from shared.regions.catalog import RegionCatalog
from shared.regions.overrides import RegionOverride
from tests.unit.multicluster.builders import cluster

CATALOG = RegionCatalog.load()


def test_a_cloud_cluster_maps_to_its_catalog_region_and_zone() -> None:
    placed = map_regions([cluster_from_manifest(cluster("eu", "eu-central-1"))], CATALOG.resolve)

    assert placed.regions["eu"].key == "aws/eu-central-1"
    assert placed.regions["eu"].zone == "DE"
    assert placed.unplaced == {}


def test_the_provider_picks_the_cloud_and_a_region_of_another_cloud_is_refused() -> None:
    clusters = [
        cluster_from_manifest(cluster("gcp", "europe-west1", provider="Google Cloud")),
        cluster_from_manifest(cluster("wrong", "europe-west1", provider="aws")),
    ]

    placed = map_regions(clusters, CATALOG.resolve)

    assert placed.regions["gcp"].key == "gcp/europe-west1"
    assert "provider 'aws' has no region 'europe-west1'" in placed.unplaced["wrong"]


def test_an_unknown_provider_leaves_the_choice_to_the_catalog() -> None:
    placed = map_regions(
        [cluster_from_manifest(cluster("x", "westeurope", provider="some-hoster"))],
        CATALOG.resolve,
    )

    assert placed.regions["x"].key == "azure/westeurope"


def test_clusters_without_a_usable_region_are_left_out_with_the_reason() -> None:
    clusters = [
        cluster_from_manifest(cluster("bare", None)),
        cluster_from_manifest(cluster("lab", "basement-3", provider=None)),
    ]

    placed = map_regions(clusters, CATALOG.resolve)

    assert placed.regions == {}
    assert placed.unplaced["bare"] == "spec.region is not set"
    assert "not in the region catalog" in placed.unplaced["lab"]


def test_an_on_prem_name_maps_through_the_overrides() -> None:
    catalog = CATALOG.with_overrides(
        [RegionOverride(origin="overrides.yaml: entry 1", index=1, region="dc-paris-1", zone="FR")]
    )

    placed = map_regions(
        [cluster_from_manifest(cluster("paris", "dc-paris-1", provider=None))], catalog.resolve
    )

    assert placed.regions["paris"].zone == "FR"
    assert placed.region_names() == {"dc-paris-1"}


def test_zones_labels_and_taints_are_read_and_a_bad_taint_is_refused() -> None:
    member = cluster_from_manifest(
        cluster(
            "eu",
            labels={"tier": "gold"},
            zones=["eu-central-1a"],
            taints=[{"key": "maintenance", "effect": "NoSchedule"}],
        )
    )
    assert member.zones == ("eu-central-1a",)
    assert member.labels == {"tier": "gold"}
    assert member.taints[0].key == "maintenance"
    assert member.fields == {"provider": "aws", "region": "eu-central-1"}

    with pytest.raises(ManifestError, match=r"cluster eu: spec.taints\[0\]"):
        cluster_from_manifest(cluster("eu", taints=[{"effect": "NoSchedule"}]))

"""Builders for the Karmada controller's tests: Cluster and policy manifests, carbon snapshots."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.core.models import Cloud, Freshness, Intensity, Provenance, RegionInfo

Obj = dict[str, Any]
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def cluster(
    name: str,
    region: str | None = "eu-central-1",
    *,
    provider: str | None = "aws",
    labels: Mapping[str, str] | None = None,
    taints: Iterable[Obj] = (),
    zones: Iterable[str] = (),
) -> Obj:
    """A ``cluster.karmada.io/v1alpha1`` Cluster as the Karmada API server returns it."""
    spec: Obj = {"syncMode": "Push", "apiEndpoint": f"https://{name}.example:6443"}
    if provider is not None:
        spec["provider"] = provider
    if region is not None:
        spec["region"] = region
    if zones:
        spec["zones"] = list(zones)
    if taints:
        spec["taints"] = list(taints)
    return {
        "apiVersion": "cluster.karmada.io/v1alpha1",
        "kind": "Cluster",
        "metadata": {"name": name, "labels": dict(labels or {})},
        "spec": spec,
    }


def policy(
    name: str = "read-pool",
    namespace: str | None = "stellar",
    *,
    annotated: bool = True,
    scheduling: Obj | None = None,
    weights: Mapping[str, int] | None = None,
    **placement: Any,
) -> Obj:
    """A PropagationPolicy (a ClusterPropagationPolicy when ``namespace`` is None), ``Divided``
    and ``Weighted`` unless ``scheduling`` says otherwise."""
    replica_scheduling = scheduling or {
        "replicaSchedulingType": "Divided",
        "replicaDivisionPreference": "Weighted",
    }
    if weights is not None:
        replica_scheduling = {
            **replica_scheduling,
            "weightPreference": {
                "staticWeightList": [
                    {"targetCluster": {"clusterNames": [cluster_name]}, "weight": weight}
                    for cluster_name, weight in weights.items()
                ]
            },
        }
    metadata: Obj = {"name": name, "annotations": {}, "labels": {}}
    if namespace is not None:
        metadata["namespace"] = namespace
    if annotated:
        metadata["annotations"]["stellar.org/carbon-aware"] = "enabled"
    return {
        "apiVersion": "policy.karmada.io/v1alpha1",
        "kind": "PropagationPolicy" if namespace is not None else "ClusterPropagationPolicy",
        "metadata": metadata,
        "spec": {
            "resourceSelectors": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": name}],
            "placement": {**placement, "replicaScheduling": replica_scheduling},
        },
    }


def snapshot(
    values: Mapping[str, float], *, stale: Iterable[str] = (), at: datetime = NOW
) -> CarbonSnapshot:
    """Catalog region → gCO2eq/kWh, live unless named in ``stale``."""
    stale = set(stale)
    regions = {}
    for region, value in values.items():
        freshness = Freshness.STALE if region in stale else Freshness.LIVE
        current = Intensity(
            zone=f"Z-{region}",
            g_per_kwh=value,
            observed_at=at,
            provenance=Provenance("electricitymaps", fetched_at=at, freshness=freshness),
        )
        regions[region] = RegionCarbon(
            RegionInfo(cloud=Cloud.AWS, region=region, zone=f"Z-{region}"), current
        )
    return CarbonSnapshot(taken_at=at, regions=regions)


GRID = {"europe-west1": 120.0, "eu-central-1": 380.0, "us-east-1": 400.0}
"""Expected gCO2eq/kWh of the three member clusters' regions."""
CLUSTERS = [
    cluster("member-be", "europe-west1", provider="gcp"),
    cluster("member-de", "eu-central-1"),
    cluster("member-us", "us-east-1"),
]


def binding(name: str, replicas: int, policy_name: str = "read-pool") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": "stellar",
            "annotations": {
                "propagationpolicy.karmada.io/name": policy_name,
                "propagationpolicy.karmada.io/namespace": "stellar",
            },
        },
        "spec": {"replicas": replicas},
    }

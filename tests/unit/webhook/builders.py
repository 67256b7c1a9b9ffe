"""Small builders for webhook tests: nodes, carbon snapshots, pods and AdmissionReviews."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import jsonpatch
import kubernetes_validate

from shared.carbon.snapshot import CarbonSnapshot, RegionCarbon
from shared.cluster.inventory import NodeInfo, Taint
from shared.core.models import Cloud, Freshness, Intensity, Provenance, RegionInfo
from webhook.eligibility import TOPOLOGY_REGION

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
K8S_SCHEMA = "1.36"
"""Newest Kubernetes minor whose Pod schema every patched pod is validated against."""


def node(
    name: str,
    region: str | None,
    *,
    key: str = TOPOLOGY_REGION,
    labels: Mapping[str, str] | None = None,
    taints: tuple[Taint, ...] = (),
    ready: bool = True,
    unschedulable: bool = False,
) -> NodeInfo:
    all_labels = {"kubernetes.io/hostname": name, **(labels or {})}
    if region is not None:
        all_labels[key] = region
    return NodeInfo(
        name=name,
        labels=all_labels,
        region=region,
        region_label=key if region is not None else None,
        cloud=Cloud.AWS,
        ready=ready,
        unschedulable=unschedulable,
        taints=taints,
    )


def reading(
    value: float, *, freshness: Freshness = Freshness.LIVE, provider: str = "electricitymaps"
) -> Intensity:
    if freshness is Freshness.STATIC:
        provider = "static"
    return Intensity(
        zone="Z",
        g_per_kwh=value,
        observed_at=NOW,
        provenance=Provenance(provider=provider, fetched_at=NOW, freshness=freshness),
    )


def snapshot(
    values: Mapping[str, float | tuple[float, Freshness] | None], *, taken_at: datetime = NOW
) -> CarbonSnapshot:
    """Regions → gCO2eq/kWh (live), (value, freshness), or None for a region without data."""
    regions: dict[str, RegionCarbon] = {}
    for region, value in values.items():
        current = None
        if isinstance(value, tuple):
            current = reading(value[0], freshness=value[1])
        elif value is not None:
            current = reading(value)
        info = RegionInfo(cloud=Cloud.AWS, region=region, zone="Z")
        regions[region] = RegionCarbon(info=info, current=current)
    return CarbonSnapshot(taken_at=taken_at, regions=regions)


THREE_REGIONS = {"us-west-2": 118.0, "europe-west1": 180.0, "ap-south-1": 650.0}
"""us-west-2 greenest (weight 100), europe-west1 weight 43, ap-south-1 dirtiest (no term)."""


def cluster() -> dict[str, NodeInfo]:
    nodes = [
        node("usw2-a", "us-west-2"),
        node("usw2-b", "us-west-2"),
        node("euw1-a", "europe-west1"),
        node("aps1-a", "ap-south-1"),
    ]
    return {n.name: n for n in nodes}


def read_replica_pod(**overrides: Any) -> dict[str, Any]:
    """A read-pool pod as the upstream Stellar-K8s operator's StatefulSet creates it."""
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "mainnet-core-read-0",
            "generateName": "mainnet-core-read-",
            "namespace": "stellar",
            "labels": {
                "app.kubernetes.io/name": "stellar-node",
                "app.kubernetes.io/instance": "mainnet-core",
                "app.kubernetes.io/managed-by": "stellar-operator",
                "stellar.org/role": "read-replica",
                "statefulset.kubernetes.io/pod-name": "mainnet-core-read-0",
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "StatefulSet",
                    "name": "mainnet-core-read",
                    "uid": "5f0c6b7e-2a51-4c4b-9d0e-6f1f7d8f9a01",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "containers": [
                {
                    "name": "stellar-core",
                    "image": "stellar/stellar-core:22.1.0",
                    "command": ["/bin/bash", "/config/startup.sh"],
                    "ports": [
                        {"name": "http", "containerPort": 11626},
                        {"name": "peer", "containerPort": 11625},
                    ],
                    "volumeMounts": [{"name": "config", "mountPath": "/config"}],
                }
            ],
            "volumes": [
                {
                    "name": "config",
                    "configMap": {"name": "mainnet-core-read-config", "defaultMode": 493},
                }
            ],
        },
    }
    for path, value in overrides.items():
        target = pod
        *parents, last = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return pod


def review(
    pod: Mapping[str, Any] | None,
    *,
    operation: str = "CREATE",
    kind: str = "Pod",
    uid: str | None = None,
) -> dict[str, Any]:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid or str(uuid.uuid4()),
            "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": kind.lower() + "s"},
            "name": "",
            "namespace": "stellar",
            "operation": operation,
            "userInfo": {"username": "system:serviceaccount:kube-system:statefulset-controller"},
            "object": copy.deepcopy(pod) if pod is not None else None,
            "oldObject": None,
            "dryRun": False,
        },
    }


def apply_and_validate(pod: Mapping[str, Any], patch: list[Any]) -> dict[str, Any]:
    """Apply ``patch`` as the API server would and check the result is a valid Pod."""
    patched: dict[str, Any] = jsonpatch.apply_patch(copy.deepcopy(dict(pod)), patch)
    kubernetes_validate.validate(patched, K8S_SCHEMA, strict=True)
    affinity = (patched["spec"].get("affinity") or {}).get("nodeAffinity") or {}
    for term in affinity.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
        # The schema only says int32; the API server's validation wants 1..100.
        assert 1 <= term["weight"] <= 100
    return patched

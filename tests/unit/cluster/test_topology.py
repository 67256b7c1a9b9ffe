"""Reading placement facts from node manifests."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.cluster.inventory import Taint
from shared.cluster.manifest import ManifestError
from shared.cluster.topology import REGION_LABELS, node_cloud, node_from_manifest, node_region
from shared.core.models import TIER_LABEL, Cloud

GA, BETA = REGION_LABELS

EKS_NODE: dict[str, Any] = {
    "kind": "Node",
    "apiVersion": "v1",
    "metadata": {
        "name": "ip-10-0-12-34.us-west-2.compute.internal",
        "resourceVersion": "4711",
        "labels": {
            "kubernetes.io/hostname": "ip-10-0-12-34.us-west-2.compute.internal",
            "node.kubernetes.io/instance-type": "m6i.2xlarge",
            "topology.kubernetes.io/region": "us-west-2",
            "topology.kubernetes.io/zone": "us-west-2a",
            "eks.amazonaws.com/nodegroup": "stellar",
        },
    },
    "spec": {
        "providerID": "aws:///us-west-2a/i-0a1b2c3d4e5f60718",
        "taints": [
            {"key": "stellar.org/dedicated", "value": "validator", "effect": "NoSchedule"},
            {
                "key": "node.kubernetes.io/not-ready",
                "effect": "NoExecute",
                "timeAdded": "2026-11-26T10:00:00Z",
            },
        ],
    },
    "status": {
        "capacity": {"cpu": "8", "memory": "32475852Ki", "pods": "58"},
        "allocatable": {"cpu": "7910m", "memory": "31458956Ki", "pods": "58"},
        "conditions": [
            {"type": "MemoryPressure", "status": "False"},
            {"type": "Ready", "status": "True", "reason": "KubeletReady"},
        ],
    },
}


def eks_node(**changes: Any) -> dict[str, Any]:
    node = copy.deepcopy(EKS_NODE)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        target = node
        for part in parents:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return node


# --- regions ------------------------------------------------------------------------------------


def test_region_comes_from_the_ga_label_before_the_beta_one() -> None:
    labels = {GA: "us-west-2", BETA: "us-east-1"}
    assert node_region(labels) == ("us-west-2", GA)


def test_region_falls_back_to_the_beta_label() -> None:
    assert node_region({BETA: "europe-west1"}) == ("europe-west1", BETA)


def test_configured_region_key_is_read_only_after_the_well_known_labels() -> None:
    assert node_region({"example.com/site": "dc-1"}, "example.com/site") == (
        "dc-1",
        "example.com/site",
    )
    assert node_region({GA: "eastus", "example.com/site": "dc-1"}, "example.com/site") == (
        "eastus",
        GA,
    )


def test_empty_region_values_do_not_count() -> None:
    assert node_region({GA: "", BETA: "westus"}) == ("westus", BETA)


def test_node_without_region_labels_has_no_region() -> None:
    assert node_region({"kubernetes.io/hostname": "a"}) == (None, None)
    assert node_region({}, "example.com/site") == (None, None)


# --- clouds -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider_id", "cloud"),
    [
        ("aws:///us-west-2a/i-0a1b2c3d4e5f60718", Cloud.AWS),
        ("gce://stellar-prod/us-central1-a/gke-pool-1-abcd", Cloud.GCP),
        (
            "azure:///subscriptions/0000/resourceGroups/mc_rg/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/aks-pool-vmss/virtualMachines/0",
            Cloud.AZURE,
        ),
    ],
)
def test_cloud_is_read_from_the_provider_id_scheme(provider_id: str, cloud: Cloud) -> None:
    assert node_cloud({}, provider_id) is cloud


@pytest.mark.parametrize(
    ("label", "cloud"),
    [
        ("eks.amazonaws.com/nodegroup", Cloud.AWS),
        ("cloud.google.com/gke-nodepool", Cloud.GCP),
        ("kubernetes.azure.com/agentpool", Cloud.AZURE),
    ],
)
def test_cloud_is_read_from_managed_node_pool_labels(label: str, cloud: Cloud) -> None:
    assert node_cloud({label: "pool-1"}, None) is cloud


def test_explicit_cloud_label_wins_over_detection() -> None:
    assert node_cloud({"stellar.org/cloud": "onprem"}, "aws:///x/i-1") is Cloud.ONPREM
    assert node_cloud({"stellar.org/cloud": "GCP"}, None) is Cloud.GCP


def test_unknown_explicit_cloud_value_falls_back_to_detection() -> None:
    assert node_cloud({"stellar.org/cloud": "ibm"}, "azure:///x") is Cloud.AZURE


def test_node_from_an_unknown_provider_has_no_cloud() -> None:
    assert node_cloud({"kubernetes.io/hostname": "kind-worker"}, "kind://docker/kind/w") is None
    assert node_cloud({}, None) is None


# --- nodes --------------------------------------------------------------------------------------


def test_eks_node_manifest_becomes_node_info() -> None:
    node = node_from_manifest(EKS_NODE)
    assert node.name == "ip-10-0-12-34.us-west-2.compute.internal"
    assert node.region == "us-west-2"
    assert node.region_label == GA
    assert node.cloud is Cloud.AWS
    assert node.instance_type == "m6i.2xlarge"
    assert node.cpu_millis == 7910
    assert node.vcpus == pytest.approx(7.91)
    assert node.memory_bytes == 31458956 * 1024
    assert node.ready
    assert not node.unschedulable
    assert node.schedulable
    assert node.taints == (
        Taint(key="stellar.org/dedicated", effect="NoSchedule", value="validator"),
        Taint(key="node.kubernetes.io/not-ready", effect="NoExecute"),
    )
    assert node.labels["topology.kubernetes.io/zone"] == "us-west-2a"


def managed(manager: str, time: str, *labels: str) -> dict[str, Any]:
    """A ``managedFields`` entry owning ``labels``, as the API server writes one."""
    return {
        "manager": manager,
        "operation": "Update",
        "apiVersion": "v1",
        "time": time,
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:labels": {f"f:{key}": {} for key in labels}}},
    }


def tiered_node(*entries: Any) -> dict[str, Any]:
    node = eks_node(**{f"metadata__labels__{TIER_LABEL}": "2"})
    node["metadata"]["managedFields"] = list(entries)
    return node


def test_the_tier_label_is_dated_by_the_managed_fields_entry_that_owns_it() -> None:
    node = node_from_manifest(
        tiered_node(
            managed("kubelet", "2026-11-26T08:00:00Z", "kubernetes.io/hostname"),
            managed("stellar-carbon-tiers", "2026-11-26T10:15:02Z", TIER_LABEL),
            managed("kube-controller-manager", "2026-11-26T11:00:00Z"),
        )
    )
    assert node.tier_set_at == datetime(2026, 11, 26, 10, 15, 2, tzinfo=UTC)


def test_a_tier_label_owned_twice_is_dated_by_the_newer_write() -> None:
    node = node_from_manifest(
        tiered_node(
            managed("stellar-carbon-tiers", "2026-11-26T10:15:02Z", TIER_LABEL),
            managed("kubectl-label", "2026-11-26T10:40:00Z", TIER_LABEL, "team"),
        )
    )
    assert node.tier_set_at == datetime(2026, 11, 26, 10, 40, tzinfo=UTC)


def test_a_node_without_the_tier_label_or_its_record_has_no_tier_time() -> None:
    owned = managed("stellar-carbon-tiers", "2026-11-26T10:15:02Z", TIER_LABEL)
    untiered = eks_node()
    untiered["metadata"]["managedFields"] = [owned]

    assert node_from_manifest(untiered).tier_set_at is None
    assert node_from_manifest(tiered_node()).tier_set_at is None
    assert (
        node_from_manifest(eks_node(**{f"metadata__labels__{TIER_LABEL}": "2"})).tier_set_at is None
    )


@pytest.mark.parametrize(
    "broken",
    [
        "not an entry",
        {"time": 17, "fieldsV1": {"f:metadata": {"f:labels": {f"f:{TIER_LABEL}": {}}}}},
        {"time": "yesterday", "fieldsV1": {"f:metadata": {"f:labels": {f"f:{TIER_LABEL}": {}}}}},
        {
            "time": "2026-11-26T10:00:00",
            "fieldsV1": {"f:metadata": {"f:labels": {f"f:{TIER_LABEL}": {}}}},
        },
        {"time": "2026-11-26T10:00:00Z", "fieldsV1": {"f:metadata": []}},
    ],
)
def test_managed_fields_entries_the_api_server_would_not_send_are_skipped(broken: Any) -> None:
    node = node_from_manifest(
        tiered_node(broken, managed("stellar-carbon-tiers", "2026-11-26T09:00:00Z", TIER_LABEL))
    )
    assert node.tier_set_at == datetime(2026, 11, 26, 9, tzinfo=UTC)


def test_cordoned_node_is_not_schedulable() -> None:
    node = node_from_manifest(eks_node(spec__unschedulable=True))
    assert node.unschedulable
    assert not node.schedulable


@pytest.mark.parametrize("status", ["False", "Unknown"])
def test_node_whose_ready_condition_is_not_true_is_not_ready(status: str) -> None:
    node = node_from_manifest(eks_node(status__conditions=[{"type": "Ready", "status": status}]))
    assert not node.ready
    assert not node.schedulable


def test_node_without_a_ready_condition_is_not_ready() -> None:
    assert not node_from_manifest(eks_node(status__conditions=None)).ready


def test_capacity_stands_in_for_missing_allocatable() -> None:
    node = node_from_manifest(eks_node(status__allocatable=None))
    assert node.cpu_millis == 8000
    assert node.memory_bytes == 32475852 * 1024


def test_node_without_resources_reports_zero_capacity() -> None:
    node = node_from_manifest({"metadata": {"name": "bare"}})
    assert (node.cpu_millis, node.memory_bytes, node.region, node.cloud) == (0, 0, None, None)
    assert node.taints == ()


def test_beta_instance_type_label_is_read_when_the_ga_one_is_missing() -> None:
    labels = {"beta.kubernetes.io/instance-type": "n2-standard-8", BETA: "us-central1"}
    node = node_from_manifest({"metadata": {"name": "gke-1", "labels": labels}})
    assert node.instance_type == "n2-standard-8"
    assert (node.region, node.region_label) == ("us-central1", BETA)


def test_extra_region_key_is_used_for_on_prem_nodes() -> None:
    labels = {"example.com/grid-zone": "DE", "stellar.org/cloud": "onprem"}
    node = node_from_manifest(
        {"metadata": {"name": "rack-1", "labels": labels}}, "example.com/grid-zone"
    )
    assert (node.region, node.region_label, node.cloud) == (
        "DE",
        "example.com/grid-zone",
        Cloud.ONPREM,
    )


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        ({"metadata": {}}, "metadata.name"),
        ({"metadata": {"name": ""}}, "metadata.name"),
        ("not a node", "node"),
        ({"metadata": {"name": "n", "labels": {"a": 1}}}, "metadata.labels"),
        ({"metadata": {"name": "n"}, "spec": {"taints": [{"key": "k"}]}}, "spec.taints[0]"),
        ({"metadata": {"name": "n"}, "spec": {"taints": "k=v"}}, "spec.taints"),
        ({"metadata": {"name": "n"}, "spec": {"unschedulable": "yes"}}, "spec.unschedulable"),
        (
            {"metadata": {"name": "n"}, "status": {"allocatable": {"cpu": "lots"}}},
            "status.allocatable.cpu",
        ),
        (
            {"metadata": {"name": "n"}, "status": {"capacity": {"memory": "-1Gi"}}},
            "status.capacity.memory",
        ),
    ],
)
def test_malformed_node_manifest_raises_manifest_error_naming_the_field(
    manifest: Any, fragment: str
) -> None:
    with pytest.raises(ManifestError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        node_from_manifest(manifest)


def test_manifest_error_is_a_value_error() -> None:
    assert issubclass(ManifestError, ValueError)

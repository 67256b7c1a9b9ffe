"""Reading placement facts from node and pod manifests."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.cluster.inventory import Taint
from shared.cluster.topology import (
    REGION_LABELS,
    STELLAR_ROLE_LABELS,
    ManifestError,
    node_cloud,
    node_from_manifest,
    node_region,
    parse_quantity_bytes,
    parse_quantity_cpu,
    pod_from_manifest,
    pod_role,
)
from shared.core.models import Cloud

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


# --- quantities ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("250m", 250),
        ("2", 2000),
        ("1.5", 1500),
        (".5", 500),
        ("0.1", 100),
        ("100u", 1),  # rounded up, as Kubernetes' MilliValue does
        ("1500000n", 2),
        ("2e3", 2_000_000),
        ("+4", 4000),
        (8, 8000),
        (0.25, 250),
    ],
)
def test_cpu_quantities_become_millicores(text: str | int | float, millis: int) -> None:
    assert parse_quantity_cpu(text) == millis


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("1Ki", 1024),
        ("31458956Ki", 31458956 * 1024),
        ("512Mi", 512 * 2**20),
        ("1.5Gi", 3 * 2**29),
        ("2Ti", 2 * 2**40),
        ("1Pi", 2**50),
        ("1k", 1000),
        ("129M", 129_000_000),
        ("1G", 10**9),
        ("1T", 10**12),
        ("1E", 10**18),
        ("129e6", 129_000_000),
        ("1E3", 1000),
        ("500m", 1),  # a fraction of a byte rounds up
        ("0", 0),
        (1024, 1024),
    ],
)
def test_memory_quantities_become_bytes(text: str | int, size: int) -> None:
    assert parse_quantity_bytes(text) == size


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "1KB",
        "1ki",
        "1K",
        "1.2.3",
        "--1",
        "-1",
        "1 Gi",
        "Infinity",
        "nan",
        "1e999",
        "8Ei",  # 2**63 bytes does not fit Kubernetes' int64
        "1" * 80,
        True,
        None,
        float("nan"),
        float("inf"),
        -3,
    ],
)
def test_malformed_quantities_raise_value_error(bad: Any) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the type is the contract)
        parse_quantity_bytes(bad)
    with pytest.raises(ValueError):  # noqa: PT011
        parse_quantity_cpu(bad)


@given(st.integers(min_value=0, max_value=2**40))
def test_binary_suffixes_scale_exactly(n: int) -> None:
    assert parse_quantity_bytes(f"{n}Ki") == n * 1024
    assert parse_quantity_bytes(f"{n}Mi") == n * 2**20


@given(st.integers(min_value=0, max_value=10**12))
def test_millicore_quantities_round_trip(n: int) -> None:
    assert parse_quantity_cpu(f"{n}m") == n
    assert parse_quantity_cpu(str(n)) == n * 1000


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


# --- pods ---------------------------------------------------------------------------------------


def _container(cpu: str | None = None, limit: str | None = None, **extra: Any) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    if cpu is not None:
        resources["requests"] = {"cpu": cpu}
    if limit is not None:
        resources["limits"] = {"cpu": limit}
    return {"name": "c", "image": "stellar/stellar-core", "resources": resources, **extra}


def test_pod_manifest_becomes_pod_info() -> None:
    pod = pod_from_manifest(
        {
            "metadata": {
                "name": "mainnet-read-0",
                "namespace": "stellar",
                "labels": {"stellar.org/role": "read-replica"},
                "annotations": {"stellar.org/carbon-ranking": "us-west-2=118"},
            },
            "spec": {"nodeName": "node-a", "containers": [_container("500m"), _container("1")]},
            "status": {"phase": "Running"},
        }
    )
    assert (pod.namespace, pod.name, pod.node_name, pod.phase) == (
        "stellar",
        "mainnet-read-0",
        "node-a",
        "Running",
    )
    assert pod.labels == {"stellar.org/role": "read-replica"}
    assert pod.annotations == {"stellar.org/carbon-ranking": "us-west-2=118"}
    assert pod.cpu_request_millis == 1500


def test_unscheduled_pod_defaults_to_pending_in_the_default_namespace() -> None:
    pod = pod_from_manifest({"metadata": {"name": "p"}, "spec": {"containers": [_container()]}})
    assert (pod.namespace, pod.node_name, pod.phase, pod.cpu_request_millis) == (
        "default",
        None,
        "Pending",
        0,
    )


def test_cpu_limit_stands_in_for_a_missing_request() -> None:
    pod = pod_from_manifest(
        {"metadata": {"name": "p"}, "spec": {"containers": [_container(limit="2")]}}
    )
    assert pod.cpu_request_millis == 2000


def test_pod_cpu_request_counts_init_containers_sidecars_and_overhead() -> None:
    spec = {
        "initContainers": [
            _container("3"),  # runs alone before anything else: peak 3000m
            _container("100m", restartPolicy="Always"),  # sidecar: stays for the pod's life
            _container("200m"),  # runs beside the sidecar: 300m
        ],
        "containers": [_container("1"), _container("500m")],
        "overhead": {"cpu": "250m"},
    }
    pod = pod_from_manifest({"metadata": {"name": "p"}, "spec": spec})
    # max(app 1500m + sidecar 100m, init peak 3000m) + overhead 250m
    assert pod.cpu_request_millis == 3250


def test_malformed_pod_cpu_request_names_the_container() -> None:
    with pytest.raises(ManifestError, match=r"containers\[1\]\.resources\.requests\.cpu"):
        pod_from_manifest(
            {"metadata": {"name": "p"}, "spec": {"containers": [_container("1"), _container("x")]}}
        )


# --- Stellar roles ------------------------------------------------------------------------------


def _operator_labels(component: str, node_type: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "stellar-node",
        "app.kubernetes.io/instance": "mainnet",
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": "stellar-operator",
        "stellar.org/node-type": node_type,
    }


@pytest.mark.parametrize(
    ("labels", "role"),
    [
        ({"stellar.org/role": "read-replica"}, "read-replica"),
        ({"stellar.org/role": "Validator"}, "validator"),
        ({"stellar.org/role": "soroban_rpc"}, "soroban-rpc"),
        (_operator_labels("validator", "Validator"), "validator"),
        (_operator_labels("horizon", "Horizon"), "horizon"),
        (_operator_labels("sorobanrpc", "SorobanRpc"), "soroban-rpc"),
        (
            _operator_labels("validator", "Validator") | {"stellar.org/role": "read-replica"},
            "read-replica",
        ),
        ({"app.kubernetes.io/name": "stellar-core"}, "validator"),
        ({"app.kubernetes.io/name": "horizon"}, "horizon"),
        ({"app.kubernetes.io/name": "soroban-rpc"}, "soroban-rpc"),
        ({"app.kubernetes.io/name": "stellar-rpc"}, "soroban-rpc"),
        ({"app.kubernetes.io/name": "x", "app.kubernetes.io/component": "horizon"}, "horizon"),
        ({"app.kubernetes.io/component": "stellar-core"}, "validator"),
        (
            {"app.kubernetes.io/name": "stellar-node", "app.kubernetes.io/component": "validator"},
            "validator",
        ),
    ],
)
def test_stellar_role_is_read_from_known_label_conventions(
    labels: dict[str, str], role: str
) -> None:
    assert pod_role(labels) == role


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"app": "nginx"},
        {"app.kubernetes.io/component": "validator"},  # too generic without the operator's name
        {"app.kubernetes.io/name": "stellar-node", "app.kubernetes.io/component": "db"},
        {"stellar.org/role": "bootstrap"},
    ],
)
def test_pods_without_a_stellar_role_have_none(labels: dict[str, str]) -> None:
    assert pod_role(labels) is None


def test_every_role_label_key_is_read_on_its_own() -> None:
    for key in STELLAR_ROLE_LABELS:
        assert pod_role({key: "horizon"}) == "horizon", key

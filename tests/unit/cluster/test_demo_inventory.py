"""The static inventory file format and the packaged demo cluster."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest
import yaml

from shared.cluster.demo import DEMO_RESOURCE, InventoryFileError, StaticInventory, demo_inventory
from shared.cluster.inventory import Inventory
from shared.cluster.pods import pod_role
from shared.core.errors import ConfigError
from shared.core.models import Cloud

NAMED_REGIONS = {
    Cloud.AWS: {"us-west-2", "us-east-1", "eu-west-1", "eu-central-1", "ap-southeast-1"},
    Cloud.GCP: {"us-central1", "us-east1", "us-west1", "europe-west1", "asia-east1"},
    Cloud.AZURE: {"eastus", "eastus2", "westus", "westeurope", "southeastasia"},
}
GKE_POOL = "cloud.google.com/gke-nodepool"
PROVIDER_SCHEMES = {Cloud.AWS: "aws://", Cloud.GCP: "gce://", Cloud.AZURE: "azure://"}

NODE_YAML = """\
- metadata:
    name: node-a
    labels:
      topology.kubernetes.io/region: us-west-2
      node.kubernetes.io/instance-type: m6i.2xlarge
  spec:
    providerID: aws:///us-west-2a/i-0123456789abcdef0
  status:
    allocatable: {cpu: 7910m, memory: 31Gi}
    conditions: [{type: Ready, status: "True"}]
- kind: Pod
  metadata:
    name: read-0
    namespace: stellar
    labels: {stellar.org/role: read-replica}
  spec:
    nodeName: node-a
    containers: [{name: core, resources: {requests: {cpu: 500m}}}]
"""


@pytest.fixture(scope="module")
def demo() -> StaticInventory:
    return demo_inventory()


# --- the demo cluster ---------------------------------------------------------------------------


def test_demo_covers_exactly_the_fifteen_named_regions_with_two_or_three_nodes_each(
    demo: StaticInventory,
) -> None:
    per_region = Counter((node.cloud, node.region) for node in demo.nodes.values())
    found: dict[Cloud | None, set[str | None]] = {}
    for cloud, region in per_region:
        found.setdefault(cloud, set()).add(region)
    assert found == NAMED_REGIONS
    assert all(2 <= count <= 3 for count in per_region.values()), per_region


def test_demo_nodes_look_like_real_managed_nodes(demo: StaticInventory) -> None:
    for node in demo.nodes.values():
        assert node.cloud is not None
        assert node.region_label == "topology.kubernetes.io/region"
        assert node.instance_type
        assert node.cpu_millis >= 3000, node.name
        assert node.memory_bytes >= 8 * 2**30, node.name
        assert node.labels["kubernetes.io/hostname"] == node.name
        assert node.labels["topology.kubernetes.io/zone"]
        assert node.ready


def test_demo_nodes_carry_provider_ids_of_their_cloud(demo: StaticInventory) -> None:
    text = resources.files("shared.data").joinpath(DEMO_RESOURCE).read_text(encoding="utf-8")
    manifests = [m for m in yaml.safe_load(text)["items"] if m["kind"] == "Node"]
    assert len(manifests) == len(demo.nodes)
    for manifest in manifests:
        node = demo.nodes[manifest["metadata"]["name"]]
        assert node.cloud is not None
        assert manifest["spec"]["providerID"].startswith(PROVIDER_SCHEMES[node.cloud])


def test_demo_instance_types_match_each_cloud(demo: StaticInventory) -> None:
    prefixes: dict[Cloud, tuple[str, ...]] = {
        Cloud.AWS: ("m6i.", "c6i.", "r6i."),
        Cloud.GCP: ("n2-", "e2-", "c2-"),
        Cloud.AZURE: ("Standard_",),
    }
    for node in demo.nodes.values():
        assert node.cloud is not None
        assert node.instance_type is not None
        assert node.instance_type.startswith(prefixes[node.cloud]), node.name


def test_demo_has_one_dedicated_node_and_one_cordoned_node(demo: StaticInventory) -> None:
    tainted = [n for n in demo.nodes.values() if n.taints and n.schedulable]
    cordoned = [n for n in demo.nodes.values() if n.unschedulable]
    assert [n.region for n in tainted] == ["us-west-2"]
    assert [n.region for n in cordoned] == ["eastus2"]


def test_demo_runs_every_stellar_role_on_known_nodes(demo: StaticInventory) -> None:
    roles = Counter(pod_role(pod.labels) for pod in demo.pods.values())
    assert roles["validator"] == 1
    assert roles["horizon"] == 1
    assert roles["soroban-rpc"] == 1
    assert roles["read-replica"] >= 3
    for pod in demo.pods.values():
        assert pod.node_name in demo.nodes, pod.name
        assert pod.phase == "Running"
        assert pod.cpu_request_millis > 0


def test_demo_validator_tolerates_its_dedicated_node(demo: StaticInventory) -> None:
    (validator,) = [p for p in demo.pods.values() if pod_role(p.labels) == "validator"]
    assert validator.node_name is not None
    assert demo.nodes[validator.node_name].taints


def test_static_inventory_is_synced_and_satisfies_the_protocol(demo: StaticInventory) -> None:
    inventory: Inventory = demo
    assert inventory.synced


async def test_static_inventory_has_the_same_lifecycle_as_the_cluster_one(
    demo: StaticInventory,
) -> None:
    await demo.start()
    assert await demo.wait_synced(0.01)
    await demo.stop()
    assert demo.last_error is None


def test_demo_reads_an_extra_region_key_when_asked() -> None:
    inventory = demo_inventory(extra_region_key="example.com/unused")
    assert len(inventory.nodes) == len(demo_inventory().nodes)


# --- file shapes --------------------------------------------------------------------------------


def test_yaml_list_of_manifests_is_read(tmp_path: Path) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(NODE_YAML)
    inventory = StaticInventory.from_file(path)
    node = inventory.nodes["node-a"]
    assert (node.region, node.cloud, node.cpu_millis) == ("us-west-2", Cloud.AWS, 7910)
    assert inventory.pods[("stellar", "read-0")].node_name == "node-a"


def test_json_node_list_is_read(tmp_path: Path) -> None:
    document = {
        "kind": "NodeList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "1"},
        "items": [{"metadata": {"name": "gke-1", "labels": {GKE_POOL: "p"}}}],
    }
    path = tmp_path / "nodes.json"
    path.write_text(json.dumps(document))
    assert StaticInventory.from_file(path).nodes["gke-1"].cloud is Cloud.GCP


def test_nodes_and_pods_sections_are_read() -> None:
    text = """
nodes:
  - metadata: {name: n1, labels: {topology.kubernetes.io/region: eastus}}
pods:
  - metadata: {name: h, namespace: s, labels: {app.kubernetes.io/name: horizon}}
"""
    inventory = StaticInventory.from_text(text)
    assert inventory.nodes["n1"].region == "eastus"
    assert set(inventory.pods) == {("s", "h")}


def test_multi_document_yaml_is_read() -> None:
    text = """
kind: Node
metadata: {name: n1}
---
kind: Node
metadata: {name: n2}
---
"""
    assert set(StaticInventory.from_text(text).nodes) == {"n1", "n2"}


def test_non_stellar_pods_are_left_out() -> None:
    text = """
- kind: Pod
  metadata: {name: nginx, labels: {app: nginx}}
- kind: Pod
  metadata: {name: core, labels: {stellar.org/role: validator}}
"""
    assert set(StaticInventory.from_text(text).pods) == {("default", "core")}


def test_empty_file_is_an_empty_inventory() -> None:
    inventory = StaticInventory.from_text("")
    assert (len(inventory.nodes), len(inventory.pods), inventory.synced) == (0, 0, True)


# --- file errors --------------------------------------------------------------------------------


def test_missing_file_is_a_config_error_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=r"absent\.yaml"):
        StaticInventory.from_file(path)


def test_invalid_yaml_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("- metadata: {name: [unclosed\n")
    with pytest.raises(InventoryFileError, match=r"broken\.yaml: not valid YAML"):
        StaticInventory.from_file(path)


def test_invalid_json_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"kind": "NodeList", "items": [}')
    with pytest.raises(InventoryFileError, match=r"broken\.json: not valid JSON"):
        StaticInventory.from_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- kind: Service\n  metadata: {name: s}", "item 0: kind 'Service'"),
        ("- metadata: {name: n}\n- metadata: {name: n}", "item 1: node n appears twice"),
        (
            "- metadata: {name: n}\n- metadata: {name: m}\n  status: {allocatable: {cpu: lots}}",
            "item 1: node m: status.allocatable.cpu",
        ),
        ("- metadata: {}", "item 0: node without metadata.name"),
        ("- just a string", "item 0: expected a Node or Pod manifest"),
        ("42", "expected manifests, got int"),
        ("kind: List\nitems: {a: 1}", "items must be a list"),
    ],
)
def test_bad_manifests_are_reported_with_their_position(text: str, message: str) -> None:
    with pytest.raises(InventoryFileError, match=message):
        StaticInventory.from_text(text, source="cluster.yaml")
